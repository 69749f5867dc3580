"""What every format reader of the files source shares: the reader interface and its chunks.

A reader yields :class:`Chunk` s: rows as read (text, or the format's native types) with the
problems it found itself (a line that is not a record, a file that cannot be read further) and
a way to name a row's line. The extraction then converts them strictly with ``conform()``. A
reader never raises for a file's content — it yields the problem and stops — only for I/O.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import pyarrow as pa

from weir import layout
from weir.errors import SchemaDriftError
from weir.sources.base import PARSE_ERRORS
from weir.sources.files.listing import DataFile
from weir.sources.problems import Problem, file_problem

SOURCE_FILE = layout.SOURCE_FILE.name
RESERVED = frozenset({SOURCE_FILE, PARSE_ERRORS})
"""Column names weir adds; a file's own columns of these names are not offered."""

T = TypeVar("T")
R = TypeVar("R")

WORKERS = max(1, min(4, os.cpu_count() or 1))
"""Threads that parse or convert ahead of the consumer (pyarrow releases the GIL)."""

MAX_LINE_BYTES = 64 << 20
"""The longest line (NDJSON) or row (CSV) read; longer ones are a parse problem. Lines longer
than ``block_size_bytes`` are read whole up to this size."""


@dataclass
class Chunk:
    """Rows read from one file, not yet converted to the contract's types."""

    batch: pa.RecordBatch
    """The requested columns the file has, as read."""
    label: Callable[[int], str]
    """Names the line (``line 7``) or, where it cannot be known, the row of a batch row."""
    problems: list[Problem] = field(default_factory=list)
    meta: list[tuple[pa.Field, pa.Array]] = field(default_factory=list)
    """Columns the reader adds after ``_source_file``, one value per row (the change columns
    of ``format: debezium``)."""


Piece = Chunk | Callable[[], Chunk]
"""What a reader yields: a chunk, or the work that makes one (run on a worker thread)."""


class Reader(Protocol):
    def offered(self, file: DataFile, known: pa.Schema | None) -> pa.Schema | None:
        """The columns the file offers: contract types where ``known`` names them, else what
        the format says natively (string for CSV). None for a file without data, or when the
        columns cannot be told without the contract. Raises Unreadable when the content
        cannot be read far enough to tell."""

    def read(self, file: DataFile, offered: pa.Schema, schema: pa.Schema) -> Iterator[Piece]:
        """The columns of ``schema`` the file has (NDJSON/JSON: all of them). Content problems
        are yielded, never raised: a file that cannot be read further ends with a one-row
        chunk saying why."""


def unreadable(schema: pa.Schema, what: str) -> Chunk:
    """A one-row chunk, every column NULL, for a file that cannot be read (any further)."""
    return null_rows(schema, 1, [file_problem(0, what)])


def null_rows(schema: pa.Schema, rows: int, problems: list[Problem]) -> Chunk:
    """``rows`` rows with every column NULL, one for each problem of a line or a file."""
    nulls = [pa.nulls(rows, fld.type) for fld in schema]
    batch = pa.RecordBatch.from_arrays(nulls, schema=pa.schema(list(schema)))
    return Chunk(batch, lambda index: f"row {index + 1}", problems)


def present(schema: pa.Schema, offered: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name in offered.names])


def offered_field(
    name: str, known: pa.Schema | None, native: Callable[[], pa.DataType]
) -> pa.Field:
    """The contract's field when it knows the column (the reader is told its type), else the
    column as the format offers it."""
    if known is not None and (index := known.get_field_index(name)) >= 0:
        return known.field(index)
    return pa.field(name, native())


def union(schemas: list[pa.Schema]) -> pa.Schema:
    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for fld in schema:
            fields.setdefault(fld.name, fld)
    return pa.schema(list(fields.values()))


def require(file: DataFile, offered: pa.Schema, schema: pa.Schema) -> None:
    """Breaking drift: a required column the file does not have at all."""
    missing = [f.name for f in schema if not f.nullable and f.name not in offered.names]
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise SchemaDriftError(
            f"required column{'s' if len(missing) > 1 else ''} {names} missing",
            where=file.key,
            hint="the file dropped or renamed them; fix the file or update the contract",
        )


def size(count: int) -> str:
    """A byte count for messages: ``64 MiB``, ``16 KiB``."""
    return f"{count >> 20} MiB" if count >= 1 << 20 else f"{count >> 10} KiB"


def in_order(fn: Callable[[T], R], items: Iterator[T], workers: int) -> Iterator[R]:
    """``fn`` of each item, computed ahead on ``workers`` threads, yielded in order."""
    with ThreadPoolExecutor(workers, thread_name_prefix="weir-files") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
