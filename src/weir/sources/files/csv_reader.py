"""CSV files: pyarrow's multi-threaded reader for the bytes, weir's strict rules for the values.

Fast path: columns whose parsing by pyarrow's CSV reader is exactly weir's rule (floats,
decimals, booleans, dates, timestamps, strings) are read typed, integers as bytes (pyarrow
reads ``0x10`` as 16). At the first value pyarrow refuses, or a non-finite float, the file is
read again from that batch on carefully: every column as bytes, converted by ``conform()``
(so a bad value is a problem of that value, and invalid UTF-8 of one value, not the file).
A row with the wrong number of fields is skipped by pyarrow and becomes a problem row; a row
longer than ``block_size_bytes`` makes the reader start again with bigger blocks (up to
``MAX_LINE_BYTES``). Should pyarrow's reader fail even carefully, the rest of the file is read
by Python's csv module (:mod:`.csv_python`), which also finds the line of a row when a problem
needs one (exact with quoted newlines and blank lines).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from weir.sources.files.config import CsvOptions
from weir.sources.files.csv_python import CsvLines, python_chunks, rows_of, text_of
from weir.sources.files.errors import READ_ERRORS, Unreadable, content_problem
from weir.sources.files.listing import DataFile
from weir.sources.files.reading import (
    MAX_LINE_BYTES,
    RESERVED,
    Chunk,
    null_rows,
    offered_field,
    present,
    size,
    unreadable,
)
from weir.sources.parse import valid_utf8
from weir.sources.problems import Problem, file_problem, line_problem

_GROWTH = 8


@dataclass(frozen=True)
class CsvReader:
    fs: Any
    options: CsvOptions
    block_size: int
    local: bool = True
    """A local file (not an object store): an OSError while reading it is its content's."""

    def offered(self, file: DataFile, known: pa.Schema | None) -> pa.Schema | None:
        names = self._first_row(file)
        if names is None:
            return None
        if not self.options.header:
            if known is None:
                return None
            extra = [f"column{n + 1}" for n in range(len(known), len(names))]
            names = [*known.names[: len(names)], *extra]
        else:
            names = [name for name in names if name not in RESERVED]
        return pa.schema([offered_field(name, known, pa.string) for name in names])

    def read(self, file: DataFile, offered: pa.Schema, schema: pa.Schema) -> Iterator[Chunk]:
        binary = [f.name for f in schema if pa.types.is_binary(f.type)]
        for chunk in self._read(file, offered, schema):
            yield _base64_text(chunk, binary) if binary else chunk

    def _read(self, file: DataFile, offered: pa.Schema, schema: pa.Schema) -> Iterator[Chunk]:
        try:
            first = self._first_row(file) or []
        except Unreadable as exc:
            yield unreadable(schema, exc.what)
            return
        names = first if self.options.header else offered.names  # as pyarrow names them
        columns = len(first)
        include = present(schema, offered).names or offered.names[:1]  # [:1] counts rows
        lines = CsvLines(self, file, columns, good=True)
        shape = _Shape(CsvLines(self, file, columns, good=False), columns)
        state = _Pass(block=self.block_size)
        _quiet_handler_reports()
        try:
            while not (yield from self._pass(file, offered, schema, include, state, lines, shape)):
                shape.seen = 0  # pyarrow reads the file again and reports its bad rows again
                if state.python:
                    yield from python_chunks(
                        self.fs,
                        file,
                        self.options,
                        schema,
                        include,
                        names,
                        skip=(state.done, shape.reported),
                    )
                    shape.seen = shape.reported
                    break
        except READ_ERRORS as exc:
            what = _problem(exc, state.done, local=self.local)
            if what is None:
                raise
            yield unreadable(schema, what)
        finally:
            lines.close()
            shape.lines.close()
        yield from shape.chunks(schema)

    def _pass(
        self,
        file: DataFile,
        offered: pa.Schema,
        schema: pa.Schema,
        include: list[str],
        state: _Pass,
        lines: CsvLines,
        shape: _Shape,
    ) -> Generator[Chunk, None, bool]:
        """Read the file from its start, skipping the rows delivered already. False: start
        again, carefully (a value pyarrow's typed reader refused, or a non-finite float) or
        with bigger blocks (a row longer than a block)."""
        skip = state.done
        types = _types(offered, schema, careful=state.careful)
        try:
            for batch in self._batches(file, offered, include, state.block, shape, types):
                if skip:
                    cut = min(skip, batch.num_rows)
                    batch, skip = batch.slice(cut), skip - cut
                if not state.careful and not _finite(batch):
                    state.careful = True
                    return False
                if batch.num_rows:
                    yield Chunk(batch, _label(lines, state.done))
                    state.done += batch.num_rows
                yield from shape.chunks(schema)
        except (pa.ArrowInvalid, UnicodeError) as exc:
            if "straddl" in str(exc):
                if state.block >= MAX_LINE_BYTES:
                    raise
                state.block = min(MAX_LINE_BYTES, state.block * _GROWTH)
            elif state.careful:
                state.python = True  # what pyarrow's reader cannot take at all
            else:
                state.careful = True
            return False
        return True

    def _batches(
        self,
        file: DataFile,
        offered: pa.Schema,
        include: list[str],
        block: int,
        shape: _Shape,
        types: dict[str, pa.DataType],
    ) -> Iterator[pa.RecordBatch]:
        opts = self.options
        read_options = pa_csv.ReadOptions(
            block_size=block,
            encoding=opts.encoding,
            column_names=None if opts.header else offered.names,
        )
        parse_options = pa_csv.ParseOptions(
            delimiter=opts.delimiter,
            quote_char=opts.quote_char or False,
            newlines_in_values=True,
            invalid_row_handler=shape,
        )
        convert_options = pa_csv.ConvertOptions(
            column_types=types,
            include_columns=include,
            null_values=list(opts.null_values),
            strings_can_be_null=True,
            timestamp_parsers=[pa_csv.ISO8601],
        )
        with self.fs.open_input_stream(file.path, compression="detect") as stream:
            try:
                reader = pa_csv.open_csv(
                    stream,
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=convert_options,
                )
            except pa.ArrowInvalid as exc:
                if "Empty CSV" in str(exc):  # a header without a line end: no rows
                    return
                raise
            yield from reader

    def _first_row(self, file: DataFile) -> list[str] | None:
        """The header line's fields (or the first row's, to count columns); None for a file
        without any."""
        opts = self.options
        try:
            with (
                self.fs.open_input_stream(file.path, compression="detect") as stream,
                text_of(stream, opts.encoding, errors="surrogateescape") as text,
            ):
                row: list[str] | None = next(rows_of(text, opts), None)
        except READ_ERRORS as exc:
            what = content_problem(exc, local=self.local)
            if what is None:
                raise
            raise Unreadable(what) from exc
        if not row:
            return None
        row[0] = row[0].removeprefix("\ufeff")
        if any(not valid_utf8(name) for name in row):
            line = "header line" if opts.header else "first line"
            raise Unreadable(f"the {line} is not valid {opts.encoding}")
        return row


@dataclass
class _Pass:
    """How far the reading of a file got, and how it goes on."""

    block: int
    done: int = 0
    """Data rows delivered."""
    careful: bool = False
    """Every column as bytes, converted by conform(); else the types whose parsing by
    pyarrow's CSV reader is exactly weir's rule are read typed (the fast path)."""
    python: bool = False
    """The rest by Python's csv module: pyarrow's reader failed on the file even carefully
    (it cannot report a short row that is not valid UTF-8, for one)."""


def _types(offered: pa.Schema, schema: pa.Schema, *, careful: bool) -> dict[str, pa.DataType]:
    """What pyarrow's reader is told. Integers are always read as bytes (it accepts hex)."""
    types: dict[str, pa.DataType] = {name: pa.binary() for name in offered.names}
    if not careful:
        for fld in schema:
            if fld.name in types and _typed(fld.type):
                types[fld.name] = fld.type
    return types


def _typed(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_date32(kind)
        or pa.types.is_timestamp(kind)
        or kind == pa.string()
    )


def _base64_text(chunk: Chunk, binary: list[str]) -> Chunk:
    """A binary column of a CSV file holds base64 text: its cells, read as bytes, are given
    to ``conform()`` as the text they are (which decodes them), not as the bytes to store."""
    batch = chunk.batch
    for name in binary:
        index = batch.schema.get_field_index(name)
        if index >= 0 and pa.types.is_binary(batch.column(index).type):
            text = batch.column(index).view(pa.string())
            batch = batch.set_column(index, name, text)
    chunk.batch = batch
    return chunk


def _finite(batch: pa.RecordBatch) -> bool:
    """No infinity or NaN in the float columns (pyarrow reads them; weir's rule refuses)."""
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    return all(
        pc.all(pc.is_finite(column)).as_py() is not False
        for column in batch.columns
        if pa.types.is_floating(column.type)
    )


def _label(lines: CsvLines, base: int) -> Callable[[int], str]:
    def label(index: int) -> str:
        found = lines.next(base + index)
        return f"line {found[0]}" if found is not None else f"row {base + index + 1}"

    return label


@dataclass
class _Shape:
    """pyarrow's invalid-row handler: a row with the wrong number of fields is skipped, and
    becomes a problem row naming its line (found by ``lines``, in file order)."""

    lines: CsvLines
    columns: int
    seen: int = 0
    reported: int = 0

    def __call__(self, row: Any) -> str:
        self.seen += 1
        return "skip"

    def chunks(self, schema: pa.Schema) -> Iterator[Chunk]:
        fresh = self.seen - self.reported
        if fresh <= 0:
            return
        self.reported = self.seen
        problems: list[Problem] = []
        for row in range(fresh):
            found = self.lines.next(None)
            if found is None:
                what = f"a row has the wrong number of fields (expected {self.columns})"
                problems.append(file_problem(row, what))
                continue
            line, fields = found
            what = f"has {fields} field{'s' if fields != 1 else ''}, expected {self.columns}"
            problems.append(line_problem(row, f"line {line}", what))
        yield null_rows(schema, fresh, problems)


def _quiet_handler_reports() -> None:
    """pyarrow decodes a short row as UTF-8 before it calls the invalid-row handler; on bytes
    that are not UTF-8 that fails inside pyarrow, and Python prints the failure on stderr as
    an ignored exception: a traceback nobody can act on, since weir then reads the file with
    Python's csv module instead. Such reports are dropped, for weir's handlers only."""
    previous = sys.unraisablehook
    if getattr(previous, "weir_csv", False):
        return

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.object, _Shape):
            previous(unraisable)

    hook.weir_csv = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


def _problem(exc: BaseException, done: int, *, local: bool) -> str | None:
    if "straddl" in str(exc):
        return (
            f"a row after data row {done} is longer than {size(MAX_LINE_BYTES)}; "
            "the rest of the file is not read"
        )
    what = content_problem(exc, local=local)
    if what is None:
        return None
    return f"{what}; read {done} data rows, the rest of the file is not read" if done else what
