"""Pipeline files (``pipelines/*.yml``): the fields of the Universal Pipeline Template."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from weir.spec import names, types
from weir.spec.alerts import entry_problem
from weir.spec.base import Strict

Strategy = Literal["merge", "append", "partition-swap", "truncate-reload", "scd2"]


class Derived(Strict):
    """A silver column computed by a DuckDB SQL expression over the renamed columns."""

    name: str
    sql: str
    type: str
    pii: bool | None = None
    """Whether the value is personal data. Default: it is when the SQL reads a PII column
    (a value computed from PII is PII): it is then computed before anything is written and
    stored as a salted digest. ``false`` keeps such a value in clear (say, an e-mail's
    domain); ``true`` hashes a column that reads no PII."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return names.check_column(value)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        key = types.normalize(value)
        if key is None:
            raise ValueError(f"unknown type {value!r}")
        return key


class Transform(Strict):
    engine: Literal["sql"] = "sql"
    dedupe_order_by: str | None = None
    """Keep the latest row per natural key by this column (silver name)."""
    derived: list[Derived] = Field(default_factory=list)


class Scd2(Strict):
    tracked: list[str] | None = None
    """Columns whose change opens a new version (default: every non-key column)."""
    valid_from: str | None = None
    """Column holding the change time (default: the run's start time). It is the table's one
    time axis: a hard delete is dated on it too (the batch's latest ``valid_from``)."""
    hard_deletes: Literal["ignore", "close"] = "ignore"
    """``close``: a key missing from a batch closes its current row (full snapshots only)."""


class Load(Strict):
    strategy: Strategy = "merge"
    keys: list[str] | None = None
    """Natural key (silver names); default: the contract's primaryKey columns."""
    partition_by: list[str] = Field(default_factory=list)
    table: str | None = None
    """Silver table name; default: the pipeline name."""
    scd2: Scd2 | None = None
    target_file_size_mb: int | None = None

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        return None if value is None else names.check_name(value, "table")

    @model_validator(mode="after")
    def _scd2(self) -> Load:
        if self.strategy == "scd2" and self.scd2 is None:
            return self.model_copy(update={"scd2": Scd2()})
        if self.strategy != "scd2" and self.scd2 is not None:
            raise ValueError(f"'scd2' settings given but strategy is {self.strategy!r}")
        return self


class QualityGates(Strict):
    quarantine: bool = True
    """Rows failing error-level checks go to the quarantine table; false: fail the run."""
    max_quarantine_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """Mark the run failed when more than this share of rows is quarantined."""
    sample_size: int = Field(default=5, ge=0, le=100)


class ErrorHandling(Strict):
    strategy: Literal["fail-fast", "retry"] = "retry"
    """retry: transient source errors are retried; fail-fast: the first error fails the run.
    Rows breaking error-level rules always go to quarantine (quality_gates)."""
    max_retries: int = Field(default=3, ge=0, le=20)
    retry_delay_seconds: float = Field(default=5.0, ge=0)
    backoff: float = Field(default=2.0, ge=1.0)
    alert_channels: list[str] = Field(default_factory=list)
    """Where the node's alerts go (docs/alerts.md): ``#name`` (a channel of weir.yml's
    ``alerts.channels``), an http(s) URL (a webhook), or ``file:PATH`` (JSON lines). A
    pipeline without error_handling uses weir.yml's ``error_handling.alert_channels``."""

    @field_validator("alert_channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        for entry in value:
            problem = entry_problem(entry)
            if problem:
                raise ValueError(problem)
        return value


def cron_expression(value: str | None) -> str | None:
    """``value`` when it is a cron expression weir schedules by (five fields, or a nickname)."""
    from croniter import croniter

    fields = value.split() if value is not None else []
    nickname = len(fields) == 1 and fields[0].startswith("@")
    if value is not None and not ((len(fields) == 5 or nickname) and croniter.is_valid(value)):
        raise ValueError(
            f"{value[:80]!r} is not a cron expression: five fields, minute hour "
            "day-of-month month day-of-week (e.g. '0 6 * * *'), or @hourly, @daily, @weekly"
        )
    return value


class StepSpec(Strict):
    """The Universal Pipeline Template's fields every file in pipelines/ has."""

    name: str
    owner: str
    description: str | None = None
    schedule: str | None = None
    """A cron expression (five fields, or a nickname such as ``@daily``) that ``weir serve``
    fires the node by, read in weir.yml's ``timezone`` (docs/serve.md)."""
    sla_minutes: int | None = Field(default=None, gt=0)
    tier: Literal[1, 2, 3] = 2
    tags: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return names.check_name(value, "pipeline")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return cron_expression(value)


class PipelineSpec(StepSpec):
    reference: ClassVar[str] = "docs/pipelines.md"
    """Where the fields are documented (config errors point there)."""
    kind: Literal["pipeline"] = "pipeline"
    """``kind: dbt`` files in pipelines/ are dbt steps (spec/dbt.py)."""
    contract: str
    extract: dict[str, Any]
    transform: Transform = Field(default_factory=Transform)
    load: Load = Field(default_factory=Load)
    quality_gates: QualityGates = Field(default_factory=QualityGates)
    error_handling: ErrorHandling | None = None
    on_parse_error: Literal["quarantine", "fail"] = "quarantine"
    """A value, line or file the source cannot parse: ``quarantine`` (the default, as for any
    row that breaks an error-level rule: nothing is dropped and one bad row does not hold back
    the file) carries the row to quarantine with ``parse: column <name>, value '<v>' (line
    <n>)`` and loads the rest; ``fail`` fails the run naming the file, column and line."""

    @field_validator("extract")
    @classmethod
    def _has_source(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "source" not in value:
            raise ValueError("extract needs 'source' (the connector kind, e.g. files or rest)")
        return value
