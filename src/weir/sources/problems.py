"""Parse problems: why a value, a line or a whole file could not be read, worded once.

Every problem is one reason text, in one of these forms::

    parse: column <name>, value '<v>' (line <n>)      a value that is not of the column's type
    parse: column <name>.<field>[<i>], value '<v>' …  the part of a nested value that is not
    parse: line <n> <what is wrong with it>          a line that is not a record at all
    parse: <what is wrong with the file>             a file that cannot be read (further)

``<name>`` is the column's source-side name, ``<v>`` the value as written (at most
:data:`VALUE_LIMIT` characters, control characters and invalid UTF-8 escaped, ``***`` for a
PII column), ``line <n>`` the physical line of the file, or ``row <n>`` where the line cannot
be known. With ``on_parse_error: quarantine`` the reasons of a row go to its
``_parse_errors``; with ``fail`` the first problem is raised, worded from the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from weir.errors import SchemaDriftError, SourceError, WeirError

PREFIX = "parse: "
VALUE_LIMIT = 80
MASK = "***"
REASONS = pa.list_(pa.string())
"""The type of the ``_parse_errors`` column: NULL for a clean row, else its reasons."""

_QUARANTINE = "or set on_parse_error: quarantine to load the other rows and quarantine this one"
_CONTROL = {n: f"\\x{n:02x}" for n in [*range(32), *range(127, 160)]} | {
    9: "\\t",
    10: "\\n",
    13: "\\r",
}


@dataclass(frozen=True)
class Problem:
    row: int
    """The row of the batch it belongs to."""
    reason: str
    expected: str | None = None
    """What a value should look like (a value problem); None for a line or a file."""
    column: str | None = None
    """The column of a value problem."""

    def error(self, where: str) -> WeirError:
        """The error ``on_parse_error: fail`` raises for this problem."""
        text = self.reason.removeprefix(PREFIX)
        if self.expected is not None:
            return SchemaDriftError(
                f"{text} is not a valid {self.expected}",
                where=where,
                hint=f"fix the value or the column's type in the contract, {_QUARANTINE}",
            )
        return SourceError(text, where=where, hint=f"fix or replace the file, {_QUARANTINE}")


def value_problem(
    row: int, column: str, raw: str, label: str, expected: str, *, hidden: bool, part: str = ""
) -> Problem:
    """``part``: where inside a nested value the bad part is (``.address.zip``, ``[2]``)."""
    value = MASK if hidden else shown(raw)
    where = f"{column}{part}"
    return Problem(row, f"{PREFIX}column {where}, value '{value}' ({label})", expected, column)


def line_problem(row: int, label: str, what: str) -> Problem:
    """``what``: the rest of the sentence, e.g. ``is not a JSON object``."""
    return Problem(row, f"{PREFIX}{label} {what}")


def file_problem(row: int, what: str) -> Problem:
    return Problem(row, f"{PREFIX}{what}")


def shown(raw: str) -> str:
    """A value as it appears in a reason: clipped, control characters and lone surrogates
    (bytes that were not UTF-8) escaped."""
    clipped = raw if len(raw) <= VALUE_LIMIT else raw[:VALUE_LIMIT] + "…"
    text = clipped.translate(_CONTROL)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw_bytes = text.encode(
            "utf-8", "surrogateescape" if _escapes(text) else "backslashreplace"
        )
        text = raw_bytes.decode("utf-8", "backslashreplace")
    return text


def _escapes(text: str) -> bool:
    """Whether every lone surrogate in ``text`` stands for an undecodable byte."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def reasons_column(rows: int, problems: Sequence[Problem]) -> pa.Array:
    """The ``_parse_errors`` values of ``rows`` rows."""
    if not problems:
        return pa.nulls(rows, REASONS)
    by_row: dict[int, list[str]] = {}
    for problem in problems:
        by_row.setdefault(problem.row, []).append(problem.reason)
    return pa.array([by_row.get(row) for row in range(rows)], REASONS)
