"""The end-to-end demo: a small synthetic plate plus the bundled real JUMP field of view."""
