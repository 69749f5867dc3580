"""Change events applied to silver by key, in log order: one batch, one guarded MERGE.

A change-event source (``Source.emits_changes``: Debezium files, PostgreSQL CDC) lands one
bronze row per change, with the columns of :data:`weir.layout.CHANGE`. This module does not
know where they came from. For one batch of valid events (the silver SELECT's rows):

- a key's events are ordered by their position ``(_lsn, _seq)``, then by arrival
  (``_batch``, ``_row``); an event at or below the position silver already holds for its
  key (the row's own ``_lsn``/``_seq``, the last change applied to it) is *stale* and never
  applied again, so re-delivered events and re-runs cannot regress a row;
- of the rest, the last event per key decides: ``insert``/``update``/``snapshot`` upsert its
  image (live again after a delete: ``is_deleted`` false, ``deleted_at`` NULL);
  ``delete`` removes the row (``hard``) or keeps its last values with ``is_deleted`` true and
  ``deleted_at`` the commit time of the first delete after its last upsert (``soft``); a
  delete of a key silver never held writes nothing;
- a ``truncate`` becomes a delete, at its own position, of every key whose position is
  below it: the rows silver holds and the keys of the batch's earlier events (so later
  events of the batch apply after it, as they happened).

The computed rows are MERGEd on the key with a guard that updates or deletes a target row
only if the event's position is above the row's, so even a MERGE computed from a stale
snapshot cannot move a row backwards. Exactly one commit carries the batch's app
transaction (:meth:`Table.mark` when nothing changed). The SQL is DuckDB's (the connection
is the DuckDB engine's, its only caller) and reads the target through ``Table.scan``, so
like ``scd2`` it needs a local lake.

Limit of ``hard``: a deleted row leaves with its position, so an event older than the delete
that arrives again in a *later* batch (a partial re-delivery) re-inserts the key; ``soft``
keeps the position and has no such gap.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from weir import layout
from weir.lake.table import Commit, Table
from weir.spec.deletes import DeleteAction
from weir.sql import ident, literal

UPSERTS = "(" + ", ".join(literal(op) for op in layout.UPSERTS) + ")"
_WORK = ("_at", "_synthetic")
_OUT_WORK = ("_action", "_by_truncate")
_TEMPS = (
    "chg_in",
    "chg_cur",
    "chg_trunc",
    "chg_app",
    "chg_stats",
    "chg_last",
    "chg_img",
    "chg_del",
    "chg_out",
    "chg_target",
)
"""The working tables and views of :func:`apply`."""
"""Columns of the working tables (silver column names start with a letter)."""
_LAST = 9_223_372_036_854_775_807
"""Arrival of a target row in comparisons with a batch's events: after all of them, so a
row at a truncate's very position is not below it."""


METRICS = (
    "num_change_events",
    "num_changes_applied",
    "num_changes_superseded",
    "num_changes_stale",
    "num_truncates",
    "num_soft_deletes",
    "num_hard_deletes_applied",
)
"""The counts :func:`apply` adds to a batch's load metrics (the run record keeps them):
events in, applied (the last of their key, and truncates), superseded by a later event of
their key in the batch, stale (at or below their key's applied position: not applied),
truncates, and rows deleted (soft or hard)."""


@dataclass(frozen=True)
class ChangeLoad:
    """How a pipeline's change events load (``LoadSpec.changes``)."""

    action: DeleteAction
    """``soft``: silver keeps deleted rows (:data:`weir.layout.SOFT_DELETE`); ``hard``."""
    events: tuple[str, ...]
    """The columns a row takes from the last event applied to it (the source's meta and
    change columns, the ingestion columns); the others come from its last upserted image."""


def _pos(alias: str) -> str:
    """A row's position as a comparable struct."""
    return f"{{'l': {alias}._lsn, 's': coalesce({alias}._seq, 0)}}"


def apply(
    table: Table,
    con: duckdb.DuckDBPyConnection,
    events: str,
    commit: Commit,
    *,
    keys: Sequence[str],
    settings: ChangeLoad,
    partition_by: list[str],
    evolve: bool,
    counting: Callable[[pa.RecordBatchReader], pa.RecordBatchReader] = lambda rows: rows,
) -> dict[str, Any]:
    """Apply the events that ``events`` (a query on ``con``) selects; returns the counts
    (module docstring) and the MERGE's metrics."""
    k = [ident(c) for c in keys]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE chg_in AS SELECT *, "
        "{'l': _lsn, 's': coalesce(_seq, 0), 'b': _batch, 'r': _row} AS _at, "
        f"FALSE AS _synthetic FROM ({events})"
    )
    described = con.execute("DESCRIBE SELECT * FROM chg_in").fetchall()
    types = {str(row[0]): str(row[1]) for row in described if row[0] not in _WORK}
    soft = settings.action == "soft"
    try:
        target_rows = _current(con, table, keys, types)
        [(events_in,)] = con.execute("SELECT count(*) FROM chg_in").fetchall()
        truncated = truncates(con, k, [c for c in settings.events if c in types])
        counts = {"num_change_events": int(events_in), "num_truncates": truncated}
        counts |= applicable(con, k)
        _final(con, keys, list(types), target_rows, settings, soft=soft)
        return _write(table, con, commit, keys, counts, soft, partition_by, evolve, counting)
    finally:
        for name in _TEMPS:
            for kind in ("TABLE", "VIEW"):  # chg_out may be either
                with suppress(duckdb.Error):  # after a failure, the failure is the one to report
                    con.execute(f"DROP {kind} IF EXISTS {name}")


def _current(
    con: duckdb.DuckDBPyConnection, table: Table, keys: Sequence[str], types: dict[str, str]
) -> str:
    """``chg_cur``: the target rows the batch can change — its keys, and every row below
    the batch's last truncate — as their key, position (``_lsn``, ``_seq``, ``_pos``) and
    soft-delete columns (NULL where the table lacks them: a table written before deletes
    were soft). Returns the SELECT of the target's rows in the batch's columns and the
    soft-delete ones (NULL where it lacks them), which :func:`_final` reads for the few keys
    that need their whole row: chg_cur stays narrow, however wide the table."""
    k = [ident(c) for c in keys]
    cols = ", ".join(k)
    wanted = {**types, layout.IS_DELETED.name: "BOOLEAN", layout.DELETED_AT.name: "TIMESTAMPTZ"}
    if table.exists():
        con.execute(f"CREATE OR REPLACE TEMP VIEW chg_target AS {table.scan(con)}")
        have = set(con.sql("SELECT * FROM chg_target LIMIT 0").columns)
        source = "chg_target t"
    else:
        have, source = set(), "(SELECT 1) t"
    select = {
        c: f"t.{ident(c)}" if c in have else f"CAST(NULL AS {typ}) AS {ident(c)}"
        for c, typ in wanted.items()
    }
    narrow = {*keys, layout.LSN.name, layout.SEQ.name, *(c.name for c in layout.SOFT_DELETE)}
    brief = ", ".join(sql for c, sql in select.items() if c in narrow)
    rows = f"SELECT {', '.join(select.values())} FROM {source}"
    if not have:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE chg_cur AS SELECT {brief}, "
            f"{{'l': CAST(NULL AS BIGINT), 's': CAST(NULL AS BIGINT)}} AS _pos FROM {source} "
            "WHERE FALSE"
        )
        return f"{rows} WHERE FALSE"
    below = f"OR {_pos('t')} < (SELECT max({_pos('chg_in')}) FROM chg_in WHERE _op = 'truncate')"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE chg_cur AS SELECT {brief}, {_pos('t')} AS _pos "
        f"FROM {source} WHERE ({cols}) IN "
        f"(SELECT ({cols}) FROM chg_in WHERE _op <> 'truncate') {below}"
    )
    return rows


def truncates(con: duckdb.DuckDBPyConnection, k: list[str], events: list[str]) -> int:
    """Each truncate of the batch as a delete, at its position, of every key whose position
    is below it (target rows, and keys of the batch's earlier events); the truncates
    themselves leave ``chg_in``. Returns how many truncates the batch holds.

    Reads ``chg_in`` (the events, with ``_at`` and ``_synthetic``) and ``chg_cur`` (a row
    per key the batch can change, with its ``_lsn`` and ``_seq``); also used by
    lake/changes_scd2.py, whose ``chg_cur`` holds a key's latest version."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE chg_trunc AS SELECT * FROM chg_in WHERE _op = 'truncate'"
    )
    [(count,)] = con.execute("SELECT count(*) FROM chg_trunc").fetchall()
    if not count:
        return 0
    cols = ", ".join(k)
    c_keys = ", ".join(f"c.{c}" for c in k)
    taken = ", ".join(f"t.{ident(c)}" for c in events)
    con.execute(
        f"INSERT INTO chg_in BY NAME SELECT {c_keys}, {taken}, t._at, TRUE AS _synthetic "
        f"FROM chg_trunc t JOIN (SELECT {cols}, min(first) AS first FROM ("
        f"SELECT {cols}, _at AS first FROM chg_in WHERE _op <> 'truncate' UNION ALL "
        f"SELECT {cols}, {{'l': _lsn, 's': coalesce(_seq, 0), 'b': {_LAST}, 'r': {_LAST}}} "
        f"FROM chg_cur) GROUP BY ALL) c ON c.first < t._at"
    )
    con.execute("DELETE FROM chg_in WHERE _op = 'truncate' AND NOT _synthetic")
    return int(count)


def applicable(con: duckdb.DuckDBPyConnection, k: list[str]) -> dict[str, Any]:
    """``chg_app``: the events above their key's position (``chg_cur._pos``); the count of
    the others (also used by lake/changes_scd2.py). ``chg_in`` becomes it: the others are
    deleted in place, which copies nothing (a batch's events fill DuckDB's memory)."""
    on = " AND ".join(f"e.{c} = c.{c}" for c in k)
    [(events,)] = con.execute("SELECT count(*) FROM chg_in WHERE NOT _synthetic").fetchall()
    con.execute(
        f"DELETE FROM chg_in e USING chg_cur c WHERE {on} "
        "AND NOT coalesce({'l': e._at.l, 's': e._at.s} > c._pos, FALSE)"
    )
    con.execute("ALTER TABLE chg_in RENAME TO chg_app")
    [(kept,)] = con.execute("SELECT count(*) FROM chg_app WHERE NOT _synthetic").fetchall()
    return {"num_changes_stale": int(events) - int(kept)}


def _final(
    con: duckdb.DuckDBPyConnection,
    keys: Sequence[str],
    names: list[str],
    target_rows: str,
    settings: ChangeLoad,
    *,
    soft: bool,
) -> None:
    """``chg_out``: per key with applicable events, the row as it ends the batch and what
    the MERGE does with it (``_action``: upsert, delete or none).

    Built a step at a time so that each statement holds at most one large hash table
    (DuckDB spills one; several side by side in one pipeline ran a 1M-event batch out of
    256 MB): ``chg_last``, the last event of each key (its position from a grouping, then
    one join; ``chg_app`` itself when no key has two events);
    for the keys whose last event is a delete, ``chg_img`` their last upserted image in the
    batch and ``chg_del`` when their first delete after it committed; then ``chg_out``:
    the last events that upsert as they are, and the deleting ones joined to their image,
    their first delete and their target rows (only those keys' rows) — a view of the
    upserting ones when no key's last event deletes."""
    k = [ident(c) for c in keys]
    cols = ", ".join(k)
    [(events, distinct)] = con.execute(
        f"SELECT count(*), count(DISTINCT ({cols})) FROM chg_app"
    ).fetchall()
    last = "chg_app"
    if events != distinct:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE chg_stats AS SELECT {cols}, max(_at) AS last_at "
            "FROM chg_app GROUP BY ALL"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE chg_last AS SELECT a.* FROM chg_app a "
            f"JOIN chg_stats s ON {_on('a', 's', k)} AND a._at = s.last_at"
        )
        last = "chg_last"
    up = f"_op IN {UPSERTS}"
    # keys whose last event upserts: that event is the row (no join)
    kept = [f"l.{ident(n)}" for n in names]
    if soft:
        kept += ["FALSE AS is_deleted", "CAST(NULL AS TIMESTAMPTZ) AS deleted_at"]
    kept += ["'upsert' AS _action", "l._synthetic AS _by_truncate"]
    upserts = f"SELECT {', '.join(kept)} FROM {last} l WHERE l.{up}"
    [(deleting,)] = con.execute(f"SELECT count(*) FROM {last} WHERE NOT {up}").fetchall()
    if not deleting:  # no copy of the batch: a view of its events
        con.execute(f"CREATE OR REPLACE TEMP VIEW chg_out AS {upserts}")
        return
    gone = f"(SELECT {cols} FROM {last} WHERE NOT {up})"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE chg_img AS SELECT * FROM chg_app "
        f"WHERE _op IN {UPSERTS} AND ({cols}) IN {gone} "
        f"QUALIFY row_number() OVER (PARTITION BY {cols} ORDER BY _at DESC) = 1"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE chg_del AS SELECT {', '.join(f'a.{c}' for c in k)}, "
        "arg_min(coalesce(a._committed_at, a._ingested_at), a._at) AS first_deleted "
        f"FROM chg_app a LEFT JOIN chg_img i ON {_on('a', 'i', k)} "
        f"WHERE a._op NOT IN {UPSERTS} AND ({', '.join(f'a.{c}' for c in k)}) IN {gone} "
        "AND (i._at IS NULL OR a._at > i._at) GROUP BY ALL"
    )
    taken = set(settings.events)
    imaged = f"i.{k[0]} IS NOT NULL"
    # keys whose last event deletes: their image in the batch, else the target row
    select = []
    for name in names:
        col = ident(name)
        if name in set(keys) or name in taken:
            select.append(f"l.{col}")
        else:
            select.append(f"CASE WHEN {imaged} THEN i.{col} ELSE c.{col} END AS {col}")
    if soft:
        select.append("TRUE AS is_deleted")
        select.append(
            f"CASE WHEN {imaged} OR NOT coalesce(c.is_deleted, FALSE) THEN d.first_deleted "
            "ELSE c.deleted_at END AS deleted_at"
        )
        action = f"CASE WHEN {imaged} OR c.{k[0]} IS NOT NULL THEN 'upsert' ELSE 'none' END"
    else:
        action = f"CASE WHEN c.{k[0]} IS NOT NULL THEN 'delete' ELSE 'none' END"
    select += [f"{action} AS _action", "l._synthetic AS _by_truncate"]
    current = f"(SELECT * FROM ({target_rows}) t WHERE ({cols}) IN {gone})"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE chg_out AS {upserts} "
        f"UNION ALL BY NAME SELECT {', '.join(select)} FROM {last} l "
        f"LEFT JOIN chg_img i ON {_on('i', 'l', k)} "
        f"LEFT JOIN {current} c ON {_on('c', 'l', k)} "
        f"LEFT JOIN chg_del d ON {_on('d', 'l', k)} WHERE NOT l.{up}"
    )


def _on(a: str, b: str, k: list[str]) -> str:
    return " AND ".join(f"{a}.{c} = {b}.{c}" for c in k)


GUARD = (
    "(t._lsn IS NULL OR s._lsn > t._lsn OR "
    "(s._lsn = t._lsn AND coalesce(s._seq, 0) > coalesce(t._seq, 0)))"
)
"""The MERGE changes a target row only with a later change than the one it holds."""


REWRITE = "weir.rewrite"
"""Commit metadata of a rewrite: the rows it inserted, updated and deleted."""
REWRITE_SHARE = 0.5
"""A batch whose changed rows are at least this share of silver's rows rewrites the table
instead of MERGEing (:func:`_rewrite`)."""


def _rewrite(
    table: Table,
    con: duckdb.DuckDBPyConnection,
    commit: Commit,
    keys: Sequence[str],
    rows: int,
    evolve: bool,
    counting: Callable[[pa.RecordBatchReader], pa.RecordBatchReader],
) -> dict[str, Any] | None:
    """When the batch changes most of the table: one overwrite commit of the rows it
    changes (``chg_out``) and the target rows of the other keys, copied as they are — what
    the MERGE would leave, without its join of every target file against the batch. The
    target rows are those of the snapshot ``chg_cur`` was read from, so no row moves
    backwards (the run holds the pipeline's lock: nothing else writes silver's rows).
    None (MERGE instead): a small batch, a table without row counts in its log, or one
    with columns the batch lacks (a MERGE keeps their values)."""
    total = table.row_count()
    if total is None or rows < REWRITE_SHARE * total:
        return None
    target = table.schema()
    assert target is not None
    out = [c for c in con.sql("SELECT * FROM chg_out LIMIT 0").columns if c not in _OUT_WORK]
    if not set(target.names) <= set(out) or (set(out) - set(target.names) and not evolve):
        return None
    names = [*target.names, *(c for c in out if c not in set(target.names))]
    cols = ", ".join(ident(c) for c in names)
    k = [ident(c) for c in keys]
    [(inserted, updated, deleted)] = con.execute(
        "SELECT count(*) FILTER (o._action = 'upsert' AND c._pos IS NULL), "
        "count(*) FILTER (o._action = 'upsert' AND c._pos IS NOT NULL), "
        "count(*) FILTER (o._action = 'delete') "
        f"FROM chg_out o LEFT JOIN chg_cur c ON {_on('o', 'c', k)} WHERE o._action <> 'none'"
    ).fetchall()
    others = f"(SELECT {', '.join(k)} FROM chg_out WHERE _action <> 'none') o"
    changed = f"SELECT {cols} FROM chg_out WHERE _action = 'upsert'"
    copied = f"SELECT t.* FROM chg_target t ANTI JOIN {others} ON {_on('t', 'o', k)}"
    union = con.sql(f"{changed} UNION ALL BY NAME {copied}")  # one stream per connection
    added = [f for f in union.limit(0).to_arrow_table().schema if f.name not in target.names]
    schema = pa.schema([*target, *added])
    rows_in = union.to_arrow_reader(16_384)
    head, rest = _split(rows_in, int(inserted) + int(updated))

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in itertools.chain(counting(head), rest):
            yield _shaped(batch, schema)

    data = pa.RecordBatchReader.from_batches(schema, batches())
    metrics = {
        "num_target_rows_inserted": int(inserted),
        "num_target_rows_updated": int(updated),
        "num_target_rows_deleted": int(deleted),
    }
    # the log's own metrics count every row as added: the commit says what changed
    noted = dataclasses.replace(commit, metadata={**commit.metadata, REWRITE: metrics})
    table.write(data, noted, mode="overwrite", evolve=evolve)
    return metrics


def _split(
    reader: pa.RecordBatchReader, count: int
) -> tuple[pa.RecordBatchReader, Iterator[pa.RecordBatch]]:
    """``reader`` as its first ``count`` rows (a reader) and the rest, read after them."""
    left: list[pa.RecordBatch] = []

    def first() -> Iterator[pa.RecordBatch]:
        seen = 0
        for batch in reader:
            if seen + len(batch) >= count:
                cut = count - seen
                if cut:
                    yield batch.slice(0, cut)
                left.append(batch.slice(cut))
                return
            seen += len(batch)
            yield batch

    def rest() -> Iterator[pa.RecordBatch]:
        yield from (batch for batch in left if len(batch))
        yield from reader

    return pa.RecordBatchReader.from_batches(reader.schema, first()), rest()


def _shaped(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` in ``schema``'s columns and types (NULL where it lacks a column)."""
    have = set(batch.schema.names)
    return pa.RecordBatch.from_arrays(
        [
            batch.column(f.name).cast(f.type) if f.name in have else pa.nulls(len(batch), f.type)
            for f in schema
        ],
        schema=schema,
    )


def _write(
    table: Table,
    con: duckdb.DuckDBPyConnection,
    commit: Commit,
    keys: Sequence[str],
    counts: dict[str, Any],
    soft: bool,
    partition_by: list[str],
    evolve: bool,
    counting: Callable[[pa.RecordBatchReader], pa.RecordBatchReader],
) -> dict[str, Any]:
    [(applied, superseded, deletes, rows)] = con.execute(
        "SELECT (SELECT count(*) FROM chg_out WHERE NOT _by_truncate), "
        "(SELECT count(*) FROM chg_app WHERE NOT _synthetic) "
        "- (SELECT count(*) FROM chg_out WHERE NOT _by_truncate), "
        f"(SELECT count(*) FROM chg_out WHERE _op NOT IN {UPSERTS} AND _action <> 'none'), "
        "(SELECT count(*) FROM chg_out WHERE _action <> 'none')"
    ).fetchall()
    counts |= {
        "num_changes_applied": int(applied) + counts["num_truncates"],
        "num_changes_superseded": int(superseded),
        "num_soft_deletes" if soft else "num_hard_deletes_applied": int(deletes),
    }
    out = "SELECT * EXCLUDE (_action, _by_truncate) FROM chg_out WHERE _action <> 'none'"
    if not table.exists():
        data = counting(con.sql(out).to_arrow_reader(16_384))
        table.write(data, commit, mode="append", partition_by=partition_by)
        return {**counts, "num_target_rows_inserted": int(rows)}
    if not rows:
        table.mark(commit)
        return counts
    rewritten = _rewrite(table, con, commit, keys, int(rows), evolve, counting)
    if rewritten is not None:
        return {**rewritten, **counts}
    source = counting(
        con.sql(
            "SELECT * EXCLUDE (_by_truncate) FROM chg_out WHERE _action <> 'none'"
        ).to_arrow_reader(16_384)
    )
    names = [c for c in source.schema.names if c != "_action"]
    values = {ident(c): f"s.{ident(c)}" for c in names}
    conds = " AND ".join(f"t.{ident(c)} = s.{ident(c)}" for c in keys)
    merger = table.merge(source, commit, predicate=conds, evolve=evolve)
    if not soft:
        merger = merger.when_matched_delete(predicate=f"s._action = 'delete' AND {GUARD}")
    merger = merger.when_matched_update(
        updates=values, predicate=f"s._action = 'upsert' AND {GUARD}"
    ).when_not_matched_insert(updates=values, predicate="s._action = 'upsert'")
    metrics = table.execute(merger)
    table.mark(commit)
    return {**metrics, **counts}
