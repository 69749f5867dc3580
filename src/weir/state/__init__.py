"""Run history: SQLite by default."""
