"""Change events as an SCD Type 2 history: every applied change of a key is a version.

``load: {strategy: scd2}`` over a change-event source (``Source.emits_changes``). Where
lake/changes.py keeps the last image per key, this keeps them all. For one batch of valid
events (the silver SELECT's rows):

- a key's events are ordered by ``(_lsn, _seq)``, then by arrival (``_batch``, ``_row``);
  an event at or below the key's position — the greatest ``(_lsn, _seq)`` among its versions
  — is *stale* and never applied again (:func:`weir.lake.changes.applicable`), so a file
  delivered twice, re-delivered events and a re-run after a crash leave the table as it is;
- each ``insert``, ``update`` or ``snapshot`` whose tracked columns differ from the key's
  current version (:func:`weir.lake.scd2.tracked_columns`) **opens** a version, several per
  key and batch when the key changed several times; the previous version closes at its
  ``valid_from``. One that changes no tracked column opens nothing (``unchanged``): the
  current version takes its change columns (its position), nothing else;
- a version starts at the change's commit time (``_committed_at``, UTC; the ingestion time
  when the source has none, as for a CDC snapshot) or, with ``scd2.valid_from``, at that
  column's value; never before the key's previous version or close, so versions never
  overlap (a transaction's several changes of a key make versions of no length);
- ``delete`` **closes** the current version at the delete's commit time and the version
  takes the delete's change columns; with ``soft`` deletes it also gets ``is_deleted`` true
  and ``deleted_at``, with ``hard`` it is only closed. A delete of a key without a current
  version changes nothing; a later insert opens a new current version;
- ``truncate`` closes every version current at its position, each like a delete
  (:func:`weir.lake.changes.truncates`).

A version's change columns are those of the last change applied to it (the one that opened
it, an unchanged one, or the one that closed it), so a key's position is its latest
version's. One MERGE inserts the new versions and updates the key's current version in the
table (closed, or its change columns), guarded like lake/changes.py so it cannot go back;
exactly one commit carries the batch's app transaction (:meth:`Table.mark` when nothing
changed). The SQL is DuckDB's and reads the target through ``Table.scan``: a local lake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

import duckdb
import pyarrow as pa

from weir.errors import ReconciliationError
from weir.lake.changes import UPSERTS, ChangeLoad, applicable, truncates
from weir.lake.scd2 import VERSION_COLUMNS, tracked_columns, tracked_hash
from weir.lake.table import Commit, Table
from weir.spec.pipeline import Scd2
from weir.sql import ident

METRICS = (
    "num_versions_opened",
    "num_versions_closed",
    "num_versions_unchanged",
    "num_deletes",
    "num_versions_truncated",
)
"""The counts :func:`apply` adds to a batch's load metrics besides ``num_change_events``,
``num_changes_stale`` and ``num_truncates`` (lake/changes.py's): versions opened, versions
closed (by a later version, a delete or a truncate), changes of no tracked column, versions
a delete closed, versions a truncate closed."""

_TABLES = ("chg_in", "chg_cur", "chg_trunc", "chg_app", "chg_seq", "chg_eff", "chg_ver", "chg_out")
_WORK = ("_mk", "_k_lsn", "_k_seq")
"""Columns of ``chg_out`` the MERGE reads but does not write."""
_COMMIT_TIME = "CAST(timezone('UTC', coalesce({a}_committed_at, {a}_ingested_at)) AS TIMESTAMP)"


def apply(
    table: Table,
    con: duckdb.DuckDBPyConnection,
    events: str,
    commit: Commit,
    *,
    keys: Sequence[str],
    settings: ChangeLoad,
    scd2: Scd2,
    partition_by: list[str],
    evolve: bool,
    counting: Callable[[pa.RecordBatchReader], pa.RecordBatchReader] = lambda rows: rows,
) -> dict[str, Any]:
    """Apply the events that ``events`` (a query on ``con``) selects as versions; returns
    the counts (:data:`METRICS`, module docstring) and the MERGE's metrics."""
    k = [ident(c) for c in keys]
    names = list(con.sql(f"SELECT * FROM ({events}) LIMIT 0").columns)
    drop = ", ".join(ident(c) for c in VERSION_COLUMNS if c in names)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE chg_in AS SELECT * {f'EXCLUDE ({drop})' if drop else ''}, "
        "{'l': _lsn, 's': coalesce(_seq, 0), 'b': _batch, 'r': _row} AS _at, "
        f"FALSE AS _synthetic FROM ({events})"
    )
    columns = [c for c in names if c not in VERSION_COLUMNS]
    soft = settings.action == "soft"
    try:
        _current(con, table, k)
        [(events_in,)] = con.execute("SELECT count(*) FROM chg_in").fetchall()
        counts: dict[str, Any] = {"num_change_events": int(events_in)}
        counts["num_truncates"] = truncates(con, k, [c for c in settings.events if c in columns])
        counts |= applicable(con, k)
        tracked = tracked_columns(columns, list(keys), scd2)
        _sequence(con, k, tracked_hash(tracked))
        _dated(con, k, scd2)
        counts |= _counts(con)
        data = [c for c in columns if c not in set(settings.events)]
        taken = [c for c in settings.events if c in columns]
        _staged(con, k, data, taken, soft=soft)
        merged = _write(table, con, commit, keys, taken, soft, partition_by, evolve, counting)
        return {**merged, **counts}
    finally:
        with suppress(duckdb.Error):  # after a failure, the failure is the one to report
            for name in _TABLES:
                con.execute(f"DROP TABLE IF EXISTS {name}")
            con.execute("DROP VIEW IF EXISTS chg_target")


def _current(con: duckdb.DuckDBPyConnection, table: Table, k: list[str]) -> None:
    """``chg_cur``: per key the batch can change — its keys, and the keys current below the
    batch's last truncate — its position (``_lsn``, ``_seq``, ``_pos``), whether it has a
    current version and that version's ``_row_hash``, and the latest time of its versions
    (``_last_t``), which no new version may start before."""
    cols = ", ".join(k)
    if not table.exists():
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE chg_cur AS SELECT {cols}, _lsn, _seq, "
            "{'l': _lsn, 's': coalesce(_seq, 0)} AS _pos, FALSE AS _has_cur, "
            "CAST(NULL AS VARCHAR) AS _cur_hash, CAST(NULL AS TIMESTAMP) AS _last_t, "
            "0 AS _currents "
            "FROM chg_in WHERE FALSE"
        )
        return
    con.execute(f"CREATE OR REPLACE TEMP VIEW chg_target AS {table.scan(con)}")
    have = set(con.sql("SELECT * FROM chg_target LIMIT 0").columns)
    missing = [
        c for c in ("is_current", "valid_from", "valid_to", "_row_hash", "_lsn") if c not in have
    ]
    if missing:
        raise ReconciliationError(
            f"{table.label} table {table.uri} holds no SCD2 history of change events "
            f"(it has no {missing[0]} column): it was written with another strategy",
            hint="`weir run --full-refresh` rebuilds it from bronze with strategy scd2",
        )
    pos = "{'l': _lsn, 's': coalesce(_seq, 0)}"
    last = f"(SELECT max({pos}) FROM chg_in WHERE _op = 'truncate')"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE chg_cur AS SELECT {cols}, max({pos}).l AS _lsn, "
        f"max({pos}).s AS _seq, max({pos}) AS _pos, bool_or(is_current) AS _has_cur, "
        "any_value(_row_hash) FILTER (WHERE is_current) AS _cur_hash, "
        "greatest(max(valid_from), max(valid_to)) AS _last_t, "
        "count(*) FILTER (WHERE is_current) AS _currents FROM chg_target "
        f"WHERE ({cols}) IN (SELECT ({cols}) FROM chg_in WHERE _op <> 'truncate') "
        f"OR (is_current AND {pos} < {last}) GROUP BY ALL"
    )
    [(doubled,)] = con.execute("SELECT count(*) FROM chg_cur WHERE _currents > 1").fetchall()
    if doubled:
        raise ReconciliationError(
            f"{doubled} keys have more than one current version in {table.uri}",
            hint="this is a bug in weir or a table written by another tool; "
            "`weir history` shows the commits, `weir restore` goes back to a good version",
        )


def _sequence(con: duckdb.DuckDBPyConnection, k: list[str], row_hash: str) -> None:
    """``chg_seq``: the applicable events with what each does (``_kind``) — ``open`` a
    version, ``same`` (an image equal to the current version's), ``close`` the current
    version, or ``none`` (a delete or truncate of a key without one) — whether it closes a
    version (``_closes``), and the version it belongs to (``_g``: 0 the table's current
    version, then one more at each ``open``)."""
    on = " AND ".join(f"a.{c} = c.{c}" for c in k)
    part = ", ".join(k)
    image = f"_op IN {UPSERTS}"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE chg_seq AS "
        f"WITH e AS (SELECT a.*, {row_hash} AS _row_hash, {image} AS _image, "
        "coalesce(c._has_cur, FALSE) AS _has_cur, c._cur_hash, c._last_t "
        f"FROM chg_app a LEFT JOIN chg_cur c ON {on}), "
        f"p AS (SELECT *, lag(_image) OVER w AS _prev_image, lag(_row_hash) OVER w AS _prev_hash "
        f"FROM e WINDOW w AS (PARTITION BY {part} ORDER BY _at)), "
        # the state before each event: the previous event's, or the table's for the first
        "s AS (SELECT *, CASE WHEN _prev_image IS NULL THEN _has_cur ELSE _prev_image END "
        "AS _held, CASE WHEN _prev_image IS NULL THEN _cur_hash ELSE _prev_hash END AS _held_hash "
        "FROM p), "
        "t AS (SELECT * EXCLUDE (_prev_image, _prev_hash, _cur_hash), CASE "
        "WHEN _image AND _held AND _held_hash = _row_hash THEN 'same' "
        "WHEN _image THEN 'open' WHEN _held THEN 'close' ELSE 'none' END AS _kind FROM s) "
        "SELECT *, _held AND _kind IN ('open', 'close') AS _closes, "
        f"sum(CAST(_kind = 'open' AS INTEGER)) OVER (PARTITION BY {part} ORDER BY _at "
        "ROWS UNBOUNDED PRECEDING) AS _g FROM t"
    )


def _dated(con: duckdb.DuckDBPyConnection, k: list[str], settings: Scd2) -> None:
    """``chg_eff``: the events that open or close a version, with the time they do it at
    (``_t``): the commit time, or the ``valid_from`` column of an opening image; never
    before an earlier version of the key starts or ends."""
    part = ", ".join(k)
    commit_time = _COMMIT_TIME.format(a="")
    own = commit_time
    if settings.valid_from:
        own = f"CASE WHEN _image THEN CAST({ident(settings.valid_from)} AS TIMESTAMP) ELSE {commit_time} END"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE chg_eff AS SELECT {part}, _at, _g, _kind, _synthetic, "
        f"greatest(max({own}) OVER (PARTITION BY {part} ORDER BY _at ROWS UNBOUNDED PRECEDING), "
        "_last_t) AS _t FROM chg_seq WHERE _kind IN ('open', 'close')"
    )


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    [row] = con.execute(
        "SELECT count(*) FILTER (WHERE _kind = 'open'), count(*) FILTER (WHERE _closes), "
        "count(*) FILTER (WHERE _kind = 'same'), "
        "count(*) FILTER (WHERE _kind = 'close' AND NOT _synthetic), "
        "count(*) FILTER (WHERE _kind = 'close' AND _synthetic) FROM chg_seq"
    ).fetchall()
    return {name: int(value or 0) for name, value in zip(METRICS, row, strict=True)}


def _staged(
    con: duckdb.DuckDBPyConnection,
    k: list[str],
    data: list[str],
    taken: list[str],
    *,
    soft: bool,
) -> None:
    """``chg_out``, the MERGE's source: the new versions (``_mk`` NULL), and per key whose
    current version in the table changes, that change (``_mk``: ``record`` its change
    columns too, ``close`` only its end), with the position that makes it (``_k_*``)."""
    part = ", ".join(k)

    def on(a: str, b: str = "v") -> str:
        return " AND ".join(f"{b}.{c} = {a}.{c}" for c in k)

    # per version (key, _g; 0: the table's current one): its opening and last applied event
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE chg_ver AS SELECT {part}, _g, "
        "max(_at) FILTER (WHERE _kind IN ('open', 'same', 'close')) AS rec_at, "
        "max(_at) FILTER (WHERE _kind = 'open') AS open_at FROM chg_seq GROUP BY ALL "
        f"UNION ALL BY NAME SELECT DISTINCT {part}, 0 AS _g FROM chg_seq WHERE _has_cur "
        f"AND ({part}) NOT IN (SELECT ({part}) FROM chg_seq WHERE _g = 0)"
    )
    # how a version ends: closed (c), or the next one opens (n)
    ends = (
        f"LEFT JOIN chg_eff c ON {on('c')} AND c._g = v._g AND c._kind = 'close' "
        f"LEFT JOIN chg_eff n ON {on('n')} AND n._g = v._g + 1 AND n._kind = 'open' "
        f"LEFT JOIN chg_seq r ON {on('r')} AND r._at = v.rec_at"
    )
    ending = ["coalesce(c._t, n._t) AS valid_to", "c._t IS NULL AND n._t IS NULL AS is_current"]
    if soft:
        ending += [
            "c._t IS NOT NULL AS is_deleted",
            "CASE WHEN c._t IS NOT NULL THEN coalesce(r._committed_at, r._ingested_at) END "
            "AS deleted_at",
        ]
    taken_r = ", ".join(f"r.{ident(c)}" for c in taken)
    version_key = ", ".join(
        [f"CAST(o.{c} AS VARCHAR)" for c in k]
        + [
            "CAST(e._t AS VARCHAR)",
            "CAST(o._lsn AS VARCHAR)",
            "CAST(coalesce(o._seq, 0) AS VARCHAR)",
        ]
    )
    inserts = (
        f"SELECT {', '.join(f'o.{ident(c)}' for c in data)}, {taken_r}, "
        f"{''.join(f'{e}, ' for e in ending[2:])}e._t AS valid_from, o._row_hash, "
        f"sha256(concat_ws('|', {version_key})) AS surrogate_key, {', '.join(ending[:2])}, "
        "CAST(NULL AS VARCHAR) AS _mk, CAST(NULL AS BIGINT) AS _k_lsn, "
        "CAST(NULL AS BIGINT) AS _k_seq "
        f"FROM chg_ver v JOIN chg_seq o ON {on('o')} AND o._at = v.open_at "
        f"JOIN chg_eff e ON {on('e')} AND e._at = v.open_at {ends} WHERE v._g > 0"
    )
    made_by = "coalesce(n._at, r._at)"
    updates = (
        f"SELECT {', '.join(f'v.{c}' for c in k)}, {taken_r}, {', '.join(ending)}, "
        "CASE WHEN v.rec_at IS NOT NULL THEN 'record' ELSE 'close' END AS _mk, "
        f"{made_by}.l AS _k_lsn, {made_by}.s AS _k_seq FROM chg_ver v "
        f"JOIN chg_cur u ON {on('u')} AND u._has_cur {ends} "
        "WHERE v._g = 0 AND (v.rec_at IS NOT NULL OR n._t IS NOT NULL)"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE chg_out AS {inserts} UNION ALL BY NAME {updates}")


GUARD = (
    "(t._lsn IS NULL OR s._k_lsn > t._lsn OR "
    "(s._k_lsn = t._lsn AND s._k_seq > coalesce(t._seq, 0)))"
)
"""The MERGE changes a table's current version only with a later change than it holds."""


def _write(
    table: Table,
    con: duckdb.DuckDBPyConnection,
    commit: Commit,
    keys: Sequence[str],
    taken: list[str],
    soft: bool,
    partition_by: list[str],
    evolve: bool,
    counting: Callable[[pa.RecordBatchReader], pa.RecordBatchReader],
) -> dict[str, Any]:
    """Write ``chg_out``: a new table with the versions, else one guarded MERGE."""
    [(rows, inserts)] = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE _mk IS NULL) FROM chg_out"
    ).fetchall()
    if not table.exists():
        out = f"SELECT * EXCLUDE ({', '.join(_WORK)}) FROM chg_out WHERE _mk IS NULL"
        data = counting(con.sql(out).to_arrow_reader(16_384))
        table.write(data, commit, mode="append", partition_by=partition_by)
        return {"num_target_rows_inserted": int(inserts)}
    if not rows:
        table.mark(commit)
        return {}
    source = counting(con.sql("SELECT * FROM chg_out").to_arrow_reader(16_384))
    names = [c for c in source.schema.names if c not in _WORK]
    ending = ["valid_to", "is_current"] + (["is_deleted", "deleted_at"] if soft else [])
    conds = " AND ".join(f"t.{ident(c)} = s.{ident(c)}" for c in keys)
    predicate = f"s._mk IS NOT NULL AND t.is_current AND {conds}"
    merger = table.merge(source, commit, predicate=predicate, evolve=evolve)
    merger = (
        merger.when_matched_update(
            updates={ident(c): f"s.{ident(c)}" for c in [*taken, *ending]},
            predicate=f"s._mk = 'record' AND {GUARD}",
        )
        .when_matched_update(
            updates={ident(c): f"s.{ident(c)}" for c in ending},
            predicate=f"s._mk = 'close' AND {GUARD}",
        )
        .when_not_matched_insert(
            updates={ident(c): f"s.{ident(c)}" for c in names}, predicate="s._mk IS NULL"
        )
    )
    metrics = table.execute(merger)
    table.mark(commit)
    return metrics
