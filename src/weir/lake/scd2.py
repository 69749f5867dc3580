"""SCD Type 2 loads: one batch, one MERGE that closes changed versions and opens new ones.

**One time axis per table.** With a ``valid_from`` column, versions are dated by the data,
and so is a hard delete: a key missing from a batch is closed at the batch's *as-of time*,
the latest ``valid_from`` among its rows. Without one, versions open at the run's start and
deletes close at the run's start. Mixing the two clocks would make every later change look
older than the version a delete reopened.

Nothing is discarded without being counted: a changed row not newer than its key's current
version (``late``) opens no version and is counted in ``num_source_rows_late``; a missing key
whose current version is not older than the batch's as-of time cannot be closed (its version
would end before it began), stays current and is counted in ``num_hard_deletes_late``.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from weir import layout
from weir.errors import ReconciliationError
from weir.lake.table import Commit, Table
from weir.spec.pipeline import Scd2
from weir.sql import ident, literal

VERSION_COLUMNS = layout.SCD2_NAMES
"""The columns an SCD2 table adds to the rows; incoming columns of these names are replaced."""


def tracked_columns(names: list[str], keys: list[str], settings: Scd2) -> list[str]:
    """The columns whose change opens a version: ``settings.tracked``, else every column
    except the key, ``_``-prefixed ones, the silver extras and the ``valid_from`` column."""
    skip = {"surrogate_key", "dq_valid", "dq_flags", settings.valid_from, *keys}
    return settings.tracked or [c for c in names if c not in skip and not c.startswith("_")]


def tracked_hash(tracked: list[str]) -> str:
    """The SQL of a row's ``_row_hash``: SHA-256 of its ``tracked`` columns (NULL distinct)."""
    values = ", ".join(f"coalesce(CAST({ident(c)} AS VARCHAR), '\\N')" for c in tracked)
    return f"sha256(concat_ws('|', {values}))"


def apply(
    table: Table,
    data: pa.RecordBatchReader,
    commit: Commit,
    con: duckdb.DuckDBPyConnection,
    *,
    keys: list[str],
    settings: Scd2,
    partition_by: list[str],
    evolve: bool,
    held: str | None = None,
    replace: bool = False,
) -> dict[str, Any]:
    """Apply one batch; returns the MERGE's metrics plus the SCD2 counts (module docstring).

    ``con`` is the DuckDB engine's (weir/engine/duckdb_engine.py, the only caller). ``held``
    is a query on ``con`` for rows the batch holds but does not load (quarantined,
    with the key columns as stored): with ``hard_deletes: close`` their keys are not taken
    as deleted. ``replace``: the table holds no SCD2 history (another materialization wrote
    it); the batch's versions replace it, schema and partitioning included."""
    k = [ident(c) for c in keys]
    # the stream comes from a query on ``con``: finish it before the next statement
    con.register("batch_rows", data.read_all())
    as_of = _incoming(con, data.schema.names, keys, settings)
    con.unregister("batch_rows")
    deletes: dict[str, Any] = {}
    fresh = replace or not table.exists()
    if fresh:
        con.execute("CREATE OR REPLACE TEMP TABLE cur AS SELECT * FROM incoming WHERE FALSE")
    else:
        con.execute(f"CREATE OR REPLACE TEMP VIEW target_rows AS {table.scan(con)}")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE cur AS SELECT * FROM target_rows "
            f"WHERE is_current AND ({', '.join(k)}) IN (SELECT ({', '.join(k)}) FROM incoming)"
        )
        _after_last_close(con, k)
        if settings.hard_deletes == "close":
            _held_keys(con, k, held)
            deletes = _absent(con, k, keys, as_of)
        con.execute("DROP VIEW target_rows")
    changes = _changes(con, k, held=bool(deletes))
    counts = _commit(
        table,
        changes,
        commit,
        keys,
        partition_by,
        evolve=evolve,
        fresh=fresh,
        as_of=as_of,
        deletes=deletes,
    )
    con.execute("DROP TABLE incoming")
    con.execute("DROP TABLE cur")
    return counts


def _incoming(
    con: duckdb.DuckDBPyConnection, names: list[str], keys: list[str], settings: Scd2
) -> Any:
    """``incoming``: the batch with its version start and tracked-column hash; returns the
    batch's as-of time, which dates its hard deletes (None: an empty batch on the data axis)."""
    row_hash = tracked_hash(tracked_columns(names, keys, settings))
    run_start = "CAST(getvariable('weir_run_ts') AS TIMESTAMP)"
    valid_from = (
        f"CAST({ident(settings.valid_from)} AS TIMESTAMP)" if settings.valid_from else run_start
    )
    drop = [c for c in VERSION_COLUMNS if c in names]
    exclude = f" EXCLUDE ({', '.join(ident(c) for c in drop)})" if drop else ""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT *{exclude}, "
        f"{valid_from} AS valid_from, {row_hash} AS _row_hash FROM batch_rows"
    )
    as_of_sql = (
        "SELECT max(valid_from) FROM incoming" if settings.valid_from else f"SELECT {run_start}"
    )
    [(as_of,)] = con.execute(as_of_sql).fetchall()
    return as_of


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


def _held_keys(con: duckdb.DuckDBPyConnection, k: list[str], held: str | None) -> None:
    """Temp table ``held``: the keys of the batch's rows that are not loaded (``held``, a
    query), present and not incoming."""
    cols = ", ".join(k)
    present = " AND ".join(f"{c} IS NOT NULL" for c in k)
    source = f"({held})" if held else "incoming"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE held AS SELECT DISTINCT {cols} FROM {source} "
        f"WHERE {present} AND ({cols}) NOT IN (SELECT ({cols}) FROM incoming)"
    )


def _absent(
    con: duckdb.DuckDBPyConnection, k: list[str], keys: list[str], as_of: Any
) -> dict[str, Any]:
    """Current keys the batch does not hold (``held`` ones neither): how many a delete at
    ``as_of`` closes, how many it cannot (their version starts at or after it), and one of
    those as an example."""
    cols = ", ".join(k)
    absent = (
        f"is_current AND ({cols}) NOT IN (SELECT ({cols}) FROM incoming) "
        f"AND ({cols}) NOT IN (SELECT ({cols}) FROM held)"
    )
    closes = "coalesce(valid_from < CAST(? AS TIMESTAMP), FALSE)"
    [(closed, late)] = con.execute(
        f"SELECT count(*) FILTER (WHERE {closes}), count(*) FILTER (WHERE NOT {closes}) "
        f"FROM target_rows WHERE {absent}",
        [as_of, as_of],
    ).fetchall()
    example = None
    if late:
        # fetchall, not fetchone: a result left open blocks the connection
        [row] = con.execute(
            f"SELECT {cols} FROM target_rows WHERE {absent} AND NOT {closes} LIMIT 1", [as_of]
        ).fetchall()
        example = dict(zip(keys, row, strict=True))
    return {"closed": int(closed), "late": int(late), "example": example}


def _changes(con: duckdb.DuckDBPyConnection, k: list[str], *, held: bool) -> pa.Table:
    """Each incoming row with its ``_action``: ``new`` (no current version), ``change`` (a
    newer version), ``late`` (changed, but not newer than the current version) or ``keep``;
    plus ``held`` rows (key only) for quarantined keys the MERGE must not take as deleted."""
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    on = " AND ".join(f"i.{c} = c.{c}" for c in k)
    version_key = (
        "sha256(concat_ws('|', "
        + ", ".join(f"CAST(i.{c} AS VARCHAR)" for c in k)
        + ", CAST(i.valid_from AS VARCHAR)))"
    )
    sql = (
        f"SELECT i.*, {version_key} AS surrogate_key, CAST(NULL AS TIMESTAMP) AS valid_to, "
        f"TRUE AS is_current, CASE WHEN c.{k[0]} IS NULL THEN 'new' "
        "WHEN c._row_hash <> i._row_hash AND i.valid_from > c.valid_from THEN 'change' "
        "WHEN c._row_hash <> i._row_hash THEN 'late' "
        f"ELSE 'keep' END AS _action FROM incoming i LEFT JOIN cur c ON {on}"
    )
    if held:
        sql += " UNION ALL BY NAME SELECT *, 'held' AS _action FROM held"
    changes: pa.Table = con.sql(sql).to_arrow_table()
    con.execute("DROP TABLE IF EXISTS held")
    [(incoming,)] = con.execute("SELECT count(*) FROM incoming").fetchall()
    rows = changes.num_rows - (pc.sum(pc.equal(changes["_action"], "held")).as_py() or 0)
    if rows != incoming:
        raise ReconciliationError(
            f"{incoming} incoming rows matched {rows} current versions: the table holds "
            "more than one current version of some key",
            hint="this is a bug in weir or a table written by another tool; "
            "`weir history` shows the commits, `weir restore` goes back to a good version",
        )
    return changes


def _commit(
    table: Table,
    changes: pa.Table,
    commit: Commit,
    keys: list[str],
    partition_by: list[str],
    *,
    evolve: bool,
    fresh: bool,
    as_of: Any,
    deletes: dict[str, Any],
) -> dict[str, Any]:
    """Stage inserts (``_mk`` null), closers (``close``) and the keys to leave as they are
    (``keep``), and MERGE them; absent keys close at ``as_of`` when ``deletes`` were asked.
    A ``fresh`` table is (over)written with the inserts alone."""
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    action = changes.column("_action")
    rows = changes.drop_columns(["_action"])
    counts = _counts(changes, keys, as_of, deletes)
    inserts = rows.filter(pc.is_in(action, pa.array(["new", "change"])))
    if fresh:
        replace = table.exists()
        table.write(
            inserts,
            commit,
            mode="overwrite" if replace else "append",
            partition_by=partition_by,
            replace_schema=replace,
        )
        return {"num_target_rows_inserted": inserts.num_rows, **counts}
    marks = pc.if_else(pc.equal(action, "change"), "close", "keep")
    existing = pc.not_equal(action, "new")
    # closers and keepers carry only what the MERGE reads: with schema evolution delta-rs
    # fills a new column of an updated (closed) row from its source row, and a closed
    # version must hold NULL there, not the value of the version that replaces it
    matched = rows.filter(existing).select([*keys, "valid_from"])
    staged = pa.concat_tables(
        [
            inserts.append_column("_mk", pa.nulls(inserts.num_rows, pa.string())),
            matched.append_column("_mk", marks.filter(existing)),
        ],
        promote_options="default",
    )
    conds = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in keys)
    predicate = f"s._mk IS NOT NULL AND t.is_current AND {conds}"
    merger = table.merge(staged, commit, predicate=predicate, evolve=evolve)
    merger = merger.when_matched_update(
        updates={"valid_to": "s.valid_from", "is_current": "false"},
        predicate="s._mk = 'close'",
    ).when_not_matched_insert(
        updates={c: f"s.{ident(c)}" for c in inserts.column_names},
        predicate="s._mk IS NULL",
    )
    if deletes.get("closed"):
        # full-snapshot semantics: a current key absent from this batch was deleted upstream
        at = f"CAST({literal(as_of.isoformat())} AS TIMESTAMP)"
        merger = merger.when_not_matched_by_source_update(
            updates={"valid_to": at, "is_current": "false"},
            predicate=f"t.is_current AND t.valid_from < {at}",
        )
    return {**table.execute(merger), **counts}


def _counts(
    changes: pa.Table, keys: list[str], as_of: Any, deletes: dict[str, Any]
) -> dict[str, Any]:
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    action = changes.column("_action")
    late = changes.filter(pc.equal(action, "late"))
    out: dict[str, Any] = {"num_source_rows_late": late.num_rows}
    examples: dict[str, Any] = {}
    if late.num_rows:
        examples["late"] = {k: late.column(k)[0].as_py() for k in keys}
    if deletes:
        out["hard_deletes_at"] = as_of.isoformat() if as_of is not None else None
        out["num_hard_deletes"] = deletes["closed"]
        out["num_hard_deletes_late"] = deletes["late"]
        if deletes["example"] is not None:
            examples["late_delete"] = deletes["example"]
    if examples:
        out["examples"] = examples
    return out


def warnings(metrics: dict[str, Any], masked: frozenset[str] = frozenset()) -> list[str]:
    """The run's warnings for rows and deletes an SCD2 load counted but could not apply;
    key columns in ``masked`` (PII) are shown as ``***``."""
    examples = metrics.get("examples", {})

    def key(kind: str) -> str:
        example = examples.get(kind)
        if not example:
            return ""
        shown = ", ".join(f"{k}={'***' if k in masked else v}" for k, v in example.items())
        return f" (e.g. {shown})"

    out = []
    late = int(metrics.get("num_source_rows_late") or 0)
    if late:
        out.append(
            f"{late} rows carry a change older than their key's current version "
            f"(out of order); they opened no version{key('late')}"
        )
    late_deletes = int(metrics.get("num_hard_deletes_late") or 0)
    at = metrics.get("hard_deletes_at")
    if late_deletes:
        why = (
            f" but their current version is not older than the batch's as-of time ({at});"
            if at is not None
            else ", which holds no rows to date their deletion,"
        )
        out.append(
            f"{late_deletes} keys are missing from the batch{why} they were not closed and "
            f"stay current{key('late_delete')}"
        )
    return out
