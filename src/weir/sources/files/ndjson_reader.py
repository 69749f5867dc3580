"""NDJSON files (one JSON object per line), read by blocks of whole lines.

pyarrow's JSON reader is fast but not safe on arbitrary input: a first line that is not an
object crashes the process, a ``null`` line becomes a row of NULLs, two objects on one line
become two rows, and invalid UTF-8 passes unchecked. So weir cuts the file into blocks of
whole lines itself (``block_size_bytes``, grown for a longer line up to ``MAX_LINE_BYTES``;
a longer line is a problem of its own) and checks each block at C speed: valid UTF-8, every
line starts with ``{``. Only a block that passes goes to pyarrow, and its rows must number its
lines; any other block, or one pyarrow rejects (a value of another JSON type than the column,
say), is read line by line with Python's ``json`` (:mod:`weir.sources.files.records`), so
each line is a row: clean, or with the reasons it is not. Blocks are parsed on a few threads,
in order.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json

from weir.sources.files.errors import READ_ERRORS, Unreadable, content_problem
from weir.sources.files.listing import DataFile
from weir.sources.files.reading import (
    MAX_LINE_BYTES,
    Chunk,
    Piece,
    null_rows,
    size,
    unreadable,
)
from weir.sources.files.records import (
    Record,
    decode_line,
    flattened,
    offered_schema,
    records_chunk,
)
from weir.sources.problems import Problem, line_problem

_BOM = b"\xef\xbb\xbf"
_NOT_AN_OBJECT = re.compile(rb"\n[^{]")
"""A line that does not start with ``{`` (or is blank): such a block is read line by line."""


@dataclass(frozen=True)
class Block:
    line: int
    """The number of its first line."""
    data: bytes
    """Whole lines; empty for a line longer than ``MAX_LINE_BYTES`` or a read that failed."""
    lines: int
    """Physical lines it covers."""
    failure: BaseException | None = None
    """The error that ended the reading of the file here."""
    overlong: bool = False


@dataclass(frozen=True)
class NdjsonReader:
    """Which keys a file has, and the native types of those the contract does not know, come
    from its first block; every contract column is read, since keys may first appear later."""

    fs: Any
    block_size: int
    hidden: frozenset[str] = frozenset()
    local: bool = True
    flatten: bool = False
    """Nested objects become columns (:mod:`weir.sources.flatten`); lines are then read with
    Python's ``json`` only, never pyarrow's reader."""

    def offered(self, file: DataFile, known: pa.Schema | None) -> pa.Schema | None:
        try:
            with self.fs.open_input_stream(file.path, compression="detect") as stream:
                head = next((b for b in blocks(stream, self.block_size) if _content(b)), None)
        except READ_ERRORS as exc:
            what = content_problem(exc, local=self.local)
            if what is None:
                raise
            raise Unreadable(what) from exc
        if head is not None and head.failure is not None:
            what = content_problem(head.failure, local=self.local)
            if what is None:
                raise head.failure
            raise Unreadable(what)
        if head is None:
            return None  # an empty file (or blank lines only)
        keep = self._keep(known)
        records = [
            flattened(*decode_line(line), keep)[0]
            for line in head.data.split(b"\n")
            if _filled(line)
        ]
        return offered_schema([r for r in records if r is not None], known)

    def _keep(self, schema: pa.Schema | None) -> frozenset[str] | None:
        if not self.flatten:
            return None
        return frozenset(schema.names) if schema is not None else frozenset()

    def read(self, file: DataFile, offered: pa.Schema, schema: pa.Schema) -> Iterator[Piece]:
        """Blocks are cut here; each is parsed where it is converted (on a worker thread)."""
        readable = pa.schema([_readable(fld) for fld in schema])
        with self.fs.open_input_stream(file.path, compression="detect") as stream:
            for block in blocks(stream, self.block_size):
                yield partial(self._chunk, block, schema=schema, readable=readable)

    def _chunk(self, block: Block, *, schema: pa.Schema, readable: pa.Schema) -> Chunk:
        trouble = block_trouble(block, schema, local=self.local)
        if trouble is not None:
            return trouble
        batch = None if self.flatten else _fast(block, readable)
        if batch is not None:
            return Chunk(batch, partial(_line, block.line))
        return self._by_line(block, schema)

    def _by_line(self, block: Block, schema: pa.Schema) -> Chunk:
        records: list[Record | None] = []
        lines: list[int] = []
        problems: list[Problem] = []
        keep = self._keep(schema)
        for number, raw in enumerate(block.data.split(b"\n"), block.line):
            if not _filled(raw):
                continue
            record, what = flattened(*decode_line(raw), keep)
            if what is not None:
                problems.append(line_problem(len(records), f"line {number}", what))
            records.append(record)
            lines.append(number)
        return records_chunk(records, lines, schema, problems, self.hidden)


def block_trouble(block: Block, schema: pa.Schema, *, local: bool) -> Chunk | None:
    """The chunk for a block that could not be read (a problem after its last good line) or
    that is one line longer than weir reads; None for a block of lines to parse."""
    if block.failure is not None:
        what = content_problem(block.failure, local=local)
        if what is None:
            raise block.failure
        return unreadable(schema, f"{what} (after line {block.line - 1})")
    if block.overlong:
        what = f"is longer than {size(MAX_LINE_BYTES)}"
        return null_rows(schema, 1, [line_problem(0, f"line {block.line}", what)])
    return None


def _fast(block: Block, readable: pa.Schema) -> pa.RecordBatch | None:
    """The block through pyarrow's reader when it is safe to, and the rows match its lines."""
    data = block.data
    if data[:1] != b"{" or _NOT_AN_OBJECT.search(data) is not None:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        table = pa_json.read_json(
            pa.BufferReader(data),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(data) + 1),
            parse_options=pa_json.ParseOptions(
                explicit_schema=readable, unexpected_field_behavior="ignore"
            ),
        )
    except pa.ArrowException:
        return None
    if table.num_rows != block.lines:
        return None
    return table.combine_chunks().to_batches()[0] if table.num_rows else None


def blocks(stream: Any, size: int) -> Iterator[Block]:
    """The stream cut into blocks of whole lines. A read that fails ends it with a block
    holding the failure, so that what was read before is parsed all the same."""
    line, rest, start = 1, bytearray(), True
    while True:
        try:
            chunk = stream.read(size)
        except READ_ERRORS as exc:
            yield Block(line, b"", 0, failure=exc)
            return
        if start:
            chunk, start = chunk.removeprefix(_BOM), False
        if not chunk:
            if rest:
                yield Block(line, bytes(rest), rest.count(b"\n") + 1)
            return
        cut = chunk.rfind(b"\n") + 1
        if not cut:
            rest += chunk
            if len(rest) > MAX_LINE_BYTES:
                yield Block(line, b"", 1, overlong=True)
                rest, line = yield from _skip_line(stream, size, line)
            continue
        data = bytes(rest) + chunk[:cut] if rest else chunk[:cut]
        rest = bytearray(chunk[cut:])
        lines = data.count(b"\n")
        yield Block(line, data, lines)
        line += lines


def _skip_line(stream: Any, size: int, line: int) -> Generator[Block, None, tuple[bytearray, int]]:
    """Read past the rest of an overlong line; (what follows it, the next line's number)."""
    while True:
        try:
            chunk = stream.read(size)
        except READ_ERRORS as exc:
            yield Block(line + 1, b"", 0, failure=exc)
            return bytearray(), line + 1
        end = chunk.find(b"\n")
        if not chunk or end >= 0:
            return bytearray(chunk[end + 1 :] if end >= 0 else b""), line + 1


def _readable(fld: pa.Field) -> pa.Field:
    """The field as pyarrow's reader is told it: nullable (a NULL never fails a read), and
    text for dates, timestamps and binary (base64), which ``conform()`` parses by weir's one
    rule; inside structs and lists too. (A map cannot be told: such blocks go line by line.)"""
    return pa.field(fld.name, _readable_type(fld.type), nullable=True)


def _readable_type(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_struct(kind):
        return pa.struct([_readable(kind.field(i)) for i in range(kind.num_fields)])
    if pa.types.is_list(kind):
        return pa.list_(_readable(kind.value_field))
    if pa.types.is_date(kind) or pa.types.is_time(kind) or pa.types.is_timestamp(kind):
        return pa.string()
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return pa.string()
    return kind


def _line(first: int, index: int) -> str:
    return f"line {first + index}"


def _content(block: Block) -> bool:
    """Whether a block holds more than blank lines (or ends the reading with a failure)."""
    return block.overlong or block.failure is not None or bool(block.data.strip(b" \t\r\n"))


def _filled(line: bytes) -> bool:
    return bool(line.strip(b" \t\r"))
