"""Physical removal of the files of a Delta table that still hold given rows, past any
vacuum retention.

A DELETE only tombstones the files it rewrites: they stay on disk, as do the files that
earlier merges and overwrites replaced, until a vacuum past the retention. delta-rs's vacuum
cannot be aimed at chosen files, so this module does it itself:

1. list the table's parquet files and leave out those the current snapshot references;
2. read each of the rest (only the columns asked for) and keep those that hold the rows;
3. take their statistics out of the log — a commit's add action keeps the min/max values of
   the file it added, and a checkpoint keeps them again: the add actions stay (time travel
   to those versions then fails on the missing file), only their ``stats`` go; checkpoints
   that list such a file are replaced by a new checkpoint of the current version; and the
   predicates of MERGE commits, which name the least and greatest key of their batch, are
   replaced by a note — and then delete exactly those files. In that order, an attempt stopped half-way leaves the files
   for the next one to find.

The caller holds the lock of every weir node writing the table: a file another writer has
written but not yet committed would look unreferenced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable

from weir.lake.table import translated
from weir.storage import options_for

_COMMIT = re.compile(r"^\d{20}\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(\.\d+\.\d+)?\.parquet$")
_SCRATCH = ".weir-forget.tmp"


@dataclass
class Scan:
    """What :func:`scan` found among the files the current snapshot does not reference."""

    holding: list[str] = field(default_factory=list)
    """Relative paths of the files holding the rows."""
    unreadable: list[str] = field(default_factory=list)
    """Files that are not readable parquet: leftovers of a write killed half-way."""
    scanned: int = 0


def _location(uri: str) -> pafs.FileSystem:
    """The table's files through delta-rs's object store, with the lake's storage options
    (weir.storage), as every DeltaTable of weir opens them; paths are relative to the table."""
    from deltalake.fs import DeltaStorageHandler

    return pafs.PyFileSystem(DeltaStorageHandler(uri, options_for(uri)))


def _write(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` whole. deltalake 1.6's handler wraps its object-store stream
    in a ``pa.PythonFile``, which hands the stream pyarrow Buffers where it takes bytes
    (``TypeError: 'Buffer' object is not an instance of 'bytes'``): write to the stream
    itself where the handler has it."""
    handler = getattr(getattr(fs, "handler", None), "_handler", None)
    if handler is None:
        with fs.open_output_stream(path) as out:
            out.write(data)
        return
    stream = handler.open_output_stream(path, None)
    try:
        stream.write(data)
    finally:
        stream.close()


def files(uri: str) -> tuple[list[str], list[str]]:
    """The table's parquet files (relative paths): those its current snapshot references, and
    the others (replaced by later commits, or never committed)."""
    fs = _location(uri)
    with translated("list the table's files", uri):
        referenced = {
            unquote(p) for p in _added_paths(DeltaTable(uri, storage_options=options_for(uri)))
        }
        infos = fs.get_file_info(pafs.FileSelector("", recursive=True))
    current: list[str] = []
    other: list[str] = []
    for info in infos:
        rel = info.path
        if info.type != pafs.FileType.File or not rel.endswith(".parquet"):
            continue
        if rel.startswith("_delta_log/"):
            continue
        (current if rel in referenced else other).append(rel)
    return sorted(current), sorted(other)


def scan(
    uri: str,
    paths: Iterable[str],
    columns: Iterable[str],
    holds: Callable[[pa.Table], bool],
    schema: pa.Schema,
) -> Scan:
    """The files among ``paths`` for which ``holds`` (given the file's ``columns``, partition
    columns taken from the path and typed by ``schema``) is true."""
    fs = _location(uri)
    wanted = list(dict.fromkeys(columns))
    out = Scan()
    for rel in paths:
        out.scanned += 1
        try:
            with fs.open_input_file(rel) as handle:
                parquet = pq.ParquetFile(handle)
                present = [c for c in wanted if c in parquet.schema_arrow.names]
                data = parquet.read(columns=present)
        except (pa.ArrowException, OSError):
            out.unreadable.append(rel)
            continue
        data = _with_partitions(data, rel, wanted, schema)
        if holds(data):
            out.holding.append(rel)
    return out


def _with_partitions(data: pa.Table, rel: str, wanted: list[str], schema: pa.Schema) -> pa.Table:
    """``data`` plus the wanted columns delta-rs keeps in the path (``col=value/``)."""
    for segment in rel.split("/")[:-1]:
        name, sep, raw = segment.partition("=")
        name = unquote(name)
        if not sep or name not in wanted or name in data.column_names or name not in schema.names:
            continue
        value = unquote(raw)
        text = pa.array([None if value == "__HIVE_DEFAULT_PARTITION__" else value] * len(data))
        try:
            column = text.cast(schema.field(name).type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        data = data.append_column(name, column)
    return data


def remove(uri: str, paths: Iterable[str]) -> int:
    """Delete the files ``paths`` (relative) and their statistics from the log; returns how
    many files were deleted."""
    fs = _location(uri)
    gone = set(paths)
    if not gone:
        return 0
    # the log first: stopped half-way, the files are still there for the next attempt to find
    with translated("remove the files that hold the subject", uri):
        _scrub_commits(fs, "_delta_log", gone)
        _replace_checkpoints(uri, fs, "_delta_log", gone)
        for rel in sorted(gone):
            fs.delete_file(rel)
    return len(gone)


def _added_paths(dt: DeltaTable) -> list[str]:
    actions = pa.table(dt.get_add_actions(flatten=False))
    paths: list[str] = actions.column("path").to_pylist()
    return paths


def _scrub_commits(fs: pafs.FileSystem, log: str, gone: set[str]) -> None:
    """Drop the ``stats`` of every add action of a removed file, one commit file at a time
    (written beside it, then moved over it; a copy an earlier attempt left is removed)."""
    for info in fs.get_file_info(pafs.FileSelector(log)):
        if info.base_name.endswith(_SCRATCH):
            fs.delete_file(info.path)
            continue
        if not _COMMIT.match(info.base_name):
            continue
        with fs.open_input_stream(info.path) as handle:
            lines = handle.read().decode("utf-8").splitlines()
        changed = False
        for i, line in enumerate(lines):
            if '"add"' not in line and '"commitInfo"' not in line:
                continue
            action = json.loads(line)
            add = action.get("add")
            if add and unquote(add.get("path", "")) in gone and add.get("stats") is not None:
                add.pop("stats")
                lines[i] = json.dumps(action, separators=(",", ":"))
                changed = True
            if _unbound(action.get("commitInfo")):
                lines[i] = json.dumps(action, separators=(",", ":"))
                changed = True
        if changed:
            scratch = f"{info.path}{_SCRATCH}"
            _write(fs, scratch, ("\n".join(lines) + "\n").encode("utf-8"))
            fs.move(scratch, info.path)


_REMOVED = "(removed by weir forget)"
_BOUNDED = ("predicate", "mergePredicate")
"""The parameters of a MERGE's commit info that hold its predicate."""


def _unbound(info: dict[str, object] | None) -> bool:
    """Take the predicate out of a MERGE's commit info (True when there was one): weir
    bounds a MERGE by the least and greatest key of its batch (weir/lake/strategies.py), so
    the predicate names two keys, which may be the subject's."""
    if not info or info.get("operation") != "MERGE":
        return False
    parameters = info.get("operationParameters")
    named = [
        k
        for k in _BOUNDED
        if isinstance(parameters, dict) and parameters.get(k, _REMOVED) != _REMOVED
    ]
    for key in named:
        assert isinstance(parameters, dict)
        parameters[key] = _REMOVED
    return bool(named)


def _replace_checkpoints(uri: str, fs: pafs.FileSystem, log: str, gone: set[str]) -> None:
    """Checkpoints listing a removed file keep its statistics: write a checkpoint of the
    current version, then delete those (every part of their version)."""
    stale_versions = set()
    parts: dict[str, list[str]] = {}
    for info in fs.get_file_info(pafs.FileSelector(log)):
        match = _CHECKPOINT.match(info.base_name)
        if match is None:
            continue
        parts.setdefault(match[1], []).append(info.path)
        if _lists(fs, info.path, gone):
            stale_versions.add(match[1])
    if not stale_versions:
        return
    dt = DeltaTable(uri, storage_options=options_for(uri))
    dt.create_checkpoint()
    current = f"{dt.version():020d}"
    for version in sorted(stale_versions - {current}):
        for path in parts[version]:
            fs.delete_file(path)


def _lists(fs: pafs.FileSystem, path: str, gone: set[str]) -> bool:
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    with fs.open_input_file(path) as handle:
        adds = pq.read_table(handle, columns=["add"]).column("add")
    paths = pc.struct_field(adds, "path").to_pylist()
    return any(p is not None and unquote(p) in gone for p in paths)
