"""Silver load strategies: merge, append, partition-swap, truncate-reload, scd2.

Each takes the rows of one batch (already validated and shaped) and makes exactly one
commit carrying the batch's app transaction, so a batch is either fully applied or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from weir.engine.duckdb import fetch_table
from weir.lake.table import Commit, Table
from weir.quality.compile import ident, literal
from weir.spec.pipeline import Scd2, Strategy


@dataclass(frozen=True)
class LoadSpec:
    strategy: Strategy
    keys: list[str]
    partition_by: list[str] = field(default_factory=list)
    order_by: str | None = None
    scd2: Scd2 | None = None
    evolve: bool = False


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
) -> dict[str, Any]:
    """Apply one batch to ``table`` with ``spec.strategy``, streaming ``data``; returns the
    MERGE's metrics (files scanned and skipped, rows updated …), empty for plain writes.

    ``partitions`` holds the distinct values of each ``partition_by`` column in the batch.
    Exactly one commit carries the batch's app transaction, even when nothing changed."""
    metrics: dict[str, Any] = {}
    if spec.strategy == "scd2":
        metrics = _scd2(table, data, commit, spec, con)
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
        metrics = _merge(table, data, commit, spec, partitions)
    table.mark(commit)
    return metrics


def _merge(
    table: Table,
    data: pa.RecordBatchReader,
    commit: Commit,
    spec: LoadSpec,
    partitions: dict[str, list[Any]],
) -> dict[str, Any]:
    conds = [f"t.{ident(k)} = s.{ident(k)}" for k in spec.keys]
    # Partition pruning: when a partition column is part of the key, a row can only match
    # inside the partitions present in the batch, so the MERGE scans only those.
    conds += [in_list(p, partitions[p], alias="t") for p in spec.partition_by if p in spec.keys]
    merger = table.merge(data, commit, predicate=" AND ".join(conds), evolve=spec.evolve)
    newer = None
    if spec.order_by:
        o = ident(spec.order_by)
        newer = f"s.{o} >= t.{o} OR t.{o} IS NULL"
    merger = merger.when_matched_update_all(predicate=newer).when_not_matched_insert_all()
    return table.execute(merger)


def _scd2(
    table: Table,
    data: pa.RecordBatchReader,
    commit: Commit,
    spec: LoadSpec,
    con: duckdb.DuckDBPyConnection,
) -> dict[str, Any]:
    """SCD Type 2 in one MERGE: close changed current rows, insert new versions."""
    assert spec.scd2 is not None
    keys = [ident(k) for k in spec.keys]
    # the stream comes from a query on ``con``: finish it before the next statement
    con.register("batch_rows", data.read_all())
    tracked = spec.scd2.tracked or [
        c
        for c in data.schema.names
        if c not in spec.keys
        and not c.startswith("_")
        and c not in ("surrogate_key", "dq_valid", "dq_flags", spec.scd2.valid_from)
    ]
    row_hash = (
        "sha256(concat_ws('|', "
        + ", ".join(f"coalesce(CAST({ident(c)} AS VARCHAR), '\\N')" for c in tracked)
        + "))"
    )
    valid_from = (
        f"CAST({ident(spec.scd2.valid_from)} AS TIMESTAMP)"
        if spec.scd2.valid_from
        else "CAST(getvariable('weir_run_ts') AS TIMESTAMP)"
    )
    # the version key replaces any surrogate key the rows bring (silver's is per natural key)
    drop = [
        c
        for c in ("surrogate_key", "valid_from", "valid_to", "is_current", "_row_hash")
        if c in data.schema.names
    ]
    exclude = f" EXCLUDE ({', '.join(ident(c) for c in drop)})" if drop else ""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT *{exclude}, "
        f"{valid_from} AS valid_from, {row_hash} AS _row_hash FROM batch_rows"
    )
    con.unregister("batch_rows")
    if not table.exists():
        con.execute("CREATE OR REPLACE TEMP TABLE cur AS SELECT * FROM incoming WHERE FALSE")
    else:
        con.execute(f"CREATE OR REPLACE TEMP VIEW target_rows AS {table.scan(con)}")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE cur AS SELECT * FROM target_rows "
            "WHERE is_current AND (" + ", ".join(keys) + ") IN "
            "(SELECT (" + ", ".join(keys) + ") FROM incoming)"
        )
        _after_last_close(con, keys)
        con.execute("DROP VIEW target_rows")
    on = " AND ".join(f"i.{k} = c.{k}" for k in keys)
    version_key = (
        "sha256(concat_ws('|', "
        + ", ".join(f"CAST(i.{k} AS VARCHAR)" for k in keys)
        + ", CAST(i.valid_from AS VARCHAR)))"
    )
    changes = fetch_table(
        con,
        f"SELECT i.*, {version_key} AS surrogate_key, CAST(NULL AS TIMESTAMP) AS valid_to, "
        f"TRUE AS is_current, CASE WHEN c.{keys[0]} IS NULL THEN 'new' "
        f"WHEN c._row_hash <> i._row_hash AND i.valid_from > c.valid_from THEN 'change' "
        f"WHEN c._row_hash <> i._row_hash THEN 'late' "
        f"ELSE 'keep' END AS _action FROM incoming i LEFT JOIN cur c ON {on}",
    )
    return _scd2_commit(table, changes, commit, spec)


def _after_last_close(con: duckdb.DuckDBPyConnection, keys: list[str]) -> None:
    """A key back after its versions were closed (a hard delete) opens its new version no
    earlier than the last close, so a key's versions never overlap and version keys differ."""
    k = ", ".join(keys)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ended AS SELECT {k}, max(valid_to) AS last_to "
        f"FROM target_rows WHERE NOT is_current AND ({k}) IN (SELECT ({k}) FROM incoming) "
        f"AND ({k}) NOT IN (SELECT ({k}) FROM cur) GROUP BY ALL"
    )
    match = " AND ".join(f"incoming.{c} = e.{c}" for c in keys)
    con.execute(
        f"UPDATE incoming SET valid_from = e.last_to FROM ended e "
        f"WHERE {match} AND e.last_to > incoming.valid_from"
    )
    con.execute("DROP TABLE ended")


def _scd2_commit(table: Table, changes: pa.Table, commit: Commit, spec: LoadSpec) -> dict[str, Any]:
    """Stage inserts (``_mk`` null), closers (``close``) and unchanged keys (``keep``).

    A changed row not newer than the key's current version (``late``: out-of-order change
    times) opens no version; it is counted in ``num_source_rows_late``."""
    assert spec.scd2 is not None
    action = changes.column("_action")
    rows = changes.drop_columns(["_action"])
    late = pc.sum(pc.equal(action, "late")).as_py() or 0
    inserts = rows.filter(pc.is_in(action, pa.array(["new", "change"])))
    if not table.exists():
        table.write(inserts, commit, mode="append", partition_by=spec.partition_by)
        return {"num_target_rows_inserted": inserts.num_rows, "num_source_rows_late": late}
    marks = pc.if_else(pc.equal(action, "change"), "close", "keep")
    existing = pc.not_equal(action, "new")
    staged = pa.concat_tables(
        [
            inserts.append_column("_mk", pa.nulls(inserts.num_rows, pa.string())),
            rows.filter(existing).append_column("_mk", marks.filter(existing)),
        ]
    )
    conds = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in spec.keys)
    predicate = f"s._mk IS NOT NULL AND t.is_current AND {conds}"
    merger = table.merge(staged, commit, predicate=predicate, evolve=spec.evolve)
    merger = merger.when_matched_update(
        updates={"valid_to": "s.valid_from", "is_current": "false"},
        predicate="s._mk = 'close'",
    ).when_not_matched_insert(
        updates={c: f"s.{ident(c)}" for c in inserts.column_names},
        predicate="s._mk IS NULL",
    )
    if spec.scd2.hard_deletes == "close":
        # Full-snapshot semantics: a current key absent from this batch was deleted upstream.
        merger = merger.when_not_matched_by_source_update(
            updates={
                "valid_to": f"CAST({literal(commit.started_at)} AS TIMESTAMP)",
                "is_current": "false",
            },
            predicate="t.is_current",
        )
    return {**table.execute(merger), "num_source_rows_late": late}
