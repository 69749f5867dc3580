"""Gold models (``models/*.sql``): one DuckDB ``SELECT`` plus a small YAML header or sidecar.

The header is a block comment opening the file::

    /* weir
    materialized: incremental
    unique_key: [flight_date, carrier, origin]
    incremental: {column: flight_date, lookback: 3 days}
    */
    SELECT ...

or the same YAML in ``models/<name>.yml`` beside the SQL (not both).
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from weir.spec.base import Strict
from weir.spec.contract import Quality
from weir.spec.pipeline import cron_expression

Materialized = Literal["table", "incremental", "partition-swap", "snapshot"]
_INTERVAL = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day|week|month|year)s?\s*$")


class Window(Strict):
    """Which rows an incremental or partition-swap run recomputes."""

    column: str
    """An output column (a date or timestamp, usually the partition or first key column).
    A run recomputes the rows whose value is at least the last committed maximum minus
    ``lookback``; the filter is pushed down into the source scans."""
    lookback: str = "0 days"
    """How late data may arrive and still be picked up, e.g. ``3 days``."""

    @field_validator("lookback")
    @classmethod
    def _interval(cls, value: str) -> str:
        match = _INTERVAL.match(str(value))
        if match is None:
            raise ValueError(
                f"lookback {value!r} is not an interval; write e.g. '3 days' or '12 hours'"
            )
        return f"{match[1]} {match[2]}s"


class Snapshot(Strict):
    """SCD Type 2 settings of a ``snapshot`` model."""

    strategy: Literal["check", "timestamp"] = "check"
    """check: a change of the tracked columns' hash opens a version (valid from the run's
    start); timestamp: a newer ``updated_at`` opens one (valid from that time)."""
    check_cols: list[str] | None = None
    """Tracked columns for the check strategy (default: every non-key column)."""
    updated_at: str | None = None
    """The change-time column, required by the timestamp strategy."""
    hard_deletes: Literal["ignore", "close"] = "ignore"
    """close: a key missing from the model's result closes its current version."""

    @model_validator(mode="after")
    def _strategy(self) -> Snapshot:
        if self.strategy == "timestamp" and not self.updated_at:
            raise ValueError("the timestamp strategy needs 'updated_at' (the change-time column)")
        if self.strategy == "check" and self.updated_at:
            raise ValueError("'updated_at' is for strategy: timestamp; the check strategy hashes")
        return self


class ModelSpec(Strict):
    reference: ClassVar[str] = "docs/models.md (the /* weir … */ header)"
    """Where the fields are documented (config errors point there)."""
    materialized: Materialized = "table"
    description: str | None = None
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    schedule: str | None = None
    """A cron expression ``weir serve`` fires the model (and its downstream models) by; a
    model without one runs when an upstream node fires (docs/serve.md)."""
    unique_key: list[str] = Field(default_factory=list)
    """Composite key of the output: incremental models MERGE on it, snapshots version it."""
    partition_by: list[str] = Field(default_factory=list)
    incremental: Window | None = None
    """The window of incremental and partition-swap models."""
    snapshot: Snapshot | None = None
    checks: list[Quality] = Field(default_factory=list)
    """Quality rules over the output (each names ``column`` or ``columns``), checked after
    the write over the rows the run wrote. Validated after loading (weir.quality.validate):
    their kinds, and that the model produces the columns they read."""

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return cron_expression(value)

    @model_validator(mode="after")
    def _needs(self) -> ModelSpec:
        m = self.materialized
        if m in ("incremental", "partition-swap") and self.incremental is None:
            raise ValueError(f"materialized: {m} needs 'incremental: {{column: …, lookback: …}}'")
        if m not in ("incremental", "partition-swap") and self.incremental is not None:
            raise ValueError(f"'incremental' settings given but materialized is {m!r}")
        if m in ("incremental", "snapshot") and not self.unique_key:
            raise ValueError(f"materialized: {m} needs 'unique_key' (the output's key columns)")
        if m == "partition-swap" and not self.partition_by:
            raise ValueError("materialized: partition-swap needs 'partition_by'")
        if m == "snapshot" and self.snapshot is None:
            return self.model_copy(update={"snapshot": Snapshot()})
        if m != "snapshot" and self.snapshot is not None:
            raise ValueError(f"'snapshot' settings given but materialized is {m!r}")
        return self
