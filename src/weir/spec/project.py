"""The project file (``weir.yml``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from weir.spec.base import Strict
from weir.spec.pipeline import ErrorHandling


class Logging(Strict):
    run_records: str = ".weir/runs.jsonl"
    """Where run records go, one JSON line each; ``stderr`` for standard error."""


class OpenLineage(Strict):
    """Where OpenLineage run events go (docs/lineage.md); without file and url, nowhere."""

    file: str | None = None
    """Append each event as one JSON line to this file (relative to the project)."""
    url: str | None = None
    """POST each event as JSON to this endpoint, e.g. Marquez's ``…/api/v1/lineage``."""
    namespace: str | None = None
    """Namespace of the jobs (default: the project's name)."""
    api_key_env: str | None = None
    """Environment variable holding a bearer token for ``url``; its value is never logged."""
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"url {value!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _key_needs_url(self) -> OpenLineage:
        if self.api_key_env and not self.url:
            raise ValueError("api_key_env is the token for 'url', but no url is set")
        return self


Layer = Literal["staging", "intermediate", "mart", "snapshot"]
RuleName = Literal[
    "naming.prefix",
    "naming.snapshot-prefix",
    "layers.mart-reads-raw",
    "layers.intermediate-reads-raw",
    "layers.staging-reads-staging",
    "layers.snapshot-source",
]
"""The naming and layering rules `weir validate` applies (weir.transform.conventions)."""


class Conventions(Strict):
    """Which naming-convention warnings apply to this project (docs/lineage.md)."""

    disable: list[RuleName] = Field(default_factory=list)
    """Rules that do not apply here."""
    prefixes: dict[Layer, list[str]] = Field(default_factory=dict)
    """Per layer, the name prefixes that replace weir's (e.g. ``mart: [fct_, dim_, rpt_]``)."""

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for layer, prefixes in value.items():
            if not prefixes or any(
                not p or not p.endswith("_") or not p.islower() for p in prefixes
            ):
                raise ValueError(
                    f"{layer}: give lower-case prefixes ending in _ (e.g. [stg_]), not {prefixes}"
                )
        return value


MAX_THREADS = 64
"""The most nodes `weir run` runs at once (weir.yml `threads` and `--threads` alike)."""


class ProjectSpec(Strict):
    reference: ClassVar[str] = "docs/pipelines.md (weir.yml)"
    """Where the fields are documented (config errors point there)."""
    name: str
    description: str | None = None
    lake: str = "lake"
    """Delta Lake root: a path relative to the project, or a URL delta-rs supports."""
    state: str = ".weir/state.db"
    engine: Literal["duckdb"] = "duckdb"
    pii_salt_env: str = "WEIR_PII_SALT"
    """Environment variable holding the salt for hashing PII columns."""
    duckdb_memory_limit: str = "256MB"
    """DuckDB's share of memory, per connection; it spills to .weir/tmp beyond this. Peak RSS
    of a CSV load into bronze + silver (bench (d), bench/RESULTS.md): 1M rows ~670 MB,
    10.5M rows ~710 MB, in the same time as with 512MB. 128MB brings 1M rows to ~550 MB, but
    one 10.5M-row load ran out of memory at the silver stage with it."""
    threads: int = Field(default=2, ge=1, le=MAX_THREADS)
    """How many independent pipelines and models `weir run` runs at once."""
    error_handling: ErrorHandling = Field(default_factory=ErrorHandling)
    logging: Logging = Field(default_factory=Logging)
    openlineage: OpenLineage | None = None
    conventions: Conventions = Field(default_factory=Conventions)
    """OpenLineage run events for every run (docs/lineage.md)."""
