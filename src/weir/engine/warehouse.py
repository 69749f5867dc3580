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
import pyarrow as pa
from deltalake import DeltaTable

from weir.errors import LakeError, TransformError
from weir.lake.table import Table, check_files, qualified_name, translated
from weir.sql import ident, literal
from weir.storage import is_remote

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


def require_local(uri: str) -> None:
    """LakeError unless DuckDB can read the table at ``uri``: it reads local files only, as
    it has no httpfs extension here (and cannot download one)."""
    if is_remote(uri):
        raise LakeError(
            f"DuckDB cannot read {qualified_name(uri)} on an object store: it needs the "
            "httpfs extension, which this installation does not have",
            where=uri,
            hint="models, scd2 loads, `weir show` and the dbt warehouse read the lake with "
            "DuckDB, so they need a local lake (or one mounted as a path) for now; see "
            "docs/pipelines.md (object stores) for what works there",
        )


def scan_sql(con: duckdb.DuckDBPyConnection, dt: DeltaTable) -> str:
    """A SELECT over exactly the parquet files of ``dt``'s snapshot, with the Delta schema's
    columns in its order and types, read by DuckDB's own parquet reader.

    weir reads its tables this way rather than through a pyarrow dataset: DuckDB prunes
    hive partitions and row groups itself, and pyarrow cannot evaluate a pushed-down string
    filter on files a delta-rs MERGE wrote with ``string_view`` columns (apache/arrow#49368)."""
    require_local(dt.table_uri)
    check_files(dt)
    types = _duckdb_types(con, pa.schema(dt.schema().to_arrow()))
    files = dt.file_uris()
    if not files:
        nulls = ", ".join(f"CAST(NULL AS {t}) AS {ident(c)}" for c, t in types.items())
        return f"SELECT {nulls} WHERE false"
    partitions = dt.metadata().partition_columns
    options = ["union_by_name = true", f"hive_partitioning = {str(bool(partitions)).lower()}"]
    if partitions:
        hive = ", ".join(f"{literal(p)}: {literal(types[p])}" for p in partitions)
        options.append(f"hive_types = {{{hive}}}")
    scan = f"read_parquet([{', '.join(literal(f) for f in files)}], {', '.join(options)})"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
    except duckdb.Error as exc:
        raise LakeError(
            f"cannot read the data files of {qualified_name(dt.table_uri)}: "
            f"{str(exc).splitlines()[0]}",
            where=dt.table_uri,
            hint="a data file may be damaged: restore it from a backup or restore an earlier "
            "table version; `weir history` shows the table's log",
        ) from exc
    present = {str(row[0]) for row in described}
    columns = ", ".join(
        f"CAST({ident(c) if c in present else 'NULL'} AS {t}) AS {ident(c)}"
        for c, t in types.items()
    )
    return f"SELECT {columns} FROM {scan}"


def _duckdb_types(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> dict[str, str]:
    """DuckDB's spelling of each column's type, as DuckDB itself maps the Arrow schema."""
    con.register("weir_schema_probe", schema.empty_table())
    try:
        rows = con.execute("DESCRIBE SELECT * FROM weir_schema_probe").fetchall()
    finally:
        con.unregister("weir_schema_probe")
    return {str(name): str(typ) for name, typ, *_ in rows}
