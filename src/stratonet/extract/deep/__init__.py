"""Deep features: sites as model-ready units, channel-specific inference, the extract_deep run."""
