"""CSV by Python's csv module: line numbers for problems, and the reader of last resort.

pyarrow's CSV reader is fast but cannot say on which line a row started, and gives up on some
input (a short row that is not valid UTF-8). Python's csv module reads the same dialect line by
line: it finds the lines of the rows that need one (only when a problem does), and reads the
rest of a file that pyarrow's reader could not.
"""

from __future__ import annotations

import bisect
import csv as py_csv
import io
import threading
from collections.abc import Generator, Iterator
from typing import Any

import pyarrow as pa

from weir.sources.files.config import CsvOptions
from weir.sources.files.errors import READ_ERRORS
from weir.sources.files.listing import DataFile
from weir.sources.files.reading import MAX_LINE_BYTES, Chunk, unreadable
from weir.sources.problems import Problem, line_problem

_BATCH_ROWS = 10_000


class CsvLines:
    """Physical lines of a CSV file's rows, read forwards with Python's csv module the first
    time a problem needs one. ``good``: the rows pyarrow delivers (as many fields as the
    header), else those it skipped. None once the two readers disagree. Safe to ask from
    several threads, in any order.

    What a scan learnt is kept as runs of rows whose line is their index plus the same
    offset (a new run starts after a blank line or a record spanning lines), so a row
    before the last one asked costs a lookup, not a read from the file's start: batches
    converted in parallel ask out of order, and a file whose every row has a problem would
    otherwise be read again for each batch."""

    def __init__(self, reader: Any, file: DataFile, columns: int, *, good: bool):
        self._reader, self._file, self._columns, self._good = reader, file, columns, good
        self._scan: Iterator[tuple[int, int]] | None = None
        self._at = -1
        """The row the open scan read last."""
        self._asked = -1
        self._known = -1
        """Rows up to this one have their line in the runs."""
        self._starts: list[int] = []
        self._runs: list[tuple[int, int]] = []
        """(line − row, fields) of the run starting at the row in ``_starts`` (same index)."""
        self._lost = False
        self._lock = threading.Lock()

    def next(self, index: int | None) -> tuple[int, int] | None:
        """(line, fields) of row ``index``, or of the row after the last one asked."""
        with self._lock:
            target = self._asked + 1 if index is None else index
            self._asked = target
            if target > self._known and not self._read_to(target):
                return None
            run = bisect.bisect_right(self._starts, target) - 1
            offset, fields = self._runs[run]
            return target + offset, fields

    def _read_to(self, target: int) -> bool:
        if self._lost:
            return False
        if self._scan is None:
            self._scan, self._at = self._lines(), -1
        while self._at < target:
            found = next(self._scan, None)
            if found is None:
                self._lost = True
                return False
            self._at += 1
            if self._at > self._known:
                self._note(self._at, found)
        return True

    def _note(self, row: int, found: tuple[int, int]) -> None:
        run = (found[0] - row, found[1])
        if not self._runs or self._runs[-1] != run:
            self._starts.append(row)
            self._runs.append(run)
        self._known = row

    def close(self) -> None:
        """Release the file (what was learnt stays); a later question beyond it (a batch still
        being converted) reopens it."""
        with self._lock:
            if isinstance(self._scan, Generator):
                self._scan.close()
            self._scan, self._at = None, -1

    def _lines(self) -> Iterator[tuple[int, int]]:
        try:
            for start, row in numbered(self._reader.fs, self._file, self._reader.options):
                if (len(row) == self._columns) == self._good:
                    yield start, len(row)
        except (*READ_ERRORS, py_csv.Error):
            return


def python_chunks(
    fs: Any,
    file: DataFile,
    options: CsvOptions,
    schema: pa.Schema,
    include: list[str],
    names: list[str],
    *,
    skip: tuple[int, int],
) -> Iterator[Chunk]:
    """The file's rows after the first ``skip`` (rows of the right width, rows of a wrong
    one: those delivered already), the ``include`` columns as bytes."""
    width, (good, bad) = len(names), skip
    wanted = [(names.index(name), name) for name in include if name in names]
    nulls = frozenset(options.null_values)
    rows: list[list[str] | None] = []
    lines: list[int] = []
    problems: list[Problem] = []
    try:
        for line, row in numbered(fs, file, options):
            if len(row) == width and good:
                good -= 1
            elif len(row) != width and bad:
                bad -= 1
            else:
                if len(row) != width:
                    what = f"has {len(row)} field{'s' if len(row) != 1 else ''}, expected {width}"
                    problems.append(line_problem(len(rows), f"line {line}", what))
                rows.append(row if len(row) == width else None)
                lines.append(line)
            if len(rows) >= _BATCH_ROWS:
                yield _chunk(rows, lines, problems, wanted, nulls)
                rows, lines, problems = [], [], []
    except py_csv.Error as exc:
        if rows:
            yield _chunk(rows, lines, problems, wanted, nulls)
        yield unreadable(
            schema, f"a row cannot be parsed ({exc}); the rest of the file is not read"
        )
        return
    if rows:
        yield _chunk(rows, lines, problems, wanted, nulls)


def numbered(fs: Any, file: DataFile, options: CsvOptions) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each row after the header; blank lines skipped."""
    py_csv.field_size_limit(max(py_csv.field_size_limit(), MAX_LINE_BYTES))
    with (
        fs.open_input_stream(file.path, compression="detect") as raw,
        text_of(raw, options.encoding, errors="surrogateescape") as text,
    ):
        rows = rows_of(text, options)
        end = 0
        if options.header:
            next(rows, None)
            end = rows.line_num
        for row in rows:
            start, end = end + 1, rows.line_num
            if row:
                yield start, row


def _chunk(
    rows: list[list[str] | None],
    lines: list[int],
    problems: list[Problem],
    wanted: list[tuple[int, str]],
    nulls: frozenset[str],
) -> Chunk:
    columns = [
        pa.array(
            [None if row is None or row[index] in nulls else _bytes(row[index]) for row in rows],
            pa.binary(),
        )
        for index, _ in wanted
    ]
    batch = pa.RecordBatch.from_arrays(columns, names=[name for _, name in wanted])
    if not wanted:  # no requested column in the file: the rows count all the same
        batch = pa.RecordBatch.from_pydict({"": pa.nulls(len(rows))})
    return Chunk(batch, lambda index: f"line {lines[index]}", problems)


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def rows_of(text: io.TextIOWrapper, opts: CsvOptions) -> Any:
    if opts.quote_char:
        return py_csv.reader(text, delimiter=opts.delimiter, quotechar=opts.quote_char)
    return py_csv.reader(text, delimiter=opts.delimiter, quoting=py_csv.QUOTE_NONE)


def text_of(stream: Any, encoding: str, *, errors: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(stream, encoding=encoding, errors=errors, newline="")
