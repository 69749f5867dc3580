"""Delta Lake operations (delta-rs). Knows tables, not connectors."""
