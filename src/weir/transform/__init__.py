"""Silver mapping (rename, type, hash PII, derive, flag, de-duplicate)."""
