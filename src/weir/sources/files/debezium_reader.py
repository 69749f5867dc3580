"""``format: debezium``: files of Debezium change events, one JSON envelope per line (NDJSON)
or a JSON array of them (read whole, for small files).

Every line is decoded with Python's ``json`` (:mod:`weir.sources.files.records`) and read as
an event (:mod:`.debezium_envelope`): the row image becomes the contract's columns, converted
by ``conform()`` like any other format, and the event's change columns
(:data:`weir.layout.CHANGE`) ride along as the chunk's ``meta``. A line that is not an
envelope is a problem of its line (``parse: line 4 has no integer source.lsn (its log
position)``), quarantined or failing per ``on_parse_error``. A ``null`` line is a Kafka
tombstone (what follows a delete for log compaction): it carries no change and is skipped.

NDJSON is cut into blocks of whole lines (``block_size_bytes``), parsed on worker threads
in order, so memory stays bounded whatever the file size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa

from weir import layout
from weir.sources.files.debezium_envelope import Event, TimeUnit, decoded, event
from weir.sources.files.errors import READ_ERRORS, Unreadable, content_problem
from weir.sources.files.json_reader import scan
from weir.sources.files.listing import DataFile
from weir.sources.files.ndjson_reader import Block, block_trouble, blocks
from weir.sources.files.reading import Chunk, Piece, unreadable
from weir.sources.files.records import Record, decode_line, offered_schema, records_chunk
from weir.sources.problems import Problem, line_problem

_CHANGE = [c.field() for c in layout.CHANGE]
_TOMBSTONE = b"null"


@dataclass(frozen=True)
class DebeziumReader:
    fs: Any
    block_size: int
    batch_rows: int
    time_unit: TimeUnit = "micros"
    hidden: frozenset[str] = frozenset()
    local: bool = True

    def offered(self, file: DataFile, known: pa.Schema | None) -> pa.Schema | None:
        """The contract's columns (a delete's image holds the key only, so a column missing
        from some events says nothing), and the columns of the first events' images that the
        contract does not name (new columns: additive drift)."""
        lines = self._head(file)
        if lines is None:
            return None
        images = []
        for raw in lines:
            record, _ = decode_line(raw)
            found = event(record)[0] if record is not None else None
            if found is not None and found.image is not None:
                images.append(found.image)
        seen = offered_schema(images, known)
        fields = list(known or []) + [f for f in seen if known is None or f.name not in known.names]
        return pa.schema(fields)

    def _head(self, file: DataFile) -> list[bytes] | None:
        """The non-blank lines of the file's first block (of its array, elements), or None
        for a file without data; Unreadable when its content cannot be read."""
        try:
            with self.fs.open_input_stream(file.path, compression="detect") as stream:
                head = next((b for b in blocks(stream, self.block_size) if _filled(b.data)), None)
        except READ_ERRORS as exc:
            what = content_problem(exc, local=self.local)
            if what is None:
                raise
            raise Unreadable(what) from exc
        if head is None:
            return None
        if head.failure is not None:
            what = content_problem(head.failure, local=self.local)
            if what is None:
                raise head.failure
            raise Unreadable(what)
        if head.data.lstrip()[:1] == b"[":
            return []  # an array: its columns are the contract's
        return [line for line in head.data.split(b"\n") if _filled(line)]

    def read(self, file: DataFile, offered: pa.Schema, schema: pa.Schema) -> Iterator[Piece]:
        with self.fs.open_input_stream(file.path, compression="detect") as stream:
            head = stream.read(64)
        if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"[":
            yield from self._array(file, schema)
            return
        with self.fs.open_input_stream(file.path, compression="detect") as stream:
            for block in blocks(stream, self.block_size):
                yield partial(self._block, block, schema)

    def _block(self, block: Block, schema: pa.Schema) -> Chunk:
        trouble = block_trouble(block, schema, local=self.local)
        if trouble is not None:
            return trouble
        records: list[Record | _Undecodable] = []
        lines: list[int] = []
        for number, raw in enumerate(block.data.split(b"\n"), block.line):
            line = raw.strip(b" \t\r")
            if not line or line == _TOMBSTONE:
                continue
            record, what = decode_line(raw)
            records.append(record if record is not None else _Undecodable(what or "is not JSON"))
            lines.append(number)
        return self._events(records, lines, schema)

    def _array(self, file: DataFile, schema: pa.Schema) -> Iterator[Chunk]:
        try:
            with self.fs.open_input_stream(file.path, compression="detect") as stream:
                content = stream.read()
        except READ_ERRORS as exc:
            what = content_problem(exc, local=self.local)
            if what is None:
                raise
            yield unreadable(schema, what)
            return
        found = scan(content)
        wrong = dict(found.problems)
        records: list[Record | _Undecodable] = [
            _Undecodable(wrong[i]) if i in wrong or r is None else r
            for i, r in enumerate(found.records)
        ]
        for start in range(0, len(records), self.batch_rows):
            end = start + self.batch_rows
            yield self._events(records[start:end], found.lines[start:end], schema)
        if found.failure is not None:
            yield unreadable(schema, found.failure)

    def _events(
        self, records: list[Record | _Undecodable], lines: list[int], schema: pa.Schema
    ) -> Chunk:
        """Decoded lines (an :class:`_Undecodable` for a line that is not JSON) as one chunk:
        the images in the contract's columns, the change columns as its meta."""
        images: list[Record | None] = []
        events: list[Event | None] = []
        problems: list[Problem] = []
        for row, (record, line) in enumerate(zip(records, lines, strict=True)):
            found, what = (None, record.what) if isinstance(record, _Undecodable) else event(record)
            if found is None:
                problems.append(line_problem(row, f"line {line}", what or "is not an event"))
                images.append(None)
            else:
                images.append(self._image(found, schema))
            events.append(found)
        chunk = records_chunk(images, lines, schema, problems, self.hidden)
        return Chunk(chunk.batch, chunk.label, chunk.problems, meta=_change_arrays(events))

    def _image(self, found: Event, schema: pa.Schema) -> Record:
        if found.image is None:
            return {}
        image = dict(found.image)
        for fld in schema:
            if fld.name in image:
                image[fld.name] = decoded(image[fld.name], fld, found.types, self.time_unit)
        return image


@dataclass(frozen=True)
class _Undecodable:
    what: str


def _change_arrays(events: list[Event | None]) -> list[tuple[pa.Field, pa.Array]]:
    values: list[list[Any]] = [[], [], [], [], []]
    for found in events:
        row = (
            (found.op, found.lsn, found.seq, found.tx_id, found.committed_at)
            if found is not None
            else (None,) * 5
        )
        for column, value in zip(values, row, strict=True):
            column.append(value)
    return [(fld, pa.array(column, fld.type)) for fld, column in zip(_CHANGE, values, strict=True)]


def _filled(line: bytes) -> bool:
    return bool(line.strip(b" \t\r\n"))
