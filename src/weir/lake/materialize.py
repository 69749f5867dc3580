"""Gold materializations: write a model's result into its Delta table in exactly one commit.

The DuckDB engine (weir/engine/duckdb_engine.py) is the only caller, with its connection.
``new`` below is a DuckDB relation holding the rows a run recomputed (the whole result for
``table``, the window for ``incremental`` and ``partition-swap``). Every function compares
it with what the table holds, so a run writes only what changed, and a run that changes
nothing writes no data (the commit then only records the position: :meth:`Table.mark`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from weir.errors import WeirError
from weir.lake.strategies import in_list
from weir.lake.table import Commit, Table
from weir.sql import ident, literal


@dataclass(frozen=True)
class Bound:
    """The lower edge of a window: rows with ``column >= start`` are recomputed."""

    column: str
    start: Any
    """A Python date or datetime, or its ISO text."""

    def sql(self, alias: str | None = None) -> str:
        prefix = f"{alias}." if alias else ""
        start = self.start if isinstance(self.start, str) else self.start.isoformat()
        return f"{prefix}{ident(self.column)} >= {literal(start)}"


def overwrite(
    table: Table, rows: pa.RecordBatchReader, commit: Commit, *, partition_by: list[str]
) -> None:
    """Replace the whole table atomically (one overwrite commit; readers see old or new)."""
    table.write(rows, commit, mode="overwrite", partition_by=partition_by, replace_schema=True)


def merge_window(
    table: Table,
    con: duckdb.DuckDBPyConnection,
    new: str,
    commit: Commit,
    *,
    keys: list[str],
    bound: Bound,
) -> dict[str, Any]:
    """MERGE the window's changes on ``keys``: changed or new rows upsert, keys that left the
    window's result are deleted. When the window column is part of ``keys`` the target side is
    limited to ``bound`` (the incremental predicate), so only files that can hold window rows
    are scanned; otherwise a key may sit before the window and move into it, so the MERGE
    matches keys over the whole table."""
    _register_window(table, con, bound)
    k = ", ".join(ident(c) for c in keys)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __changes AS "
        f"SELECT *, 'upsert' AS __op FROM (SELECT * FROM {new} EXCEPT SELECT * FROM __old) "
        f"UNION ALL BY NAME SELECT {k}, 'delete' AS __op FROM __old "
        f"WHERE ({k}) NOT IN (SELECT ({k}) FROM {new})"
    )
    changes = _fetch(con, "SELECT * FROM __changes")
    con.execute("DROP TABLE __changes")
    con.unregister("__old")
    if changes.num_rows == 0:
        table.mark(commit)
        return {"num_target_rows_updated": 0, "num_target_rows_inserted": 0}
    on = " AND ".join(f"t.{ident(c)} = s.{ident(c)}" for c in keys)
    predicate = f"{on} AND {bound.sql('t')}" if bound.column in keys else on
    merger = table.merge(changes, commit, predicate=predicate)
    columns = [c for c in changes.column_names if c != "__op"]
    merger = (
        merger.when_matched_delete(predicate="s.__op = 'delete'")
        .when_matched_update(
            updates={c: f"s.{ident(c)}" for c in columns}, predicate="s.__op = 'upsert'"
        )
        .when_not_matched_insert(
            updates={c: f"s.{ident(c)}" for c in columns}, predicate="s.__op = 'upsert'"
        )
    )
    return table.execute(merger)


def swap_partitions(
    table: Table,
    con: duckdb.DuckDBPyConnection,
    new: str,
    commit: Commit,
    *,
    partition_by: list[str],
    bound: Bound,
) -> dict[str, Any]:
    """Overwrite, by predicate, every partition inside the window whose content changed
    (and delete partitions that vanished from the result); untouched ones stay as they are."""
    _register_window(table, con, bound)
    parts = ", ".join(ident(p) for p in partition_by)
    changed = con.execute(
        f"SELECT DISTINCT {parts} FROM ((SELECT * FROM {new} EXCEPT ALL SELECT * FROM __old) "
        f"UNION ALL (SELECT * FROM __old EXCEPT ALL SELECT * FROM {new}))"
    ).fetchall()
    con.unregister("__old")
    if not changed:
        table.mark(commit)
        return {"partitions_replaced": 0}
    values = {p: sorted({row[i] for row in changed}, key=str) for i, p in enumerate(partition_by)}
    if len(partition_by) == 1:
        predicate = in_list(partition_by[0], values[partition_by[0]])
    else:
        predicate = " OR ".join(
            "(" + " AND ".join(in_list(p, [row[i]]) for i, p in enumerate(partition_by)) + ")"
            for row in changed
        )
    if bound.column not in partition_by:
        # such a partition also holds rows before the window: replace only its window rows
        predicate = f"({predicate}) AND {bound.sql()}"
    # the same predicate in DuckDB picks the rows that replace those partitions
    rows = _fetch(con, f"SELECT * FROM {new} WHERE {predicate}")
    table.write(rows, commit, mode="overwrite", predicate=predicate)
    return {"partitions_replaced": len(changed), "num_target_rows_inserted": rows.num_rows}


def _register_window(table: Table, con: duckdb.DuckDBPyConnection, bound: Bound) -> None:
    """``__old``: the table's rows inside the window (the filter prunes files and partitions)."""
    if not table.exists():
        raise WeirError("the target table is missing", where=table.uri)
    old = _fetch(con, f"SELECT * FROM ({table.scan(con)}) WHERE {bound.sql()}")
    con.register("__old", old)


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    table: pa.Table = con.sql(sql).to_arrow_table()
    return table
