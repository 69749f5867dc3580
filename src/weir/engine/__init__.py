"""Compute engines. DuckDB is the embedded default."""
