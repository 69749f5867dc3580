"""Silver load strategies: merge, append, partition-swap, truncate-reload, scd2 (lake/scd2.py).

Each takes the rows of one batch (already validated and shaped) and makes exactly one
commit carrying the batch's app transaction, so a batch is either fully applied or not.
Change events (``LoadSpec.changes``) are not rows to merge: the engine applies them by key
in log order with :func:`weir.lake.changes.apply`, under the same contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb
import pyarrow as pa

from weir.lake import scd2
from weir.lake.changes import ChangeLoad
from weir.lake.table import Commit, Table
from weir.spec.pipeline import Scd2, Strategy
from weir.sql import ident, literal


@dataclass(frozen=True)
class LoadSpec:
    strategy: Strategy
    keys: list[str]
    partition_by: list[str] = field(default_factory=list)
    order_by: str | None = None
    scd2: Scd2 | None = None
    evolve: bool = False
    held: str | None = None
    """scd2 only: a query on the connection for rows the batch holds but does not load
    (quarantined, with the key columns as stored), whose keys ``hard_deletes: close`` must
    not take as deleted."""
    changes: ChangeLoad | None = None
    """The batch holds change events (``Source.emits_changes``): they are applied by key
    in log order, as the rows' latest state (``merge``: lake/changes.py) or as versions
    (``scd2``: lake/changes_scd2.py)."""


def in_list(column: str, values: list[Any], alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    if not values:
        return "FALSE"
    nulls = any(v is None for v in values)
    items = ", ".join(literal(_plain(v)) for v in values if v is not None)
    parts = [f"{prefix}{ident(column)} IN ({items})"] if items else []
    if nulls:
        parts.append(f"{prefix}{ident(column)} IS NULL")
    return "(" + " OR ".join(parts) + ")"


def _rangeable(value: Any) -> bool:
    """Whether a key bound can go into the MERGE's predicate as a literal that compares
    exactly like the column (integers, text and dates; not floats, times or booleans)."""
    return isinstance(value, int | str | date) and not isinstance(value, bool | datetime)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def load(
    table: Table,
    data: pa.RecordBatchReader,
    commit: Commit,
    spec: LoadSpec,
    con: duckdb.DuckDBPyConnection,
    *,
    partitions: dict[str, list[Any]],
    key_ranges: dict[str, tuple[Any, Any]] | None = None,
) -> dict[str, Any]:
    """Apply one batch to ``table`` with ``spec.strategy``, streaming ``data``; returns the
    MERGE's metrics (files scanned and skipped, rows updated …), empty for plain writes.

    ``partitions`` holds the distinct values of each ``partition_by`` column in the batch;
    ``key_ranges`` the least and greatest value of key columns (see :func:`_merge`).
    Exactly one commit carries the batch's app transaction, even when nothing changed."""
    assert spec.changes is None, "change events load with weir.lake.changes.apply"
    metrics: dict[str, Any] = {}
    if spec.strategy == "scd2":
        assert spec.scd2 is not None
        metrics = scd2.apply(
            table,
            data,
            commit,
            con,
            keys=spec.keys,
            settings=spec.scd2,
            partition_by=spec.partition_by,
            evolve=spec.evolve,
            held=spec.held,
        )
    elif not table.exists():
        table.write(data, commit, mode="append", partition_by=spec.partition_by)
    elif spec.strategy == "append":
        table.write(data, commit, mode="append", evolve=spec.evolve)
    elif spec.strategy == "truncate-reload":
        table.write(data, commit, mode="overwrite", evolve=spec.evolve)
    elif spec.strategy == "partition-swap":
        predicate = " AND ".join(in_list(p, partitions[p]) for p in spec.partition_by)
        table.write(data, commit, mode="overwrite", predicate=predicate, evolve=spec.evolve)
    else:
        metrics = _merge(table, data, commit, spec, partitions, key_ranges or {})
    table.mark(commit)
    return metrics


def _merge(
    table: Table,
    data: pa.RecordBatchReader,
    commit: Commit,
    spec: LoadSpec,
    partitions: dict[str, list[Any]],
    key_ranges: dict[str, tuple[Any, Any]],
) -> dict[str, Any]:
    conds = [f"t.{ident(k)} = s.{ident(k)}" for k in spec.keys]
    # Partition pruning: when a partition column is part of the key, a row can only match
    # inside the partitions present in the batch, so the MERGE scans only those.
    conds += [in_list(p, partitions[p], alias="t") for p in spec.partition_by if p in spec.keys]
    # File pruning: no target row outside the batch's range of a key column can match, so
    # bounding it lets delta-rs skip the files whose statistics lie outside (new rows of
    # an orders table sit in the latest files: the merge reads those, not the table).
    for key, (low, high) in key_ranges.items():
        if _rangeable(low) and _rangeable(high):
            k = ident(key)
            conds.append(f"t.{k} >= {literal(_plain(low))} AND t.{k} <= {literal(_plain(high))}")
    merger = table.merge(data, commit, predicate=" AND ".join(conds), evolve=spec.evolve)
    newer = None
    if spec.order_by:
        o = ident(spec.order_by)
        newer = f"s.{o} >= t.{o} OR t.{o} IS NULL"
    merger = merger.when_matched_update_all(predicate=newer).when_not_matched_insert_all()
    return table.execute(merger)
