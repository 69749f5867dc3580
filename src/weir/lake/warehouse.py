"""weir's Delta tables as views in a DuckDB file, for tools that read one (dbt steps).

Each view reads exactly the parquet files of its table's current snapshot (the add actions
of the Delta log at the version read), so a reader sees one committed version, never a
half-written one, and nothing that a later vacuum removes mid-read of an older version.
delta-rs keeps partition values out of the parquet files; the views take them from the
``col=value`` folders, typed as the Delta schema says. DuckDB's built-in parquet reader is
all this needs: no extension is downloaded.

All views are replaced in one transaction, so a process killed half-way leaves the previous
set intact, and the next run replaces them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from deltalake import DeltaTable

from weir.errors import LakeError, TransformError
from weir.lake.table import Table, scan_sql, translated
from weir.sql import ident, literal

MARK = "weir:"
"""Start of the comment on every view weir creates: views without it are never touched."""

_UNSUPPORTED = {"deletionVectors", "columnMapping"}


@dataclass
class Exposed:
    """What :func:`expose` did: the version each view shows, and the tables not there yet."""

    versions: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def expose(path: Path, tables: Mapping[str, str]) -> Exposed:
    """Create or replace one view per table in the DuckDB file ``path``.

    ``tables`` maps qualified names (``silver.orders``) to Delta table URIs. A table that does
    not exist yet gets no view (and loses an older one); weir views of tables no longer
    given are dropped.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    exposed = Exposed()
    snapshots: dict[str, DeltaTable] = {}
    for name, uri in tables.items():
        dt = Table(uri, label=name).dt
        if dt is None:
            exposed.missing.append(name)
        else:
            _check_readable(dt, name, uri)
            snapshots[name] = dt
            exposed.versions[name] = dt.version()
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise TransformError(
            f"cannot open the DuckDB warehouse: {exc}",
            where=str(path),
            hint="another process may hold it open (a DuckDB shell, a BI tool); close it",
        ) from exc
    try:
        _replace_views(con, tables, snapshots)
    finally:
        con.close()
    return exposed


def _replace_views(
    con: duckdb.DuckDBPyConnection, tables: Mapping[str, str], snapshots: Mapping[str, DeltaTable]
) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        for schema in sorted({name.partition(".")[0] for name in tables}):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
        for schema, view in _weir_views(con):
            if f"{schema}.{view}" not in snapshots:
                con.execute(f"DROP VIEW {ident(schema)}.{ident(view)}")
        for name, dt in snapshots.items():
            qualified = ".".join(ident(p) for p in name.split(".", 1))
            with translated(f"read the snapshot of {name}", tables[name]):
                select = scan_sql(con, dt)
            con.execute(f"CREATE OR REPLACE VIEW {qualified} AS {select}")
            note = f"{MARK} {tables[name]} version {dt.version()}"
            con.execute(f"COMMENT ON VIEW {qualified} IS {literal(note)}")
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise TransformError(
            f"could not create weir's views in the DuckDB warehouse: {exc}",
            hint="the schemas silver and gold of the warehouse are weir's: keep your own "
            "tables out of them; a lake on an object store needs DuckDB's httpfs extension",
        ) from exc
    con.execute("CHECKPOINT")


def _weir_views(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT schema_name, view_name FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal AND starts_with(comment, ?)",
        [MARK],
    ).fetchall()
    return [(str(s), str(v)) for s, v in rows]


def _check_readable(dt: DeltaTable, name: str, uri: str) -> None:
    features = set(dt.protocol().reader_features or [])
    if features & _UNSUPPORTED:
        raise LakeError(
            f"{name} uses Delta features that a plain parquet view cannot read: "
            + ", ".join(sorted(features & _UNSUPPORTED)),
            where=uri,
            hint="weir's own tables never use them; rewrite the table without them",
        )
