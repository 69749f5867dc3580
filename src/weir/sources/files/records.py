"""JSON records to Arrow, one record at a time: the careful path of the NDJSON and JSON readers.

Python's ``json`` decodes each record (numbers kept as their text, so that the column's type
decides what they mean); a line that is not valid JSON, not valid UTF-8, nests too deeply
or is not an object is a problem of that line; a value that cannot be one of its column (an
object or array for a scalar column, a string that is not valid UTF-8) a problem of that
value. ``conform()`` converts the rest strictly, like every other source's.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from functools import partial
from typing import Any

import pyarrow as pa

from weir.sources.files.reading import RESERVED, Chunk, offered_field
from weir.sources.flatten import flatten
from weir.sources.parse import JSON_DECODER, expected_form, from_objects, plain, valid_utf8
from weir.sources.problems import Problem, value_problem

DECODER = JSON_DECODER
Record = dict[str, Any]


def decode_line(raw: bytes) -> tuple[Record | None, str | None]:
    """The record a line holds, or what is wrong with the line (the rest of a sentence)."""
    try:
        text, valid = raw.decode("utf-8"), True
    except UnicodeDecodeError:
        text, valid = raw.decode("utf-8", "surrogateescape"), False
    return decode(text, valid=valid)


def decode(text: str, *, valid: bool = True) -> tuple[Record | None, str | None]:
    try:
        value = DECODER.decode(text)
    except RecursionError:
        return None, deep()
    except ValueError:
        return None, "is not valid JSON" if valid else "is not valid UTF-8"
    if not isinstance(value, dict):
        return None, "is not a JSON object"
    return value, None


def flattened(
    record: Record | None, what: str | None, keep: frozenset[str] | None
) -> tuple[Record | None, str | None]:
    """A decoded record with its nested objects as columns (``flatten: true``; ``keep``: the
    contract's source names, which stay whole), or what is wrong with it. ``keep`` None:
    flatten is off."""
    if record is None or keep is None:
        return record, what
    out, wrong = flatten(record, keep)
    return (None, wrong) if wrong is not None else (out, None)


def deep() -> str:
    return f"nests deeper than the JSON parser allows (about {sys.getrecursionlimit()} levels)"


def records_chunk(
    records: list[Record | None],
    lines: list[int],
    schema: pa.Schema,
    problems: list[Problem],
    hidden: frozenset[str],
) -> Chunk:
    """``records`` (None: a line that is a problem already) as the columns of ``schema``;
    ``lines[i]``: the line of record ``i``."""
    columns = []
    for fld in schema:
        values = [None if record is None else record.get(fld.name) for record in records]
        array, bad = from_objects(values, fld)
        expected = expected_form(fld)
        problems += [
            value_problem(
                row, fld.name, raw, f"line {lines[row]}", expected, hidden=fld.name in hidden
            )
            for row, raw in bad
        ]
        columns.append(array)
    batch = pa.RecordBatch.from_arrays(columns, names=schema.names)
    return Chunk(batch, partial(_line, lines), problems)


def _line(lines: list[int], index: int) -> str:
    return f"line {lines[index]}"


def offered_schema(records: Iterable[Record], known: pa.Schema | None) -> pa.Schema:
    """Keys in order of appearance, typed by the contract, else by pyarrow from the values."""
    values: dict[str, list[Any]] = {}
    for record in records:
        for key, value in record.items():
            values.setdefault(key, []).append(value)
    return pa.schema(
        [
            offered_field(key, known, partial(_native_type, seen))
            for key, seen in values.items()
            if key not in RESERVED and valid_utf8(key)
        ]
    )


def _native_type(values: list[Any]) -> pa.DataType:
    try:
        kind = pa.array([plain(value) for value in values]).type
    except (pa.ArrowException, TypeError, ValueError, OverflowError, RecursionError):
        return pa.string()
    return pa.string() if pa.types.is_null(kind) else kind
