"""Hard-delete reconciliation: silver's live keys that the source no longer holds are deletes.

A source that cannot deliver delete events (a ``sql`` table read ``full`` or
``incremental``) lists its current keys instead (``Source.key_set``, ``deletes: {detect:
keys}``, spec/deletes.py). This module compares that stream with silver, in DuckDB: the
source's keys go into a temporary table batch by batch (DuckDB spills it to its temp
directory under its memory limit, so no side is ever held whole in Python), silver is read through
``Table.scan``, and the anti-join finds the keys silver holds live (not soft-deleted) that
the source lacks. NULL keys never match anything.

One reconciliation is one MERGE, one commit, carrying its own app transaction
``weir:<pipeline>:deletes`` (numbered 1, 2, … per reconciliation that changed silver) and no
``weir.batch``: the batches' positions are untouched. ``soft`` sets
:data:`weir.layout.IS_DELETED` and :data:`weir.layout.DELETED_AT` (the run's time; the row
keeps its values) and makes soft-deleted keys the source holds again live (an identical
re-insert reaches no new batch: bronze already holds the row); ``hard`` removes every row of
the missing keys. A re-run after a commit finds nothing left to do and writes nothing; a kill
before it leaves silver as it was, and the next reconciliation does the same work.

The guard: more deletes than ``max_delete_ratio`` of the live keys is refused
(QualityError, nothing written). The SQL is DuckDB's; the engine (engine/duckdb_engine.py)
is the one caller.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, Transaction

from weir import faults, layout
from weir.errors import QualityError
from weir.lake.table import Commit, Table, qualified_name
from weir.spec.deletes import DeleteAction
from weir.sql import ident

METRICS = (
    "num_source_keys",
    "num_live_keys",
    "num_deletes_found",
    "num_deletes_applied",
    "num_keys_revived",
)
"""What :func:`apply` counts: distinct non-NULL keys the source listed, silver's live keys,
live keys missing from the source, rows deleted (soft: marked, hard: removed), soft-deleted
keys the source holds again (made live)."""

_TEMP = ("rec_src", "rec_gone", "rec_back")


@dataclass(frozen=True)
class Reconcile:
    """One reconciliation's settings."""

    keys: tuple[str, ...]
    """Silver's natural key columns (the source's key batches carry these names)."""
    action: DeleteAction
    max_delete_ratio: float
    at: str
    """The run's time (ISO): the ``deleted_at`` of the rows it soft-deletes."""
    where: str
    """The pipeline file, for the guard's message."""


@dataclass(frozen=True)
class ReconcileCommit(Commit):
    """A reconciliation's commit: the app transaction ``(app_id, batch)`` numbers the
    reconciliations; its metadata says when (``weir.reconciled_at``) and never
    ``weir.batch`` (which names the pipeline's batches)."""

    def properties(self) -> CommitProperties:
        meta = {
            "weir.reconciliation": str(self.batch),
            "weir.reconciled_at": self.started_at,
            "weir.run_id": self.run_id,
        }
        meta |= {k: json.dumps(v, sort_keys=True) for k, v in self.metadata.items()}
        return CommitProperties(
            custom_metadata=meta, app_transactions=[Transaction(self.app_id, self.batch)]
        )


def app_id(pipeline: str) -> str:
    return f"weir:{pipeline}:deletes"


def last_reconciled(table: Table, pipeline: str) -> str | None:
    """When the last reconciliation that changed ``table`` ran (its run's start, ISO)."""
    number = table.applied(app_id(pipeline))
    if number == 0:
        return None
    for info in table.history():
        if info.get("weir.reconciliation") == str(number) and "weir.reconciled_at" in info:
            return str(info["weir.reconciled_at"])
    return None


def apply(
    table: Table,
    con: duckdb.DuckDBPyConnection,
    source_keys: pa.RecordBatchReader,
    commit: ReconcileCommit,
    settings: Reconcile,
) -> dict[str, Any]:
    """Compare ``source_keys`` (batches of ``settings.keys``, in silver's types) with
    ``table``'s live keys and apply the deletes in one commit; returns :data:`METRICS`."""
    k = [ident(c) for c in settings.keys]
    cols = ", ".join(k)
    not_null = " AND ".join(f"{c} IS NOT NULL" for c in k)
    try:
        _load_keys(con, source_keys, cols, not_null)
        counts = _compare(table, con, k, soft=settings.action == "soft")
        _guard(counts, settings, table)
        return _write(table, con, commit, settings, counts)
    finally:
        with suppress(duckdb.Error):  # after a failure, the failure is the one to report
            for name in _TEMP:
                con.execute(f"DROP TABLE IF EXISTS {name}")
            con.execute("DROP VIEW IF EXISTS rec_target")


def _load_keys(
    con: duckdb.DuckDBPyConnection, source_keys: pa.RecordBatchReader, cols: str, not_null: str
) -> None:
    """``rec_src``: the source's distinct non-NULL keys. Batch by batch from this thread (a
    source's connection may belong to it, as SQLite's does), into a table DuckDB spills."""
    con.register("rec_batch", source_keys.schema.empty_table())
    con.execute(f"CREATE OR REPLACE TEMP TABLE rec_src AS SELECT {cols} FROM rec_batch")
    con.unregister("rec_batch")
    for batch in source_keys:
        con.register("rec_batch", batch)
        try:
            con.execute(f"INSERT INTO rec_src SELECT {cols} FROM rec_batch WHERE {not_null}")
        finally:
            con.unregister("rec_batch")
    con.execute(f"CREATE OR REPLACE TEMP TABLE rec_src AS SELECT DISTINCT {cols} FROM rec_src")


def _compare(
    table: Table, con: duckdb.DuckDBPyConnection, k: list[str], *, soft: bool
) -> dict[str, Any]:
    """``rec_gone``: silver's live keys the source lacks; ``rec_back`` (soft): its
    soft-deleted keys the source holds again."""
    cols = ", ".join(k)
    con.execute(f"CREATE OR REPLACE TEMP VIEW rec_target AS {table.scan(con)}")
    have = set(con.sql("SELECT * FROM rec_target LIMIT 0").columns)
    deleted = (
        f"coalesce({layout.IS_DELETED.name}, FALSE)" if layout.IS_DELETED.name in have else "FALSE"
    )
    found = " AND ".join(f"s.{c} = t.{c}" for c in k)
    listed = f"EXISTS (SELECT 1 FROM rec_src s WHERE {found})"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE rec_gone AS SELECT DISTINCT {cols} FROM rec_target t "
        f"WHERE NOT {deleted} AND NOT {listed}"
    )
    back = f"{deleted} AND {listed}" if soft else "FALSE"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE rec_back AS SELECT DISTINCT {cols} FROM rec_target t "
        f"WHERE {back}"
    )
    [(source, live, gone, revived)] = con.execute(
        "SELECT (SELECT count(*) FROM rec_src), "
        f"(SELECT count(*) FROM (SELECT DISTINCT {cols} FROM rec_target WHERE NOT {deleted})), "
        "(SELECT count(*) FROM rec_gone), (SELECT count(*) FROM rec_back)"
    ).fetchall()
    return {
        "num_source_keys": int(source),
        "num_live_keys": int(live),
        "num_deletes_found": int(gone),
        "num_keys_revived": int(revived),
    }


def _guard(counts: dict[str, Any], settings: Reconcile, table: Table) -> None:
    gone, live = counts["num_deletes_found"], counts["num_live_keys"]
    if not gone or gone <= settings.max_delete_ratio * live:
        return
    raise QualityError(
        f"delete reconciliation of {qualified_name(table.uri)} refused: the source lists "
        f"{counts['num_source_keys']:,} keys, so {gone:,} of silver's {live:,} live keys "
        f"({gone / live:.1%}) would be deleted, above deletes.max_delete_ratio="
        f"{settings.max_delete_ratio:g}; nothing was deleted",
        where=settings.where,
        hint="check that the source reads the right table with the right permissions; if "
        "those rows were really deleted, raise extract.deletes.max_delete_ratio (up to 1.0) "
        "for one run",
    )


def _write(
    table: Table,
    con: duckdb.DuckDBPyConnection,
    commit: ReconcileCommit,
    settings: Reconcile,
    counts: dict[str, Any],
) -> dict[str, Any]:
    """The one MERGE of the deletes (and revivals), or nothing when there are none."""
    if not counts["num_deletes_found"] and not counts["num_keys_revived"]:
        return {**counts, "num_deletes_applied": 0}
    k = [ident(c) for c in settings.keys]
    cols = ", ".join(k)
    on = " AND ".join(f"t.{c} = s.{c}" for c in k)
    soft = settings.action == "soft"
    gone = f"EXISTS (SELECT 1 FROM rec_gone s WHERE {on})"
    [(rows_gone,)] = con.execute(f"SELECT count(*) FROM rec_target t WHERE {gone}").fetchall()
    params: list[object] = []
    if soft:
        select = (
            f"SELECT {cols}, TRUE AS is_deleted, CAST(? AS TIMESTAMPTZ) AS deleted_at "
            f"FROM rec_gone UNION ALL SELECT {cols}, FALSE, CAST(NULL AS TIMESTAMPTZ) FROM rec_back"
        )
        params.append(settings.at)
    else:
        select = f"SELECT {cols} FROM rec_gone"
    rows = con.sql(select, params=params).to_arrow_reader(16_384)
    have = table.schema()
    evolve = soft and have is not None and layout.IS_DELETED.name not in have.names
    merger = table.merge(rows, commit, predicate=on, evolve=evolve)
    if soft:
        names = [layout.IS_DELETED.name, layout.DELETED_AT.name]
        merger = merger.when_matched_update(updates={ident(c): f"s.{ident(c)}" for c in names})
    else:
        merger = merger.when_matched_delete()
    faults.point("reconcile.before_commit")
    table.execute(merger)
    faults.point("reconcile.after_commit")
    return {**counts, "num_deletes_applied": int(rows_gone)}


def describe(metrics: dict[str, Any], action: DeleteAction, keys: Sequence[str]) -> str:
    """The progress line of one reconciliation."""
    found, applied = metrics["num_deletes_found"], metrics["num_deletes_applied"]
    line = (
        f"deletes: compared {metrics['num_source_keys']:,} source keys with "
        f"{metrics['num_live_keys']:,} live keys of silver on ({', '.join(keys)}): "
        f"{found:,} deleted in the source"
    )
    if found:
        line += f", {applied:,} rows {'soft-deleted' if action == 'soft' else 'removed'}"
    if metrics["num_keys_revived"]:
        line += f", {metrics['num_keys_revived']:,} keys back in the source made live again"
    return line
