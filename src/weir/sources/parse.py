"""Strict values: text and native values converted to the contract's Arrow types.

One rule per type, the same for CSV text, JSON values, Parquet columns and in-memory batches:

- integers: ``[+-]?digits`` within the type's range; no hex (``0x10``), exponent (``1e3``)
  or fraction (``1.0``);
- floats: decimal or scientific notation, and finite: ``inf``, ``nan`` and values that overflow
  the type (``1e999999``) are parse errors, never infinities;
- decimals: decimal or scientific notation that fits the precision and scale without rounding;
- booleans: ``true``, ``false``, ``1``, ``0``, in any case;
- dates: ISO ``YYYY-MM-DD``, real calendar dates only;
- timestamps: ISO 8601 (``T`` or a space, optional fraction of a second); ``timestamp``
  refuses a zone offset, ``timestamptz`` requires one (``Z``, ``+01:00``);
- strings: valid UTF-8.

Surrounding ASCII whitespace is ignored for every type but strings. A value of another native
type is cast safely (a cast that would lose data fails); a number for a string column becomes
its text.

Fast path: one vectorised cast per column plus vectorised checks (``pyarrow.compute``). Only a
column that holds a bad value is searched, by halves, for the values that fail, so clean data
pays for the cast alone and a bad value costs a few more casts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from weir.spec.types import type_name

_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OverflowError)

_FLOAT_TEXT = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_LEXICAL = {
    # What a value may look like once trimmed, checked only when the column's cast failed, to
    # find the bad values in one pass. Each pattern admits at least every text the cast (and
    # the checks after it) accept, so the search never rejects a value the fast path takes.
    "int": r"^-?[0-9]+$",
    "float": _FLOAT_TEXT,
    "decimal": _FLOAT_TEXT,
    "bool": r"(?i)^(true|false|1|0)$",
    "date": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "timestamp": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}",
}


@dataclass(frozen=True)
class Converted:
    """A column in the target type, NULL where a value could not be converted."""

    values: pa.Array
    failed: tuple[int, ...]
    """Positions of the values that could not be converted, ascending."""
    source: pa.Array
    """The input, to show a failed value as it was written."""

    def raw(self, index: int) -> str:
        return raw_text(self.source, index)


def convert(array: pa.Array, target: pa.DataType) -> Converted:
    """``array`` as ``target``, strictly (see the module docstring for the rules)."""
    kind = array.type
    if pa.types.is_null(kind):
        return Converted(pa.nulls(len(array), target), (), array)
    if _is_text(kind) and not (pa.types.is_binary(target) or pa.types.is_large_binary(target)):
        text, bad = _utf8(array)
        if _is_string(target):
            values = text if target == pa.string() else text.cast(target)
            return Converted(values, tuple(bad), array)
        values, failed = _from_text(text, target)
        return Converted(values, tuple(_merge(bad, failed)), array)
    if kind == target:
        values, failed = array, []
    else:
        values, failed = _cast(array, target)
    values, unfit = _check(values, None)
    return Converted(values, tuple(_merge(failed, unfit)), array)


def expected_form(target: pa.DataType) -> str:
    """What a valid value of ``target`` looks like, for messages."""
    name = type_name(target)
    if pa.types.is_integer(target):
        return f"{name} (digits only, within range)"
    if pa.types.is_floating(target):
        return f"{name} (a finite number)"
    if pa.types.is_decimal(target):
        return f"{name} (at most {target.precision} digits, {target.scale} after the point)"
    if pa.types.is_boolean(target):
        return "boolean (true, false, 1 or 0)"
    if pa.types.is_date(target):
        return "date (YYYY-MM-DD)"
    if pa.types.is_timestamp(target):
        offset = "with" if target.tz else "without"
        return f"{name} (ISO 8601 {offset} a zone offset)"
    if _is_string(target):
        return "string (valid UTF-8)"
    return name


def raw_text(array: pa.Array, index: int) -> str:
    """The value at ``index`` as written: text as is (invalid UTF-8 escaped), others as text."""
    if _is_text(array.type):
        raw = array.slice(index, 1).cast(pa.large_binary())[0].as_py()
        return bytes(raw).decode("utf-8", "backslashreplace") if raw is not None else ""
    value = array[index].as_py()
    return _json_text(value) if isinstance(value, dict | list) else str(value)


# --- Python values (JSON records) ----------------------------------------------------------------


class JsonNumber(str):
    """A JSON number (or NaN / Infinity) kept as the text it was written as: the column's type,
    not the JSON parser, decides what it means (``parse_int``/``parse_float`` of ``json``)."""


JSON_DECODER = json.JSONDecoder(
    parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=JsonNumber
)
"""Decodes JSON with every number kept as its text (:class:`JsonNumber`)."""

Shown = tuple[int, str]
"""A position and the value there as written."""


def from_objects(values: Sequence[object], target: pa.DataType) -> tuple[pa.Array, list[Shown]]:
    """Decoded JSON values as an array ready for :func:`convert`: text for scalar types (a
    number becomes its text), native values for nested ones; and the values that cannot be
    one (an object or array for a scalar column, a string that is not valid UTF-8)."""
    if pa.types.is_nested(target):
        return _nested(values, target)
    texts: list[str | None] = []
    bad: list[Shown] = []
    for index, value in enumerate(values):
        if value is None or isinstance(value, str):
            texts.append(value)
        elif isinstance(value, bool):
            texts.append("true" if value else "false")
        elif isinstance(value, int | float):
            texts.append(repr(value))
        else:
            bad.append((index, _json_text(value)))
            texts.append(None)
    try:
        return pa.array(texts, pa.string()), bad
    except (UnicodeError, pa.ArrowException):
        pass
    for index, text in enumerate(texts):
        if text is not None and not valid_utf8(text):
            bad.append((index, text))
            texts[index] = None
    return pa.array(texts, pa.string()), sorted(bad)


def _nested(values: Sequence[object], target: pa.DataType) -> tuple[pa.Array, list[Shown]]:
    native: list[object] = []
    bad: list[Shown] = []
    for index, value in enumerate(values):
        try:
            native.append(plain(value))
        except (RecursionError, ValueError):
            bad.append((index, _json_text(value)))
            native.append(None)
    array, failed = _bisect(native, target, lambda part: pa.array(part, target))
    bad += [(index, _json_text(values[index])) for index in failed]
    return array, sorted(bad)


def plain(value: object) -> object:
    """A decoded JSON value with its numbers (:class:`JsonNumber`) as Python numbers."""
    if isinstance(value, JsonNumber):
        text = str(value)
        return float(text) if any(c in text for c in ".eEnNI") else int(text)
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def _json_text(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(plain(value), ensure_ascii=False, default=str)[:200]
    except (RecursionError, ValueError, TypeError):
        return "[…]" if isinstance(value, list) else "{…}" if isinstance(value, dict) else "…"


def valid_utf8(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- the conversions -----------------------------------------------------------------------------


def _utf8(array: pa.Array) -> tuple[pa.Array, list[int]]:
    """Text as a string array; values that are not valid UTF-8 become NULL."""
    if _is_string(array.type):
        try:
            array.validate(full=True)
        except pa.ArrowInvalid:
            array = array.cast(pa.large_binary())  # no check: find the invalid values below
        else:
            return (array if array.type == pa.string() else array.cast(pa.string())), []
    try:
        return array.cast(pa.string()), []
    except pa.ArrowInvalid:
        return _bisect(array, pa.string(), lambda part: part.cast(pa.string()))


def _from_text(text: pa.Array, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    kind = _kind(target)
    try:
        values = text.cast(target, safe=True)
    except _CAST_ERRORS:
        pass
    else:
        return _check(values, text if kind == "int" else None)
    normal = pc.ascii_trim_whitespace(text)
    if kind == "int":
        normal = pc.replace_substring_regex(normal, pattern=r"^\+([0-9])", replacement=r"\1")
    rejected: list[int] = []
    pattern = _LEXICAL.get(kind)
    if pattern is not None:
        fits = pc.fill_null(pc.match_substring_regex(normal, pattern), True)
        rejected = _positions(pc.invert(fits))
        normal = pc.if_else(fits, normal, pa.scalar(None, pa.string()))
    values, failed = _cast(normal, target)
    values, unfit = _check(values, None)
    return values, _merge(rejected, failed, unfit)


def _cast(array: pa.Array, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    try:
        return array.cast(target, safe=True), []
    except _CAST_ERRORS:
        pass
    try:
        array.slice(0, 0).cast(target, safe=True)
    except _CAST_ERRORS:  # no cast between the types at all: every value fails
        return pa.nulls(len(array), target), _positions(array.is_valid())
    return _bisect(array, target, lambda part: part.cast(target, safe=True))


def _check(values: pa.Array, text: pa.Array | None) -> tuple[pa.Array, list[int]]:
    """Values the cast accepted but the rules do not: non-finite floats, integers written in
    hex (``text``: the text they were cast from); those become NULL."""
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    bad = None
    if pa.types.is_floating(values.type):
        bad = pc.fill_null(pc.invert(pc.is_finite(values)), False)
    elif text is not None:
        bad = pc.fill_null(pc.starts_with(text, "0x", ignore_case=True), False)
    if bad is None or not pc.any(bad).as_py():
        return values, []
    return pc.if_else(bad, pa.scalar(None, values.type), values), _positions(bad)


def _bisect(
    items: pa.Array | Sequence[object], target: pa.DataType, fn: Callable[[Any], pa.Array]
) -> tuple[pa.Array, list[int]]:
    """``fn`` over ``items``, searching by halves for the single items it fails on; those
    become NULL. Costs about two calls of ``fn`` per failing item and level."""
    pieces: list[pa.Array] = []
    failed: list[int] = []

    def visit(start: int, length: int) -> None:
        part = (
            items.slice(start, length)
            if isinstance(items, pa.Array)
            else items[start : start + length]
        )
        try:
            pieces.append(fn(part))
            return
        except (*_CAST_ERRORS, UnicodeError, TypeError, ValueError):
            if length == 1:
                failed.append(start)
                pieces.append(pa.nulls(1, target))
                return
        half = length // 2
        visit(start, half)
        visit(start + half, length - half)

    if len(items):
        visit(0, len(items))
    return (pa.concat_arrays(pieces) if pieces else pa.nulls(0, target)), failed


# --- small helpers -------------------------------------------------------------------------------


def _positions(mask: pa.Array) -> list[int]:
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    if not pc.any(mask).as_py():
        return []
    found: list[int] = pc.indices_nonzero(mask).to_pylist()
    return found


def _merge(*lists: Sequence[int]) -> list[int]:
    present = [items for items in lists if items]
    if len(present) <= 1:
        return list(present[0]) if present else []
    return sorted({i for items in present for i in items})


def _kind(target: pa.DataType) -> str:
    if pa.types.is_integer(target):
        return "int"
    if pa.types.is_floating(target):
        return "float"
    if pa.types.is_decimal(target):
        return "decimal"
    if pa.types.is_boolean(target):
        return "bool"
    if pa.types.is_date(target):
        return "date"
    if pa.types.is_timestamp(target):
        return "timestamp"
    return "other"


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or _is_view(kind, "string")


def _is_binary(kind: pa.DataType) -> bool:
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or _is_view(kind, "binary")


def _is_text(kind: pa.DataType) -> bool:
    return _is_string(kind) or _is_binary(kind)


def _is_view(kind: pa.DataType, name: str) -> bool:
    test = getattr(pa.types, f"is_{name}_view", None)
    return bool(test(kind)) if test is not None else False
