"""Assay analytics: control statistics, readouts, dose-response fits and hit calling."""
