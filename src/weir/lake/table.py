"""One Delta table: reads, commits with app transactions, and error translation.

Every weir commit carries an app transaction ``(app_id, version)`` and commit metadata
(``weir.position``, ``weir.run_id``, ``weir.batch``). delta-rs does not skip a replayed
transaction by itself, so callers ask :meth:`Table.applied` on the same object they commit
with and skip a batch already committed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError

from weir import faults
from weir.errors import LakeError
from weir.lake.native import quiet_panics
from weir.memory import small_batches
from weir.sql import ident, literal
from weir.storage import is_remote, options_for

if TYPE_CHECKING:  # imported when used: it imports pyarrow.compute (~40 ms)
    import pyarrow.dataset as ds

WRITER = WriterProperties(
    max_row_group_size=131_072, compression="SNAPPY", dictionary_page_size_limit=65_536
)
"""Row groups of 128k rows: the parquet writer buffers one per file being written, so this
bounds a write's memory (1M-row groups of hash columns cost hundreds of MB). Snappy, as
Spark and DuckDB write it: explicit properties without a codec wrote uncompressed files
(1M bench rows: 109 MB uncompressed, 91 MB snappy, for 0.46 s against 0.36 s). A column's
dictionary stops at 64 KiB (the writer's default is 1 MiB): a column of few values (a
status, a country) keeps its dictionary, one of distinct values (hashes, keys, positions)
falls back to plain encoding sooner instead of filling a dictionary it then throws away —
1M CDC rows (24 columns) wrote in 0.50 s instead of 0.77–1.00 s, 159 MB instead of
166 MB (bench/RESULTS.md, 2026-12-03)."""

LOG_RETENTION = {"delta.logRetentionDuration": "interval 36500 days"}
"""Keep the log (and with it each commit's position metadata) as long as the table lives."""


@dataclass(frozen=True)
class Commit:
    app_id: str
    batch: int
    run_id: str
    started_at: str = ""
    position: dict[str, Any] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """More commit metadata, e.g. ``weir.definition``; values are stored as JSON."""

    def properties(self) -> CommitProperties:
        meta = {"weir.batch": str(self.batch), "weir.run_id": self.run_id}
        if self.position is not None:
            meta["weir.position"] = json.dumps(self.position, sort_keys=True)
        meta |= {k: json.dumps(v, sort_keys=True) for k, v in self.metadata.items()}
        return CommitProperties(
            custom_metadata=meta, app_transactions=[Transaction(self.app_id, self.batch)]
        )


@contextmanager
def translated(action: str, uri: str) -> Iterator[None]:
    """Re-raise delta-rs and Arrow errors as LakeError naming the table and the action (and
    the missing files, or the full disk, when that is the cause); delta-rs's Rust panics
    stay off stderr (lake/native.py)."""
    try:
        with quiet_panics():
            yield
    except (DeltaError, OSError, pa.ArrowException) as exc:
        raise lake_error(action, uri, exc) from exc


_OS_ERROR = re.compile(r"\(os error (\d+)\)|\[Errno (\d+)\]")
_DISK_FULL = {28: "no space left on the device", 122: "the disk quota is exceeded"}


def lake_error(action: str, uri: str, exc: Exception) -> LakeError:
    """The LakeError for a failed delta-rs or Arrow call on the table at ``uri``."""
    missing = _missing_after_failure(uri)
    if missing:
        return missing_files_error(uri, missing)
    code = getattr(exc, "errno", None)
    found = _OS_ERROR.search(str(exc))
    if code is None and found:
        code = int(found[1] or found[2])
    if code in _DISK_FULL or code == 27:
        cause = _DISK_FULL.get(code, "a file grew past the size limit for this process")
        return LakeError(
            f"could not {action}: {cause}",
            where=uri,
            hint="free space where the lake lives (or raise the limit) and run again: nothing "
            "was committed, so the run starts over from the last commit (partial files the "
            "write left are in no table version)",
        )
    return LakeError(
        f"could not {action}: {type(exc).__name__}: {exc}",
        where=uri,
        hint="check the lake path and permissions; `weir history` shows the table's log",
    )


def _missing_after_failure(uri: str) -> list[str]:
    try:
        return missing_files(DeltaTable(uri, storage_options=options_for(uri)))
    except (DeltaError, OSError):
        return []


def missing_files(dt: DeltaTable) -> list[str]:
    """Data files of ``dt``'s snapshot that its log references but the disk does not hold
    (local tables only: an object store is not checked here)."""
    missing = []
    for uri in dt.file_uris():
        if "://" in uri and not uri.startswith("file://"):
            return []
        if not os.path.exists(uri.removeprefix("file://")):
            missing.append(uri)
    return missing


def qualified_name(uri: str) -> str:
    """``layer.name`` of a weir table from its URI (``…/silver/orders`` → ``silver.orders``)."""
    parts = uri.rstrip("/").split("/")
    return ".".join(parts[-2:])


def missing_files_error(uri: str, missing: list[str]) -> LakeError:
    uri = uri.removeprefix("file://").rstrip("/")
    name = qualified_name(uri)
    layer = name.partition(".")[0]
    shown = ", ".join(os.path.basename(m) for m in missing[:3])
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    n = len(missing)
    after = {
        "bronze": "they are lost from bronze, though the source may still hold them",
        "gold": "a full refresh of the model recomputes them",
    }.get(layer, "a rebuild from bronze, `weir run --full-refresh PIPELINE`, brings them back")
    return LakeError(
        f"{n} data file{'s' if n > 1 else ''} of {name} that the Delta log references "
        f"{'are' if n > 1 else 'is'} missing from disk: {shown}{more}",
        where=uri,
        hint="put the files back from a backup, or restore an earlier table version that "
        f"does not reference them; or drop the references with `weir repair {name}` (a dry "
        f"run; --apply commits it): the rows in those files leave the table ({after})",
    )


def check_files(dt: DeltaTable) -> None:
    """LakeError when a data file of ``dt``'s snapshot is missing (before reading it)."""
    missing = missing_files(dt)
    if missing:
        raise missing_files_error(dt.table_uri, missing)


@dataclass(frozen=True)
class Repair:
    """What ``weir repair`` found (and, applied, dropped): files, their rows, the version."""

    files: list[str] = field(default_factory=list)
    rows: int | None = None
    version: int | None = None
    applied: bool = False


class Table:
    def __init__(self, uri: str, *, label: str, private: frozenset[str] = frozenset()):
        """``private``: columns whose values (PII digests) stay out of the Delta log's file
        statistics, so that forgetting a data subject can remove every copy of them."""
        self.uri = uri
        self.label = label
        self.private = private
        self._dt: DeltaTable | None = None
        self.bytes_added = 0
        """Bytes of the data files this object's commits added (a run record's
        ``bytes_written``): the add actions' sizes, new in the snapshot after each commit."""

    @property
    def dt(self) -> DeltaTable | None:
        if self._dt is None:
            try:
                self._dt = DeltaTable(self.uri, storage_options=options_for(self.uri))
            except TableNotFoundError:
                return None
            except (DeltaError, OSError) as exc:  # OSError: the object store failed
                raise LakeError(
                    f"cannot open {self.label} table: {_one_line(exc)}",
                    where=self.uri,
                    hint="check the lake location, its storage_options in weir.yml and that "
                    "the store is reachable",
                ) from exc
        return self._dt

    def exists(self) -> bool:
        return self.dt is not None

    def version(self) -> int | None:
        dt = self.dt
        return dt.version() if dt is not None else None

    def applied(self, app_id: str) -> int:
        """The highest batch of ``app_id`` committed to this table (0 when none)."""
        dt = self.dt
        if dt is None:
            return 0
        return dt.transaction_version(app_id) or 0

    def commit_metadata(self, batch: int, *, scan: int = 200) -> dict[str, Any] | None:
        """The commit info of the commit that carried ``batch``."""
        dt = self.dt
        if dt is None:
            return None
        with translated("read history", self.uri):
            for limit in (scan, None):
                for info in dt.history(limit):
                    if info.get("weir.batch") == str(batch):
                        return info
        return None

    def history(self) -> list[dict[str, Any]]:
        """Every commit's info, newest first (the log is kept as long as the table)."""
        dt = self.dt
        if dt is None:
            return []
        with translated("read history", self.uri):
            return list(dt.history())

    def position(self, app_id: str) -> tuple[int, dict[str, Any] | None]:
        """(last batch, position committed with it) for ``app_id``."""
        batch = self.applied(app_id)
        if batch == 0:
            return 0, None
        info = self.commit_metadata(batch)
        if info is None or "weir.position" not in info:
            raise LakeError(
                f"{self.label} table has batch {batch} of {app_id} but its commit info is gone",
                where=self.uri,
                hint="the Delta log was cleaned up; run a backfill to rebuild the position",
            )
        return batch, json.loads(info["weir.position"])

    def row_count(self) -> int | None:
        """Rows in the current snapshot, from the log's statistics (no file is read); None
        when a file has no row count."""
        import pyarrow.compute as pc  # not at import: it takes numpy (cli._lean_pyarrow)

        dt = self.dt
        if dt is None:
            return 0
        with translated("read the file list", self.uri):
            adds = pa.table(dt.get_add_actions(flatten=True))
        if "num_records" not in adds.column_names:
            return None if adds.num_rows else 0
        counts = adds.column("num_records")
        return None if counts.null_count else int(pc.sum(counts).as_py() or 0)

    def schema(self) -> pa.Schema | None:
        dt = self.dt
        if dt is None:
            return None
        return pa.schema(dt.schema().to_arrow())

    def dataset(self) -> ds.Dataset | None:
        dt = self.dt
        if dt is None:
            return None
        check_files(dt)
        with translated("read", self.uri):
            return dt.to_pyarrow_dataset()

    def scan(self, con: duckdb.DuckDBPyConnection) -> str:
        """A DuckDB SELECT over this table's current snapshot (see scan_sql below)."""

        require_local(self.uri)  # before delta-rs opens it
        dt = self.dt
        if dt is None:
            raise LakeError(f"{self.label} table is missing", where=self.uri)
        with translated("read", self.uri):
            return scan_sql(con, dt)

    def batch_rows(self, batch: int) -> pa.RecordBatchReader:
        """The rows one batch wrote (``_batch`` column), streamed; file stats prune the rest."""
        import pyarrow.dataset as ds

        data = self.dataset()
        if data is None:
            raise LakeError(f"{self.label} table is missing", where=self.uri)
        return data.scanner(filter=ds.field("_batch") == batch).to_reader()

    def write(
        self,
        data: pa.RecordBatchReader | pa.Table,
        commit: Commit,
        *,
        mode: Literal["append", "overwrite"] = "append",
        predicate: str | None = None,
        partition_by: list[str] | None = None,
        evolve: bool = False,
        replace_schema: bool = False,
    ) -> None:
        """Append or overwrite (all, or the rows matching ``predicate``). ``evolve`` adds new
        columns; ``replace_schema`` (whole-table overwrite only) replaces schema and
        partitioning with those of ``data``."""
        faults.point(f"{self.label}.before_commit")
        target: str | DeltaTable = self.dt if self.dt is not None else self.uri
        exists = self.exists()
        config = None if exists else self._configuration(data.schema)
        schema_mode = "overwrite" if replace_schema and exists else None
        options: dict[str, Any] = {
            "mode": mode,
            "predicate": predicate,
            "partition_by": (partition_by or None) if not exists or replace_schema else None,
            "schema_mode": "merge" if evolve and exists else schema_mode,
            "configuration": config,
            "commit_properties": commit.properties(),
            "writer_properties": WRITER,
            "storage_options": options_for(self.uri),
        }
        before = self._file_sizes()
        with translated(f"write the {self.label} table", self.uri):
            write_deltalake(target, small_batches(data), **options)
        self._count_added(before)
        self._after_commit()

    def _configuration(self, schema: pa.Schema) -> dict[str, str]:
        """Table properties of a new table: log retention, and statistics only for the
        columns that are not private."""
        config = dict(LOG_RETENTION)
        if self.private & set(schema.names):
            public = [f.name for f in schema if f.name not in self.private]
            config["delta.dataSkippingStatsColumns"] = ",".join(public)
        return config

    def mark(self, commit: Commit) -> None:
        """Record ``commit`` (its app transaction) without rows: a batch that changed nothing.

        A MERGE that matches nothing makes no commit, yet the batch must count as applied,
        or every later run would redo it."""
        schema = self.schema()
        if schema is None or self.applied(commit.app_id) >= commit.batch:
            return
        self.write(schema.empty_table(), commit, mode="append")

    def merge(
        self,
        data: pa.RecordBatchReader | pa.Table,
        commit: Commit,
        *,
        predicate: str,
        evolve: bool = False,
    ) -> Any:
        """Start a MERGE (source alias ``s``, target ``t``); the caller adds clauses."""
        dt = self.dt
        assert dt is not None, "merge needs an existing table"
        with translated("prepare a merge", self.uri):
            return dt.merge(
                data,
                predicate,
                source_alias="s",
                target_alias="t",
                merge_schema=evolve,
                writer_properties=WRITER,
                commit_properties=commit.properties(),
            )

    def delete(self, predicate: str, metadata: Mapping[str, str]) -> dict[str, Any]:
        """One DELETE commit of the rows matching ``predicate`` (delta-rs SQL), carrying
        ``metadata`` and no app transaction: the position of every pipeline and model that
        writes here stays as it was. delta-rs records the predicate in the commit."""
        dt = self.dt
        assert dt is not None, "delete needs an existing table"
        faults.point(f"{self.label}.before_commit")
        before = self._file_sizes()
        with translated(f"delete from the {self.label} table", self.uri):
            metrics: dict[str, Any] = dt.delete(
                predicate,
                writer_properties=WRITER,
                commit_properties=CommitProperties(custom_metadata=dict(metadata)),
            )
        self._count_added(before)
        self._after_commit()
        return metrics

    def execute(self, merger: Any) -> dict[str, Any]:
        faults.point(f"{self.label}.before_commit")
        before = self._file_sizes()
        with translated(f"merge into the {self.label} table", self.uri):
            metrics: dict[str, Any] = merger.execute()
        self._count_added(before)
        self._after_commit()
        return metrics

    def repair(self, *, apply: bool) -> Repair:
        """Find the data files the log references but the disk lacks; with ``apply``, commit
        their removal (delta-rs's FSCK), so the table reads again without their rows."""
        dt = self.dt
        if dt is None:
            raise LakeError(f"{self.label} table is missing", where=self.uri)
        with translated("check the table's files", self.uri):
            found = dt.repair(dry_run=True).get("files_removed", [])
            rows = _rows_in(dt, set(found))
            if not apply or not found:
                return Repair(list(found), rows, dt.version())
            note = {"weir.repair": f"dropped {len(found)} missing data files"}
            done = dt.repair(
                dry_run=False, commit_properties=CommitProperties(custom_metadata=note)
            )
        self._after_commit()
        return Repair(list(done.get("files_removed", [])), rows, self.version(), applied=True)

    def _file_sizes(self) -> dict[str, int]:
        """Every data file of the snapshot this object holds, with its size (the log's add
        actions: no file is touched). delta-rs updates the object in place on a commit."""
        dt = self.dt
        if dt is None:
            return {}
        with translated("read the file list", self.uri):
            adds = dt.get_add_actions(flatten=False)
        paths, sizes = adds.column("path").to_pylist(), adds.column("size_bytes").to_pylist()
        return dict(zip(paths, sizes, strict=True))

    def _count_added(self, before: Mapping[str, int]) -> None:
        after = self._file_sizes()
        self.bytes_added += sum(size for path, size in after.items() if path not in before)

    def _after_commit(self) -> None:
        faults.point(f"{self.label}.after_commit")
        self._dt = None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _one_line(exc: Exception) -> str:
    """delta-rs's multi-line, coloured error chain (``↳`` per cause) as one plain line."""
    text = _ANSI.sub("", str(exc)).replace("↳", " ")
    return " ".join(text.split())


def _rows_in(dt: DeltaTable, paths: set[str]) -> int | None:
    """Rows in the data files ``paths`` (relative, as the log names them), from the log's
    statistics; None when the log has no row counts for them."""
    if not paths:
        return 0
    actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    counts = [a.get("num_records") for a in actions if a["path"] in paths]
    if not counts or any(c is None for c in counts):
        return None
    return int(sum(counts))


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
