"""The lowest layer: tables, errors, progress and wording, options from YAML, run provenance, remote files."""
