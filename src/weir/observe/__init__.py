"""Run records, secret scrubbing and progress output."""
