"""Files source: CSV, NDJSON, JSON and Parquet files from a directory, one file or a glob.

``path`` is a directory (its files, not its sub-directories), one file, or a glob: ``*``,
``?`` and ``[…]`` match within one path component, ``**`` matches any number of components.
Relative paths are resolved against the project. URLs (``s3://bucket/prefix/*.csv``,
``gs://…``, ``abfs://…``, ``hdfs://…``) take the same code path: every file is listed and
opened through ``pyarrow.fs`` (``LocalFileSystem`` for local paths). Names starting with
``.`` or ``_`` (``_SUCCESS``, ``_temporary/``, ``.crc``, editors' temp files) are skipped, as
pyarrow datasets and Spark do.

The position is ``{"files": {"<path>": {"size": int, "mtime_ns": int}, …}}``: the cumulative
set of ingested files, keyed by the path relative to the project (local files) or the full
URL (object stores). The same string is the ``_source_file`` column of every row. A run reads
only the files not in the set, in sorted path order, each exactly once. A file that changed
after it was ingested is not read again; the extraction warns and leaves it to a backfill.

Types are never inferred: the CSV and JSON readers are told the contract's types, Parquet
columns are cast safely to them. Every reader streams bounded batches (``block_size_bytes``
of input at a time, at most ``batch_size_rows`` rows per batch), except ``format: json``
(one top-level array of objects), which is parsed whole and is therefore meant for small
files; use ``ndjson`` (one object per line) for big ones. pyarrow's CSV and JSON readers
read up to 32 blocks ahead, so memory stays near ``32 * block_size_bytes`` (about 40 MiB
with the default 1 MiB) whatever the file size; Parquet is read a page at a time. CSV and
JSON files ending in ``.gz``, ``.bz2``, ``.zst``, ``.lz4`` or ``.br`` are decompressed on
the fly.
"""

from __future__ import annotations

import codecs
import contextlib
import csv as py_csv
import fnmatch
import io
import json
import os
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, Literal, Protocol

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.fs as pa_fs
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from pydantic import Field, field_validator

from weir.errors import ConfigError, SchemaDriftError, SourceError, TransientSourceError, WeirError
from weir.sources.base import Extraction, Position, Source, conform
from weir.spec.base import Strict

Format = Literal["csv", "ndjson", "json", "parquet"]

SOURCE_FILE = "_source_file"

_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4", ".br")
_URL_SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss", "file")
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_GLOB = re.compile(r"[*?\[]")
_MAX_CHANGED_WARNINGS = 20
_READ_ERRORS = (pa.ArrowException, OSError, ValueError)


class CsvOptions(Strict):
    """How CSV files are parsed (``extract.csv`` in a pipeline file)."""

    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quote_char: str | None = Field(default='"', min_length=1, max_length=1)
    """None: fields are never quoted."""
    header: bool = True
    """False: the file has no header line; its columns are the contract's, in order."""
    null_values: tuple[str, ...] = ("", "NA", "NULL", "null")
    encoding: str = "utf8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value


class FilesConfig(Strict):
    source: str = "files"
    path: str = Field(min_length=1)
    """Directory, file or glob; relative to the project, or a URL (s3://, gs://, abfs://…)."""
    format: Format | None = None
    """Default: from the extension (``.csv``, ``.ndjson``/``.jsonl``, ``.json``, ``.parquet``)."""
    csv: CsvOptions = Field(default_factory=CsvOptions)
    batch_size_rows: int = Field(default=65_536, gt=0)
    block_size_bytes: int = Field(default=1 << 20, ge=1024)
    """Input parsed at a time by the CSV and JSON readers; must exceed the longest row.
    Memory is about 32 times this (pyarrow's read-ahead)."""

    @field_validator("path")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        match = _URL.match(value)
        if match and match[1].lower() not in _URL_SCHEMES:
            raise ValueError(
                f"unsupported URL scheme {match[1]!r}; pyarrow.fs reads "
                + ", ".join(f"{s}://" for s in _URL_SCHEMES)
            )
        return value


@dataclass(frozen=True)
class _File:
    key: str
    """Position key and ``_source_file`` value: project-relative path or full URL."""
    path: str
    """The path inside its pyarrow filesystem."""
    size: int
    mtime_ns: int

    def stamp(self) -> dict[str, int]:
        return {"size": self.size, "mtime_ns": self.mtime_ns}


@dataclass(frozen=True)
class _Location:
    """The configured path split into what can be listed and what must be matched."""

    base: str
    """Absolute local path, or URL without query, of the part before the first wildcard."""
    pattern: tuple[str, ...]
    """Glob components after ``base``; empty when the path has no wildcard."""
    remote: bool
    query: str = ""


@dataclass(frozen=True)
class _Listing:
    fs: Any
    files: list[_File]
    format: Format | None
    remote: bool
    warnings: list[str] = field(default_factory=list)


class _Reader(Protocol):
    def offered(self, file: _File, known: pa.Schema | None) -> pa.Schema | None:
        """The columns the file offers: contract types where ``known`` names them, else what
        the format says natively (string for CSV). None when it cannot tell without the
        contract; an empty schema for a file without data."""

    def read(self, file: _File, offered: pa.Schema, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        """Batches with the columns of ``schema`` the file has, typed as ``schema`` says;
        the engine's conform() then fills the absent (nullable) ones and orders them."""


class FilesSource(Source):
    kind = "files"
    Config = FilesConfig
    meta_columns: ClassVar[dict[str, pa.DataType]] = {SOURCE_FILE: pa.string()}

    config: FilesConfig

    def probe(self, position: Position | None, schema: pa.Schema | None = None) -> pa.Schema | None:
        """Union of what the pending files offer, from CSV headers, Parquet footers and the
        first block of NDJSON. Pass the contract's ``schema`` to get its types for the CSV
        columns it knows (others are strings); without it every CSV column is a string and
        headerless CSV files offer nothing."""
        listing = self._listing()
        pending, _ = _split(listing.files, _ingested(position))
        if not pending:
            return None
        reader = self._reader(listing)
        offers = []
        for file in pending:
            with _reading(_Cursor(file, listing.remote)):
                offered = reader.offered(file, schema)
            if offered is not None and len(offered):
                offers.append(offered)
        return _union(offers) if offers else None

    def extract(self, position: Position | None, schema: pa.Schema) -> Extraction:
        listing = self._listing()
        ingested = _ingested(position)
        pending, changed = _split(listing.files, ingested)
        return FilesExtraction(
            schema=schema,
            warnings=[*listing.warnings, *changed],
            pending=pending,
            ingested=ingested,
            reader=self._reader(listing) if pending else None,
            batch_size_rows=self.config.batch_size_rows,
            remote=listing.remote,
            hidden=frozenset(self.context.pii),
        )

    @staticmethod
    def describe(position: Position | None) -> str | None:
        return _summary(_ingested(position)) if position else None

    def _listing(self) -> _Listing:
        location = _locate(self.config.path, self.context.project_dir)
        fs, base = _filesystem(location)
        shown = location.base if location.remote else _shown(location.base, self.context)
        try:
            infos = _list(fs, base, location.pattern)
        except _READ_ERRORS as exc:
            raise _io_error(exc, shown, remote=location.remote) from exc
        if infos is None:
            return _Listing(fs, [], None, location.remote, [f"{shown} does not exist; no files"])
        files = sorted(
            (
                _File(
                    key=_key(info.path, base, location, self.context),
                    path=info.path,
                    size=int(info.size or 0),
                    mtime_ns=int(info.mtime_ns or 0),
                )
                for info in infos
            ),
            key=lambda f: f.key,
        )
        return _Listing(fs, files, _format(files, self.config.format, shown), location.remote)

    def _reader(self, listing: _Listing) -> _Reader:
        config = self.config
        if listing.format == "csv":
            return _CsvReader(listing.fs, config.csv, config.block_size_bytes)
        if listing.format == "parquet":
            return _ParquetReader(listing.fs, config.block_size_bytes, config.batch_size_rows)
        if listing.format == "json":
            return _JsonArrayReader(listing.fs, config.block_size_bytes)
        return _NdjsonReader(listing.fs, config.block_size_bytes)


@dataclass
class FilesExtraction(Extraction):
    pending: list[_File] = field(default_factory=list)
    ingested: dict[str, dict[str, int]] = field(default_factory=dict)
    reader: _Reader | None = None
    batch_size_rows: int = 65_536
    remote: bool = False
    hidden: frozenset[str] = frozenset()
    """PII columns: their values never appear in error messages."""

    def batches(self) -> Iterator[pa.RecordBatch]:
        for file in self.pending:
            yield from self._file_batches(file)

    def position(self) -> dict[str, Any]:
        files = {**self.ingested, **{f.key: f.stamp() for f in self.pending}}
        return {"files": dict(sorted(files.items()))}

    def watermark(self) -> str:
        return _summary(self.position()["files"])

    def _file_batches(self, file: _File) -> Iterator[pa.RecordBatch]:
        """One file's rows, checked against the contract before the first batch."""
        assert self.reader is not None
        shaped = self.schema.append(pa.field(SOURCE_FILE, pa.string()))
        with _reading(_Cursor(file, self.remote, hidden=self.hidden)) as cursor:
            offered = self.reader.offered(file, self.schema)
            if offered is None or not len(offered):
                return
            cursor.columns = offered.names
            _require(file, offered, self.schema)
            for raw in self.reader.read(file, offered, self.schema):
                batch = conform(raw, self.schema, where=file.key)
                for start in range(0, batch.num_rows, self.batch_size_rows):
                    part = batch.slice(start, self.batch_size_rows)
                    names = pa.repeat(file.key, part.num_rows)
                    yield pa.RecordBatch.from_arrays([*part.columns, names], schema=shaped)
                cursor.rows += batch.num_rows


# --- readers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CsvReader:
    fs: Any
    options: CsvOptions
    block_size: int

    def offered(self, file: _File, known: pa.Schema | None) -> pa.Schema | None:
        names = self._first_row(file)
        if not self.options.header:
            if known is None:
                return None
            extra = [f"column{n + 1}" for n in range(len(known), len(names))]
            names = [*known.names[: len(names)], *extra]
        return pa.schema([_offered_field(name, known, pa.string) for name in names])

    def read(self, file: _File, offered: pa.Schema, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        opts = self.options
        wanted = _present(schema, offered)
        read_options = pa_csv.ReadOptions(
            block_size=self.block_size,
            encoding=opts.encoding,
            column_names=None if opts.header else offered.names,
        )
        parse_options = pa_csv.ParseOptions(
            delimiter=opts.delimiter, quote_char=opts.quote_char or False
        )
        convert_options = pa_csv.ConvertOptions(
            # Columns outside the contract are only read (as strings) when none is present,
            # to count the rows; nothing is ever type-inferred.
            column_types={name: pa.string() for name in offered.names}
            | {f.name: f.type for f in wanted},
            include_columns=wanted.names or offered.names,
            null_values=list(opts.null_values),
            strings_can_be_null=True,
            timestamp_parsers=[pa_csv.ISO8601],
        )
        with self.fs.open_input_stream(file.path, compression="detect") as stream:
            yield from pa_csv.open_csv(
                stream,
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )

    def _first_row(self, file: _File) -> list[str]:
        """The header line's fields (or the first row's, to count columns)."""
        opts = self.options
        with (
            self.fs.open_input_stream(file.path, compression="detect") as stream,
            io.TextIOWrapper(stream, encoding=opts.encoding, newline="") as text,
        ):
            if opts.quote_char:
                rows = py_csv.reader(text, delimiter=opts.delimiter, quotechar=opts.quote_char)
            else:
                rows = py_csv.reader(text, delimiter=opts.delimiter, quoting=py_csv.QUOTE_NONE)
            row = next(rows, [])
        if row:
            row[0] = row[0].removeprefix("\ufeff")
        return row


@dataclass(frozen=True)
class _ParquetReader:
    fs: Any
    block_size: int
    batch_size: int

    def offered(self, file: _File, known: pa.Schema | None) -> pa.Schema:
        with self.fs.open_input_file(file.path) as handle:
            return pq.ParquetFile(handle).schema_arrow

    def read(self, file: _File, offered: pa.Schema, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        columns = _present(schema, offered).names or offered.names[:1]  # [:1] counts rows
        with self.fs.open_input_file(file.path) as handle:
            parquet = pq.ParquetFile(handle, buffer_size=self.block_size, pre_buffer=False)
            yield from parquet.iter_batches(batch_size=self.batch_size, columns=columns)


@dataclass(frozen=True)
class _NdjsonReader:
    """One JSON object per line. Which keys a file has, and the native types of those the
    contract does not know, come from its first block; every contract column is read, since
    keys may first appear further down."""

    fs: Any
    block_size: int

    def offered(self, file: _File, known: pa.Schema | None) -> pa.Schema:
        with self.fs.open_input_stream(file.path, compression="detect") as stream:
            head = stream.read(self.block_size)
            complete = len(head) < self.block_size or not stream.read(1)
        if not complete:
            end = head.rfind(b"\n")
            if end < 0:
                raise SourceError(
                    "the first row is longer than block_size_bytes",
                    where=file.key,
                    hint="raise block_size_bytes in the pipeline's extract section",
                )
            head = head[: end + 1]
        return _json_schema(_json_lines(head), known)

    def read(self, file: _File, offered: pa.Schema, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        with self.fs.open_input_stream(file.path, compression="detect") as stream:
            yield from _json_batches(stream, schema, self.block_size)


@dataclass(frozen=True)
class _JsonArrayReader:
    """A top-level array of objects. It cannot be streamed: the whole file is parsed in
    memory, then fed to the NDJSON reader; fine for small files, use ``ndjson`` otherwise."""

    fs: Any
    block_size: int

    def offered(self, file: _File, known: pa.Schema | None) -> pa.Schema:
        return _json_schema(self._rows(file), known)

    def read(self, file: _File, offered: pa.Schema, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        lines = b"\n".join(json.dumps(row).encode() for row in self._rows(file))
        yield from _json_batches(pa.BufferReader(lines), schema, self.block_size)

    def _rows(self, file: _File) -> list[dict[str, Any]]:
        with self.fs.open_input_stream(file.path, compression="detect") as stream:
            content = stream.read()
        problem = "expected a top-level JSON array of objects"
        try:
            data = json.loads(content)
        except ValueError as exc:
            problem = f"not valid JSON ({exc}); {problem}"
            data = None
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise SourceError(
                problem,
                where=file.key,
                hint="set format: ndjson for files with one JSON object per line",
            )
        return data


def _json_batches(stream: Any, wanted: pa.Schema, block_size: int) -> Iterator[pa.RecordBatch]:
    # The JSON reader cannot parse dates or times of day from strings: read those as strings
    # and let conform() cast them (safely) to the contract's type.
    readable = pa.schema([_json_readable(f) for f in wanted])
    try:
        reader = pa_json.open_json(
            stream,
            read_options=pa_json.ReadOptions(block_size=block_size),
            parse_options=pa_json.ParseOptions(
                explicit_schema=readable, unexpected_field_behavior="ignore"
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty JSON" in str(exc):
            return
        raise
    yield from reader


def _present(schema: pa.Schema, offered: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name in offered.names])


def _json_readable(fld: pa.Field) -> pa.Field:
    kind = fld.type
    if pa.types.is_date(kind) or pa.types.is_time(kind):
        return fld.with_type(pa.string())
    return fld


def _json_lines(data: bytes) -> list[dict[str, Any]]:
    rows = []
    for line in data.splitlines():
        with contextlib.suppress(ValueError):
            row = json.loads(line) if line.strip() else None
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _json_schema(rows: list[dict[str, Any]], known: pa.Schema | None) -> pa.Schema:
    """Keys in order of appearance, typed by the contract, else by pyarrow from the values."""
    values: dict[str, list[Any]] = {}
    for row in rows:
        for key, value in row.items():
            values.setdefault(key, []).append(value)
    return pa.schema(
        [_offered_field(key, known, partial(_native, seen)) for key, seen in values.items()]
    )


def _offered_field(
    name: str, known: pa.Schema | None, native: Callable[[], pa.DataType]
) -> pa.Field:
    """The contract's field when it knows the column (the reader is told its type), else the
    column as the format offers it."""
    if known is not None and (index := known.get_field_index(name)) >= 0:
        return known.field(index)
    return pa.field(name, native())


def _native(values: list[Any]) -> pa.DataType:
    try:
        kind = pa.array(values).type
    except (pa.ArrowException, TypeError, ValueError):
        return pa.string()
    return pa.string() if pa.types.is_null(kind) else kind


# --- listing -------------------------------------------------------------------------------


def _locate(path: str, project_dir: str) -> _Location:
    match = _URL.match(path)
    remote = match is not None and match[1].lower() != "file"
    query = ""
    if remote:
        path, mark, rest = path.partition("?")
        query = mark + rest
    elif match is not None:
        path = path[match.end() :]
    parts = path.split("/")
    cut = next((n for n, part in enumerate(parts) if _GLOB.search(part)), len(parts))
    base = "/".join(parts[:cut])
    pattern = tuple(part for part in parts[cut:] if part)
    if not remote:
        base = os.path.normpath(os.path.join(os.path.abspath(project_dir), base or "."))
    return _Location(base=base, pattern=pattern, remote=remote, query=query)


def _filesystem(location: _Location) -> tuple[Any, str]:
    if not location.remote:
        return pa_fs.LocalFileSystem(), location.base
    try:
        fs, base = pa_fs.FileSystem.from_uri(location.base + location.query)
    except (pa.ArrowException, OSError, ValueError) as exc:
        detail = str(exc).replace(location.query, "?…") if location.query else str(exc)
        raise ConfigError(
            f"cannot open {location.base}: {_brief(detail)}",
            hint="check the URL, and that pyarrow was built with support for its filesystem",
        ) from exc
    return fs, str(base)


def _list(fs: Any, base: str, pattern: tuple[str, ...]) -> list[Any] | None:
    """FileInfos of the data files under ``base`` matching ``pattern``; None when ``base``
    does not exist."""
    info = fs.get_file_info(base)
    if info.type == pa_fs.FileType.NotFound:
        return None
    if info.type == pa_fs.FileType.File:
        return [] if pattern else [info]
    recursive = len(pattern) > 1 or "**" in pattern
    found = []
    for entry in fs.get_file_info(pa_fs.FileSelector(base, recursive=recursive)):
        parts = entry.path[len(base) :].strip("/").split("/")
        hidden = any(part.startswith((".", "_")) for part in parts)
        if entry.type == pa_fs.FileType.File and not hidden and _matches(parts, pattern):
            found.append(entry)
    return found


def _matches(parts: Sequence[str], pattern: Sequence[str]) -> bool:
    if not pattern:
        return len(parts) <= 1
    if pattern[0] == "**":
        return any(_matches(parts[n:], pattern[1:]) for n in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], pattern[0])
        and _matches(parts[1:], pattern[1:])
    )


def _key(path: str, base: str, location: _Location, context: Any) -> str:
    if not location.remote:
        return _shown(path, context)
    relative = path[len(base) :].strip("/")
    root = location.base.rstrip("/")
    return f"{root}/{relative}" if relative else root


def _shown(path: str, context: Any) -> str:
    """A local path relative to the project when inside it, else absolute; '/' separated."""
    relative = os.path.relpath(path, os.path.abspath(context.project_dir))
    shown = path if relative == ".." or relative.startswith(".." + os.sep) else relative
    return shown.replace(os.sep, "/")


def _format(files: list[_File], configured: Format | None, shown: str) -> Format | None:
    if configured is not None or not files:
        return configured
    found = {file.key: _format_of(file.key) for file in files}
    unknown = [key for key, kind in found.items() if kind is None]
    if unknown:
        raise ConfigError(
            f"cannot tell the format of {unknown[0]} from its extension",
            where=shown,
            hint="set format: csv, ndjson, json or parquet, or narrow path (e.g. *.csv)",
        )
    kinds = sorted({kind for kind in found.values() if kind is not None})
    if len(kinds) > 1:
        raise ConfigError(
            f"path matches files of several formats ({', '.join(kinds)})",
            where=shown,
            hint="narrow path to one kind of file (e.g. *.csv), or set format",
        )
    return kinds[0]


def _format_of(name: str) -> Format | None:
    lower = name.lower()
    for suffix in _COMPRESSIONS:
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
            break
    return _EXTENSIONS.get(posixpath.splitext(lower)[1])


# --- position ------------------------------------------------------------------------------


def _ingested(position: Position | None) -> dict[str, dict[str, int]]:
    files = (position or {}).get("files", {})
    if not isinstance(files, Mapping) or not all(isinstance(v, Mapping) for v in files.values()):
        raise SourceError(
            "the committed position of this files source is malformed",
            hint='expected {"files": {path: {"size": …, "mtime_ns": …}}}',
        )
    return {str(key): dict(stamp) for key, stamp in files.items()}


def _split(files: list[_File], ingested: Mapping[str, Any]) -> tuple[list[_File], list[str]]:
    """The files still to read, and warnings about ingested files that changed since."""
    pending, changed = [], []
    for file in files:
        stamp = ingested.get(file.key)
        if stamp is None:
            pending.append(file)
        elif stamp.get("size") != file.size or stamp.get("mtime_ns") != file.mtime_ns:
            changed.append(file.key)
    warnings = [
        f"{key} changed since it was ingested; not re-read — use a backfill"
        for key in changed[:_MAX_CHANGED_WARNINGS]
    ]
    if len(changed) > _MAX_CHANGED_WARNINGS:
        more = len(changed) - _MAX_CHANGED_WARNINGS
        warnings.append(f"{more} more files changed since they were ingested; not re-read")
    return pending, warnings


def _summary(files: Mapping[str, Any]) -> str:
    if not files:
        return "0 files"
    count = f"{len(files)} file" + ("" if len(files) == 1 else "s")
    return f"{count} (latest {posixpath.basename(max(files))})"


def _union(schemas: list[pa.Schema]) -> pa.Schema:
    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for fld in schema:
            fields.setdefault(fld.name, fld)
    return pa.schema(list(fields.values()))


def _require(file: _File, offered: pa.Schema, schema: pa.Schema) -> None:
    missing = [f.name for f in schema if not f.nullable and f.name not in offered.names]
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise SchemaDriftError(
            f"required column{'s' if len(missing) > 1 else ''} {names} missing",
            where=file.key,
            hint="the file dropped or renamed them; fix the file or update the contract",
        )


# --- errors --------------------------------------------------------------------------------


@dataclass
class _Cursor:
    """Where a read is, so that an error can say it."""

    file: _File
    remote: bool
    columns: Sequence[str] = ()
    rows: int = 0
    hidden: frozenset[str] = frozenset()


@contextlib.contextmanager
def _reading(cursor: _Cursor) -> Iterator[_Cursor]:
    try:
        yield cursor
    except WeirError:
        raise
    except _READ_ERRORS as exc:
        raise _translate(exc, cursor) from exc


_CSV_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to ([^:]+): (.*)", re.S)
_CSV_SHAPE = re.compile(r"CSV parse error: (Expected \d+ columns, got \d+)")
_JSON_KIND = re.compile(r"Column\(/?([^)]*)\) changed from (\w+) to (\w+)")
_JSON_VALUE = re.compile(r"Failed to convert JSON to (\S+), couldn't parse:(.*)", re.S)


def _translate(exc: Exception, cursor: _Cursor) -> WeirError:
    """A weir error naming the file, the column and the row for a pyarrow or I/O failure."""
    text, where = str(exc), cursor.file.key
    after = f"at or after data row {cursor.rows + 1}"
    fix = "fix the file, or the column's type in the contract"
    if match := _CSV_CONVERSION.search(text):
        index = int(match[1])
        name = cursor.columns[index] if index < len(cursor.columns) else f"#{index + 1}"
        value = "(value hidden: PII)" if name in cursor.hidden else _brief(match[3])
        message = f"column {name!r} cannot be read as {match[2]}: {value} ({after})"
        return SchemaDriftError(message, where=where, hint=fix + " (or null_values)")
    if match := _JSON_KIND.search(text):
        column, expected, found = match.groups()
        message = f"column {column!r} holds a JSON {found}, expected a {expected} ({after})"
        return SchemaDriftError(message, where=where, hint=fix)
    if match := _JSON_VALUE.search(text):
        value = "(value hidden: the file has PII columns)" if cursor.hidden else _brief(match[2])
        message = f"a value cannot be read as {match[1]}: {value} ({after})"
        return SchemaDriftError(message, where=where, hint=fix)
    if "straddl" in text:
        return SourceError(
            f"a row is longer than block_size_bytes ({after})",
            where=where,
            hint="raise block_size_bytes in the pipeline's extract section",
        )
    if match := _CSV_SHAPE.search(text):
        return SourceError(
            f"malformed CSV: {match[1]} ({after})",
            where=where,
            hint="check csv.delimiter, csv.quote_char and csv.header, or fix the file",
        )
    if isinstance(exc, UnicodeDecodeError):
        return SourceError(
            f"the file is not valid {exc.encoding}", where=where, hint="set csv.encoding"
        )
    return _io_error(exc, where, remote=cursor.remote)


def _io_error(exc: Exception, where: str, *, remote: bool) -> WeirError:
    if isinstance(exc, OSError) and remote:
        return TransientSourceError(
            f"could not read: {_brief(str(exc))}",
            where=where,
            hint="check the network and the credentials for this object store",
        )
    return SourceError(f"could not read: {_brief(str(exc))}", where=where)


def _brief(text: str, limit: int = 160) -> str:
    line = text.strip().split("\n", 1)[0]
    line = line.split(". If ", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"
