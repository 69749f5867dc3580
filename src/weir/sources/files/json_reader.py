"""``format: json``: one top-level array of objects per file.

It cannot be streamed: the file is read whole and its elements decoded one by one with
Python's ``json`` (so each has its line, and a bad element is a problem of its own); fine for
small files, use ``ndjson`` for big ones. An element that is not valid JSON, or a file that
is not an array, ends the reading there: the elements before it are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from weir.sources.files.errors import READ_ERRORS, Unreadable, content_problem
from weir.sources.files.listing import DataFile
from weir.sources.files.reading import Chunk, unreadable
from weir.sources.files.records import (
    DECODER,
    Record,
    deep,
    flattened,
    offered_schema,
    records_chunk,
)
from weir.sources.problems import Problem, line_problem

_SPACE = re.compile(r"[ \t\n\r]*")
_NOT_AN_ARRAY = "the file is not a JSON array of objects (for one object per line: format: ndjson)"


@dataclass
class _Scan:
    records: list[Record | None] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    """(element, what is wrong with it)"""
    failure: str | None = None
    """Why the rest of the file could not be read."""
    empty: bool = False


@dataclass
class JsonArrayReader:
    fs: Any
    batch_rows: int
    hidden: frozenset[str] = frozenset()
    local: bool = True
    flatten: bool = False
    """Nested objects become columns (:mod:`weir.sources.flatten`)."""
    _last: tuple[str, _Scan] | None = None

    def offered(self, file: DataFile, known: pa.Schema | None) -> pa.Schema | None:
        found = self._scan(file)
        if found.empty:
            return None
        if not found.records and found.failure is not None:
            raise Unreadable(found.failure)
        records = self._flattened(found, known).records
        return offered_schema([r for r in records if r is not None], known)

    def read(self, file: DataFile, offered: pa.Schema, schema: pa.Schema) -> Iterator[Chunk]:
        found = self._flattened(self._scan(file), schema)
        self._last = None
        for start in range(0, len(found.records), self.batch_rows):
            end = start + self.batch_rows
            problems: list[Problem] = [
                line_problem(row - start, f"line {found.lines[row]}", what)
                for row, what in found.problems
                if start <= row < end
            ]
            yield records_chunk(
                found.records[start:end], found.lines[start:end], schema, problems, self.hidden
            )
        if found.failure is not None:
            yield unreadable(schema, found.failure)

    def _flattened(self, found: _Scan, schema: pa.Schema | None) -> _Scan:
        """``found`` with nested objects as columns when ``flatten`` is on."""
        if not self.flatten:
            return found
        keep = frozenset(schema.names) if schema is not None else frozenset()
        out = _Scan(lines=found.lines, failure=found.failure, empty=found.empty)
        out.problems = list(found.problems)
        for index, record in enumerate(found.records):
            flat, what = flattened(record, None, keep)
            if what is not None:
                out.problems.append((index, what))
            out.records.append(flat)
        out.problems.sort()
        return out

    def _scan(self, file: DataFile) -> _Scan:
        if self._last is not None and self._last[0] == file.key:
            return self._last[1]
        try:
            with self.fs.open_input_stream(file.path, compression="detect") as stream:
                content = stream.read()
        except READ_ERRORS as exc:
            what = content_problem(exc, local=self.local)
            if what is None:
                raise
            found = _Scan(failure=what)
        else:
            found = scan(content)
        self._last = (file.key, found)
        return found


def scan(content: bytes) -> _Scan:
    """The elements of a JSON array, each with its line, up to the first that cannot be read."""
    try:
        text, valid = content.decode("utf-8"), True
    except UnicodeDecodeError:
        text, valid = content.decode("utf-8", "surrogateescape"), False
    text = text.removeprefix("\ufeff")
    found = _Scan()
    pos = _skip(text, 0)
    if pos == len(text):
        found.empty = True
        return found
    if text[pos] != "[":
        found.failure = _NOT_AN_ARRAY
        return found
    lines = _Lines(text)
    pos = _skip(text, pos + 1)
    if text.startswith("]", pos):
        found.failure = _after(text, _skip(text, pos + 1), lines)
        return found
    while True:
        line = lines.at(pos)
        try:
            value, end = DECODER.raw_decode(text, pos)
        except RecursionError:
            found.failure = f"line {line} {deep()}; the rest of the file is not read"
            return found
        except ValueError as exc:
            what = "is not valid JSON" if valid else "is not valid UTF-8"
            at = getattr(exc, "lineno", line)
            found.failure = f"line {at} {what}; the rest of the file is not read"
            return found
        if not isinstance(value, dict):
            found.problems.append((len(found.records), "is not a JSON object"))
            value = None
        found.records.append(value)
        found.lines.append(line)
        pos = _skip(text, end)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
            continue
        if text.startswith("]", pos):
            found.failure = _after(text, _skip(text, pos + 1), lines)
        elif pos >= len(text):
            found.failure = "the JSON array is not closed (is the file truncated?)"
        else:
            found.failure = f"line {lines.at(pos)}: expected ',' or ']' in the JSON array"
        return found


def _after(text: str, pos: int, lines: _Lines) -> str | None:
    if pos >= len(text):
        return None
    return f"line {lines.at(pos)}: unexpected data after the JSON array"


def _skip(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


class _Lines:
    """Line numbers of positions in ``text``, asked in ascending order."""

    def __init__(self, text: str):
        self._text, self._pos, self._line = text, 0, 1

    def at(self, pos: int) -> int:
        if pos < self._pos:
            return self._text.count("\n", 0, pos) + 1
        self._line += self._text.count("\n", self._pos, pos)
        self._pos = pos
        return self._line
