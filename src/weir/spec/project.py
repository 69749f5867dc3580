"""The project file (``weir.yml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from weir.spec.base import Strict
from weir.spec.pipeline import ErrorHandling


class Logging(Strict):
    run_records: str = ".weir/runs.jsonl"
    """Where run records go, one JSON line each; ``stderr`` for standard error."""


class ProjectSpec(Strict):
    name: str
    description: str | None = None
    lake: str = "lake"
    """Delta Lake root: a path relative to the project, or a URL delta-rs supports."""
    state: str = ".weir/state.db"
    engine: Literal["duckdb"] = "duckdb"
    pii_salt_env: str = "WEIR_PII_SALT"
    """Environment variable holding the salt for hashing PII columns."""
    duckdb_memory_limit: str = "512MB"
    """DuckDB's share of memory; it spills to .weir/tmp beyond this. A run's peak is about
    this plus ~0.7 GB of Arrow and delta-rs buffers, whatever the input size (bench/)."""
    error_handling: ErrorHandling = Field(default_factory=ErrorHandling)
    logging: Logging = Field(default_factory=Logging)
