"""Strict values: text and native values converted to the contract's Arrow types.

One rule per type, the same for CSV text, JSON values, Parquet columns and in-memory batches:

- integers: ``[+-]?digits`` within the type's range; no hex (``0x10``), exponent (``1e3``)
  or fraction (``1.0``);
- floats: decimal or scientific notation, and finite: ``inf``, ``nan`` and values that overflow
  the type (``1e999999``) are parse errors, never infinities;
- decimals: decimal or scientific notation that fits the precision and scale without rounding;
- booleans: ``true``, ``false``, ``1``, ``0``, in any case;
- dates: ISO ``YYYY-MM-DD``, real calendar dates only;
- timestamps: ISO 8601 (``T`` or a space, optional fraction of a second, to the
  microsecond: more digits only when they are zeros, as in a nanosecond ``.123456000``);
  ``timestamp`` refuses a zone offset, ``timestamptz`` requires one (``Z``, ``+01:00``);
- strings: valid UTF-8;
- uuid: ``8-4-4-4-12`` hexadecimal digits, stored lower-case (a Parquet ``uuid`` or
  16-byte binary too);
- time: ``HH:MM[:SS[.ffffff]]``, 00:00 to 23:59:59.999999, no zone; stored as ``HH:MM:SS``
  or ``HH:MM:SS.ffffff`` (a Parquet ``time`` too);
- binary: base64 text (``A-Z a-z 0-9 + /``, padded), or the bytes of a binary column;
- struct, list, map: a JSON object (array, object) or an Arrow value of that shape, each
  field, item, key and value by its own type's rule; a value of the wrong shape, or one of
  its parts that breaks its rule, fails the whole value. Struct fields the type does not
  declare are not read; a declared field that is absent is NULL. Text (a Parquet string
  column, say) is read as JSON first.

Surrounding ASCII whitespace is ignored for every type but strings. A value of another native
type is cast safely (a cast that would lose data fails); a number for a string column becomes
its text.

A nested value's reason names the part that failed: ``column customer.address.zip, value
'x1'``, ``column items[2].qty``.

Fast path: one vectorised cast per column plus vectorised checks (``pyarrow.compute``). Only a
column that holds a bad value is searched, by halves, for the values that fail, so clean data
pays for the cast alone and a bad value costs a few more casts.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from weir.spec.types import logical, storage, type_name

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


_ZERO_NANOS = r"(\.[0-9]{6})0+($|[Zz+-])"
"""Zeros after a timestamp's sixth fractional digit, before the end or a zone."""


Detail = tuple[str, str, str]
"""Where inside a nested value it failed (``.address.zip``, ``[2]``), the part as written, and
what that part should look like."""


@dataclass(frozen=True)
class Converted:
    """A column in the target type, NULL where a value could not be converted."""

    values: pa.Array
    failed: tuple[int, ...]
    """Positions of the values that could not be converted, ascending."""
    source: pa.Array
    """The input, to show a failed value as it was written."""
    details: Mapping[int, Detail] = field(default_factory=dict)
    """For a nested value that failed in one of its parts: which part (see :data:`Detail`)."""

    def raw(self, index: int) -> str:
        return raw_text(self.source, index)

    def explain(self, index: int, target: pa.DataType | pa.Field) -> Detail:
        """The failed part of value ``index`` (``""`` for the whole), as written, expected."""
        found = self.details.get(index)
        return found if found is not None else ("", self.raw(index), expected_form(target))


Outcome = tuple[pa.Array, list[int], dict[int, Detail]]


def convert(array: pa.Array, target: pa.DataType | pa.Field) -> Converted:
    """``array`` as ``target``, strictly (see the module docstring for the rules). Pass the
    contract's field where it has one: uuid and time are known by its metadata."""
    values, failed, details = _convert(array, _as_field(target))
    return Converted(values, tuple(failed), array, details)


def _convert(array: pa.Array, fld: pa.Field) -> Outcome:
    target = fld.type
    kind = array.type
    if pa.types.is_null(kind):
        return pa.nulls(len(array), storage(target)), [], {}
    if pa.types.is_struct(target) or pa.types.is_list(target) or pa.types.is_map(target):
        return _nested_value(array, fld)
    special = logical(fld)
    if special is not None:
        values, failed = (_uuid if special == "uuid" else _time)(array)
        return values, failed, {}
    if _is_binary(target):
        values, failed = _binary(array)
        return values, failed, {}
    if _is_text(kind):
        text, bad = _utf8(array)
        if _is_string(target):
            values = text if target == pa.string() else text.cast(target)
            return values, bad, {}
        values, failed = _from_text(text, target)
        return values, _merge(bad, failed), {}
    if kind == target:
        values, failed = array, []
    else:
        values, failed = _cast(array, target)
    values, unfit = _check(values, None)
    return values, _merge(failed, unfit), {}


def _as_field(target: pa.DataType | pa.Field) -> pa.Field:
    return target if isinstance(target, pa.Field) else pa.field("value", target)


def expected_form(target: pa.DataType | pa.Field) -> str:
    """What a valid value of ``target`` looks like, for messages."""
    special = logical(target) if isinstance(target, pa.Field) else None
    if special == "uuid":
        return "uuid (8-4-4-4-12 hexadecimal digits)"
    if special == "time":
        return "time (HH:MM[:SS[.ffffff]], no zone)"
    if isinstance(target, pa.Field):
        target = target.type
    name = type_name(target)
    if _is_binary(target):
        return "binary (base64 text)"
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


def from_objects(
    values: Sequence[object], target: pa.DataType | pa.Field
) -> tuple[pa.Array, list[Shown]]:
    """Decoded JSON values as an array ready for :func:`convert`: text for scalar types (a
    number becomes its text); for nested types the same shape with text at the leaves (a
    struct of texts, a list of texts, …); and the values that cannot be one (an object or
    array for a scalar, a string that is not valid UTF-8, a value of the wrong shape)."""
    dtype = target.type if isinstance(target, pa.Field) else target
    if pa.types.is_struct(dtype) or pa.types.is_list(dtype) or pa.types.is_map(dtype):
        array, bad = _shaped(values, dtype)
        return array, [(index, _json_text(values[index])) for index in sorted(bad)]
    texts: list[str | None] = []
    bad_values: list[Shown] = []
    for index, value in enumerate(values):
        if value is None or isinstance(value, str):
            texts.append(value)
        elif isinstance(value, bool):
            texts.append("true" if value else "false")
        elif isinstance(value, int | float):
            texts.append(repr(value))
        else:
            bad_values.append((index, _json_text(value)))
            texts.append(None)
    try:
        return pa.array(texts, pa.string()), bad_values
    except (UnicodeError, pa.ArrowException):
        pass
    for index, text in enumerate(texts):
        if text is not None and not valid_utf8(text):
            bad_values.append((index, text))
            texts[index] = None
    return pa.array(texts, pa.string()), sorted(bad_values)


def _shaped(values: Sequence[object], dtype: pa.DataType) -> tuple[pa.Array, set[int]]:
    """``values`` in the shape of ``dtype`` with text leaves; the positions of wrong shapes."""
    if pa.types.is_struct(dtype):
        bad = {i for i, v in enumerate(values) if v is not None and not isinstance(v, dict)}
        children = []
        for child in (dtype.field(i) for i in range(dtype.num_fields)):
            part = [v.get(child.name) if isinstance(v, dict) else None for v in values]
            array, wrong = _shaped(part, child.type)
            children.append(array)
            bad |= wrong
        mask = pa.array([not isinstance(v, dict) for v in values], pa.bool_())
        names = [dtype.field(i).name for i in range(dtype.num_fields)]
        return pa.StructArray.from_arrays(children, names=names, mask=mask), bad
    if pa.types.is_list(dtype) or pa.types.is_map(dtype):
        return _shaped_entries(values, dtype)
    texts, shown = from_objects(values, pa.string())
    return texts, {index for index, _ in shown}


def _shaped_entries(values: Sequence[object], dtype: pa.DataType) -> tuple[pa.Array, set[int]]:
    """Lists (JSON arrays) or maps (JSON objects) with text leaves."""
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    is_map = pa.types.is_map(dtype)
    want = dict if is_map else list
    keys: list[object] = []
    items: list[object] = []
    parents: list[int] = []
    offsets = [0]
    bad: set[int] = set()
    for index, value in enumerate(values):
        entries: list[tuple[object, object]] | None = None
        if is_map and isinstance(value, dict):
            entries = list(value.items())
        elif not is_map and isinstance(value, list):
            entries = [(None, item) for item in value]
        if entries is not None:
            keys += [k for k, _ in entries]
            items += [v for _, v in entries]
            parents += [index] * len(entries)
        elif value is not None:
            bad.add(index)
        offsets.append(len(items))
    mask = pa.array([not isinstance(v, want) for v in values], pa.bool_())
    item_type = dtype.item_type if is_map else dtype.value_type
    shaped, wrong = _shaped(items, item_type)
    bad |= {parents[i] for i in wrong}
    if not is_map:
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), shaped, mask=mask), bad
    texts, shown = from_objects(keys, pa.string())
    bad |= {parents[i] for i, _ in shown}
    texts = pc.fill_null(texts, "")  # a key that is not UTF-8: its row is bad already
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), texts, shaped, mask=mask), bad


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
    if kind == "timestamp":  # a fraction past µs may only add zeros (nanoseconds written)
        normal = pc.replace_substring_regex(normal, pattern=_ZERO_NANOS, replacement=r"\1\2")
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


# --- nested values -------------------------------------------------------------------------------


def _nested_value(array: pa.Array, fld: pa.Field) -> Outcome:
    target = fld.type
    if _is_text(array.type):
        return _nested_from_text(array, fld)
    if pa.types.is_struct(target) and pa.types.is_struct(array.type):
        return _struct(array, fld)
    if pa.types.is_map(target) and pa.types.is_map(array.type):
        return _map(array, fld)
    if pa.types.is_list(target) and (pa.types.is_list(array.type) or _is_large_list(array)):
        return _list(array, fld)
    return pa.nulls(len(array), storage(target)), _positions(array.is_valid()), {}


def _nested_from_text(array: pa.Array, fld: pa.Field) -> Outcome:
    """Text holding JSON (a Parquet string column, say) read as the nested type."""
    text, failed = _utf8(array)
    decoded: list[object] = []
    for index, value in enumerate(text.to_pylist()):
        try:
            decoded.append(None if value is None else JSON_DECODER.decode(value))
        except (ValueError, RecursionError):
            failed.append(index)
            decoded.append(None)
    shaped, bad = from_objects(decoded, fld.type)
    values, wrong, details = _convert(shaped, fld)
    return values, _merge(failed, [i for i, _ in bad], wrong), details


def _struct(array: pa.StructArray, fld: pa.Field) -> Outcome:
    target = fld.type
    offered = {array.type.field(i).name: i for i in range(array.type.num_fields)}
    parts = array.flatten()  # each field with the struct's own NULLs applied
    children: list[pa.Array] = []
    failed: set[int] = set()
    details: dict[int, Detail] = {}
    for child in (target.field(i) for i in range(target.num_fields)):
        at = offered.get(child.name)
        if at is None:
            children.append(pa.nulls(len(array), storage(child.type)))
            continue
        values, bad, inner = _convert(parts[at], child)
        children.append(values)
        for row in bad:
            failed.add(row)
            if row not in details:
                path, raw, expected = _part(inner, row, parts[at], child)
                details[row] = (f".{child.name}{path}", raw, expected)
    fields = [pa.field(f.name, storage(f.type)) for f in target]
    result = pa.StructArray.from_arrays(children, fields=fields, mask=array.is_null())
    return result, sorted(failed), details


def _list(array: pa.Array, fld: pa.Field) -> Outcome:
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    item = fld.type.value_field
    flat = pc.list_flatten(array)
    values, bad, inner = _convert(flat, item)
    lengths = pc.fill_null(pc.list_value_length(array), 0).cast(pa.int32())
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(lengths)])
    result = pa.ListArray.from_arrays(offsets, values, type=storage(fld.type), mask=array.is_null())
    failed, details = _to_rows(array, bad, inner, flat, item, lambda n, at: f"[{n}]")
    return result, failed, details


def _map(array: pa.Array, fld: pa.Field) -> Outcome:
    """A map as a list of (key, value) entries: both converted by their types. A key that
    fails takes its whole map with it (a map cannot hold a NULL key)."""
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    target = fld.type
    key = pa.field("key", array.type.key_type, nullable=False)
    entries = pa.field("entries", pa.struct([key, array.type.item_field]), nullable=False)
    as_list = array.cast(pa.list_(entries))
    flat = pc.list_flatten(as_list)
    raw_keys = flat.field(0)
    keys, bad_keys, _ = _convert(raw_keys, target.key_field)
    items, bad_items, inner = _convert(flat.field(1), target.item_field)
    key_rows, details = _to_rows(
        as_list, bad_keys, {}, raw_keys, target.key_field, lambda n, at: f" key {n + 1}"
    )
    item_rows, item_details = _to_rows(
        as_list,
        bad_items,
        inner,
        flat.field(1),
        target.item_field,
        lambda n, at: f"[{raw_text(raw_keys, at)!r}]",
    )
    details = {**item_details, **details}
    lengths = pc.fill_null(pc.list_value_length(as_list), 0)
    mask = array.is_null()
    if key_rows:  # those maps lose their entries and become NULL
        gone = pc.is_in(pa.array(range(len(array)), pa.int64()), pa.array(key_rows, pa.int64()))
        lengths = pc.if_else(gone, 0, lengths)
        parents = pc.list_parent_indices(as_list).cast(pa.int64())
        keep = pc.invert(pc.is_in(parents, pa.array(key_rows, pa.int64())))
        keys, items = keys.filter(keep), items.filter(keep)
        mask = pc.or_(mask, gone)
    offsets = pa.concat_arrays(
        [pa.array([0], pa.int32()), pc.cumulative_sum(lengths.cast(pa.int32()))]
    )
    result = pa.MapArray.from_arrays(offsets, keys, items, type=storage(target), mask=mask)
    return result, _merge(key_rows, item_rows), details


def _to_rows(
    lists: pa.Array,
    bad: list[int],
    inner: Mapping[int, Detail],
    flat: pa.Array,
    item: pa.Field,
    step: Callable[[int, int], str],
) -> tuple[list[int], dict[int, Detail]]:
    """Failed positions among the flattened items of ``lists`` as rows, with details."""
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    if not bad:
        return [], {}
    parents = pc.list_parent_indices(lists).to_pylist()
    starts: dict[int, int] = {}
    for position, parent in enumerate(parents):
        starts.setdefault(parent, position)
    details: dict[int, Detail] = {}
    for position in bad:
        row = parents[position]
        if row not in details:
            path, raw, expected = _part(inner, position, flat, item)
            details[row] = (step(position - starts[row], position) + path, raw, expected)
    return sorted(details), details


def _part(inner: Mapping[int, Detail], index: int, source: pa.Array, fld: pa.Field) -> Detail:
    found = inner.get(index)
    return found if found is not None else ("", raw_text(source, index), expected_form(fld))


def _is_large_list(array: pa.Array) -> bool:
    return bool(pa.types.is_large_list(array.type))


# --- uuid, time, binary --------------------------------------------------------------------------

_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _uuid(array: pa.Array) -> tuple[pa.Array, list[int]]:
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    if isinstance(array.type, pa.UuidType):
        array = array.storage
    if pa.types.is_fixed_size_binary(array.type) and array.type.byte_width == 16:
        hexed = [None if b is None else _hyphenated(b.hex()) for b in array.to_pylist()]
        return pa.array(hexed, pa.string()), []
    text, failed = _utf8(array if _is_text(array.type) else array.cast(pa.string()))
    normal = pc.ascii_trim_whitespace(text)
    fits = pc.fill_null(pc.match_substring_regex(normal, _UUID), True)
    return _keep(pc.utf8_lower(normal), fits, failed)


def _hyphenated(digits: str) -> str:
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _time(array: pa.Array) -> tuple[pa.Array, list[int]]:
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    if pa.types.is_time(array.type):
        text = array.cast(pa.time64("us")).cast(pa.string())
        return pc.replace_substring_regex(text, pattern=r"\.000000$", replacement=""), []
    text, failed = _utf8(array if _is_text(array.type) else array.cast(pa.string()))
    times: list[str | None] = []
    for index, value in enumerate(text.to_pylist()):
        value = value.strip(" \t\r\n") if value is not None else None
        if value is None or _TIME.fullmatch(value):
            times.append(None if value is None else dt.time.fromisoformat(value).isoformat())
        else:
            failed.append(index)
            times.append(None)
    return pa.array(times, pa.string()), sorted(set(failed))


def _binary(array: pa.Array) -> tuple[pa.Array, list[int]]:
    if not _is_text(array.type):
        values, failed = _cast(array, pa.binary())
        return values, failed
    if _is_binary(array.type):
        return array.cast(pa.binary()), []
    decoded: list[bytes | None] = []
    failed = []
    for index, value in enumerate(array.cast(pa.large_binary()).to_pylist()):
        text = value.strip(b" \t\r\n") if value is not None else None
        if text is None:
            decoded.append(None)
            continue
        try:
            if not _BASE64.fullmatch(text.decode("ascii")):
                raise ValueError(text)
            decoded.append(base64.b64decode(text, validate=True))
        except (ValueError, binascii.Error):
            failed.append(index)
            decoded.append(None)
    return pa.array(decoded, pa.binary()), failed


def _keep(values: pa.Array, fits: pa.Array, failed: list[int]) -> tuple[pa.Array, list[int]]:
    """``values`` where ``fits``, NULL elsewhere; those positions added to ``failed``."""
    import pyarrow.compute as pc  # imported when used: a no-op run never needs it

    rejected = _positions(pc.invert(fits))
    values = pc.if_else(fits, values, pa.scalar(None, values.type))
    return values, _merge(failed, rejected)


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
