"""Contract column types: one spelling in YAML, one Arrow type, one DuckDB type.

Scalars are single words (``int64``, ``string``, ``uuid``, ``decimal(12,2)``); nested types
are written the way Spark, Hive and Databricks write them::

    struct<city: string, zip: string>        fields in order, each typed (``name type`` too)
    list<int64>                              also ``array<int64>``
    map<string, decimal(12,2)>               keys of a scalar type
    list<struct<sku: string, qty: int32>>    and any nesting of those

Field names keep their case; a name that is not a plain identifier is written in backquotes
(``struct<`first-name`: string>``). Every struct field, list item and map value is nullable.

Delta has no ``uuid`` or ``time`` type, so both are stored as strings, converted to one form
(lower-case ``8-4-4-4-12`` hex; ``HH:MM:SS`` or ``HH:MM:SS.ffffff``); their Arrow fields carry
``weir.type`` metadata so that the value rules know them. ``binary`` is Arrow binary (Delta
``binary``, DuckDB ``BLOB``); text formats write it in base64.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from weir.hints import did_you_mean

_SIMPLE: dict[str, tuple[pa.DataType, str]] = {
    "string": (pa.string(), "VARCHAR"),
    "boolean": (pa.bool_(), "BOOLEAN"),
    "int8": (pa.int8(), "TINYINT"),
    "int16": (pa.int16(), "SMALLINT"),
    "int32": (pa.int32(), "INTEGER"),
    "int64": (pa.int64(), "BIGINT"),
    "float32": (pa.float32(), "FLOAT"),
    "float64": (pa.float64(), "DOUBLE"),
    "date": (pa.date32(), "DATE"),
    "timestamp": (pa.timestamp("us"), "TIMESTAMP"),
    "timestamptz": (pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ"),
    "binary": (pa.binary(), "BLOB"),
    "uuid": (pa.string(), "VARCHAR"),
    "time": (pa.string(), "VARCHAR"),
}
_ALIASES = {
    "str": "string",
    "text": "string",
    "varchar": "string",
    "bool": "boolean",
    "int": "int64",
    "integer": "int64",
    "bigint": "int64",
    "long": "int64",
    "smallint": "int16",
    "tinyint": "int8",
    "float": "float64",
    "double": "float64",
    "number": "float64",
    "real": "float32",
    "datetime": "timestamp",
    "timestamp_tz": "timestamptz",
    "bytes": "binary",
    "blob": "binary",
}
_DECIMAL = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_NESTED = ("struct", "list", "array", "map")

TYPE_NAMES = sorted([*_SIMPLE, *_ALIASES, "decimal(p,s)", "struct<…>", "list<…>", "map<…,…>"])

LOGICAL = b"weir.type"
"""Arrow field metadata naming a contract type that is stored as another (uuid, time)."""
STORED_AS_TEXT = ("uuid", "time")


# --- the type tree -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scalar:
    name: str
    """Canonical: a key of ``_SIMPLE`` or ``decimal(p,s)``."""


@dataclass(frozen=True)
class Struct:
    fields: tuple[tuple[str, Type], ...]


@dataclass(frozen=True)
class List:
    item: Type


@dataclass(frozen=True)
class Map:
    key: Type
    value: Type


Type = Scalar | Struct | List | Map


class TypeSpecError(ValueError):
    """A type spelling that is not a contract type; the message says where and why."""


def parse(text: str) -> Type:
    """The type ``text`` spells; TypeSpecError saying what is wrong and where otherwise."""
    reader = _Reader(text)
    found = reader.type()
    reader.end()
    return found


def spelling(found: Type) -> str:
    """The canonical spelling of a type (what ``normalize`` returns)."""
    if isinstance(found, Scalar):
        return found.name
    if isinstance(found, List):
        return f"list<{spelling(found.item)}>"
    if isinstance(found, Map):
        return f"map<{spelling(found.key)}, {spelling(found.value)}>"
    return "struct<" + ", ".join(f"{_name(n)}: {spelling(t)}" for n, t in found.fields) + ">"


def check(text: str) -> str:
    """The canonical spelling of ``text``; TypeSpecError when it is not a type."""
    return spelling(parse(text))


def normalize(name: str) -> str | None:
    """Canonical spelling of a type name, or None when it is not a known type."""
    try:
        return check(name)
    except TypeSpecError:
        return None


def is_nested(name: str) -> bool:
    return not isinstance(parse(name), Scalar)


# --- Arrow, DuckDB ---------------------------------------------------------------------------------


def arrow_type(name: str) -> pa.DataType:
    return _arrow(parse(name))


def arrow_field(name: str, type_: str, *, nullable: bool = True) -> pa.Field:
    """A column of contract type ``type_``: uuid and time marked with :data:`LOGICAL`."""
    return _field(name, parse(type_), nullable=nullable)


def _arrow(found: Type) -> pa.DataType:
    if isinstance(found, Scalar):
        match = _DECIMAL.fullmatch(found.name)
        if match:
            return pa.decimal128(int(match[1]), int(match[2]))
        return _SIMPLE[found.name][0]
    if isinstance(found, List):
        return pa.list_(_field("item", found.item))
    if isinstance(found, Map):
        return pa.map_(_field("key", found.key, nullable=False), _field("value", found.value))
    return pa.struct([_field(n, t) for n, t in found.fields])


def _field(name: str, found: Type, *, nullable: bool = True) -> pa.Field:
    meta = None
    if isinstance(found, Scalar) and found.name in STORED_AS_TEXT:
        meta = {LOGICAL: found.name.encode()}
    return pa.field(name, _arrow(found), nullable=nullable, metadata=meta)


def logical(fld: pa.Field) -> str | None:
    """``uuid`` or ``time`` for a field that stores one as text, else None."""
    meta = fld.metadata or {}
    value = meta.get(LOGICAL)
    return value.decode() if value is not None else None


def storage(dtype: pa.DataType) -> pa.DataType:
    """``dtype`` without weir's field metadata anywhere inside it (what tables store)."""
    if pa.types.is_struct(dtype):
        return pa.struct([_plain(dtype.field(i)) for i in range(dtype.num_fields)])
    if pa.types.is_map(dtype):
        return pa.map_(_plain(dtype.key_field), _plain(dtype.item_field))
    if pa.types.is_list(dtype):
        return pa.list_(_plain(dtype.value_field))
    return dtype


def _plain(fld: pa.Field) -> pa.Field:
    return pa.field(fld.name, storage(fld.type), nullable=fld.nullable)


def duckdb_type(name: str) -> str:
    return _duckdb(parse(name))


def _duckdb(found: Type) -> str:
    if isinstance(found, Scalar):
        return found.name.upper() if found.name.startswith("decimal") else _SIMPLE[found.name][1]
    if isinstance(found, List):
        return f"{_duckdb(found.item)}[]"
    if isinstance(found, Map):
        return f"MAP({_duckdb(found.key)}, {_duckdb(found.value)})"
    fields = ", ".join(f'"{n.replace(chr(34), chr(34) * 2)}" {_duckdb(t)}' for n, t in found.fields)
    return f"STRUCT({fields})"


def type_name(dtype: pa.DataType | pa.Field) -> str:
    """The contract spelling of an Arrow type or field (for diffs and `weir infer`)."""
    if isinstance(dtype, pa.Field):
        return logical(dtype) or type_name(dtype.type)
    for key, (arrow, _) in _SIMPLE.items():
        if dtype == arrow and key not in STORED_AS_TEXT:
            return key
    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if pa.types.is_timestamp(dtype):
        return "timestamptz" if dtype.tz else "timestamp"
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "string"
    if pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype):
        return "binary"
    if pa.types.is_time(dtype):
        return "time"
    if isinstance(dtype, pa.UuidType):
        return "uuid"
    if pa.types.is_struct(dtype):
        fields = [dtype.field(i) for i in range(dtype.num_fields)]
        return "struct<" + ", ".join(f"{_name(f.name)}: {type_name(f)}" for f in fields) + ">"
    if pa.types.is_map(dtype):
        return f"map<{type_name(dtype.key_field)}, {type_name(dtype.item_field)}>"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_list_view(dtype):
        return f"list<{type_name(dtype.value_field)}>"
    return str(dtype)


# --- widening ----------------------------------------------------------------------------------------

_INT_ORDER = ["int8", "int16", "int32", "int64"]
_FLOAT_ORDER = ["float32", "float64"]
_TEXT_INTO = {("string", "uuid"), ("string", "time"), ("uuid", "string"), ("time", "string")}


def widening(source: str, target: str) -> bool:
    """True when values of type ``source`` always fit in ``target`` without loss (uuid and
    time also from text, whose values are checked one by one). Nested types widen field by
    field; a struct field the source lacks is NULL, one the contract lacks is not read."""
    if source == target:
        return True
    try:
        have, want = parse(source), parse(target)
    except TypeSpecError:
        return False
    return _widens(have, want)


def _widens(have: Type, want: Type) -> bool:
    if isinstance(have, Scalar) and isinstance(want, Scalar):
        return _scalar_widens(have.name, want.name)
    if isinstance(have, List) and isinstance(want, List):
        return _widens(have.item, want.item)
    if isinstance(have, Map) and isinstance(want, Map):
        return _widens(have.key, want.key) and _widens(have.value, want.value)
    if isinstance(have, Struct) and isinstance(want, Struct):
        offered = dict(have.fields)
        return all(name not in offered or _widens(offered[name], t) for name, t in want.fields)
    return False


def _scalar_widens(source: str, target: str) -> bool:
    if source == target or (source, target) in _TEXT_INTO:
        return True
    for order in (_INT_ORDER, _FLOAT_ORDER):
        if source in order and target in order:
            return order.index(source) <= order.index(target)
    if source in _INT_ORDER[:3] and target == "float64":
        return True
    if source in _INT_ORDER and target.startswith("decimal"):
        return True
    return source == "date" and target in ("timestamp", "timestamptz")


def storable(dtype: pa.DataType) -> bool:
    """Whether Parquet (so a Delta table) can store a column of ``dtype``: not the null type,
    no struct without fields, anywhere inside it."""
    if pa.types.is_null(dtype) or (pa.types.is_struct(dtype) and dtype.num_fields == 0):
        return False
    if pa.types.is_struct(dtype):
        return all(storable(dtype.field(i).type) for i in range(dtype.num_fields))
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return storable(dtype.value_type)
    if pa.types.is_map(dtype):
        return storable(dtype.key_type) and storable(dtype.item_type)
    return True


# --- the spelling's reader -----------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*((?i:decimal)\s*\([^)]*\)|`(?:[^`]|``)*`|[A-Za-z_][A-Za-z0-9_]*|[<>,:()]|\S)"
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _name(name: str) -> str:
    return name if _IDENT.fullmatch(name) else "`" + name.replace("`", "``") + "`"


class _Reader:
    """Recursive descent over the tokens of a type spelling."""

    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, int]] = []
        pos = 0
        while (match := _TOKEN.match(text, pos)) and match.group(1):
            self.tokens.append((match.group(1), match.start(1)))
            pos = match.end()
        self.at = 0

    def fail(self, what: str) -> TypeSpecError:
        pos = self.tokens[self.at][1] if self.at < len(self.tokens) else len(self.text)
        where = f" (at character {pos + 1} of {self.text!r})" if self._nested_text() else ""
        return TypeSpecError(what + where)

    def _nested_text(self) -> bool:
        return "<" in self.text

    def peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None:
            raise self.fail(
                f"type {self.text!r} ends early" + (f"; expected {expected!r}" if expected else "")
            )
        if expected is not None and token != expected:
            raise self.fail(f"expected {expected!r}, found {token!r}")
        self.at += 1
        return token

    def end(self) -> None:
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r} after the type")

    def type(self) -> Type:
        if self.peek() is None:
            raise self.fail("empty type")
        word = self.take()
        key = word.lower()
        if key in _NESTED and self.peek() == "<":
            self.take("<")
            found = self._nested(key)
            self.take(">")
            return found
        if key in _NESTED:
            raise self.fail(f"{key} needs its parts in <…>, e.g. {_EXAMPLES[key]}")
        return Scalar(self._scalar(word))

    def _nested(self, key: str) -> Type:
        if key in ("list", "array"):
            return List(self.type())
        if key == "map":
            at = self.at
            found = self.type()
            if not isinstance(found, Scalar):
                self.at = at
                raise self.fail("a map's keys must be of a scalar type")
            self.take(",")
            return Map(found, self.type())
        fields: list[tuple[str, Type]] = []
        while True:
            name = self._field_name()
            if name in {n for n, _ in fields}:
                raise self.fail(f"struct field {name!r} is declared twice")
            if self.peek() == ":":
                self.take(":")
            try:
                fields.append((name, self.type()))
            except TypeSpecError as exc:
                raise TypeSpecError(f"struct field {name!r}: {exc}") from None
            if self.peek() != ",":
                return Struct(tuple(fields))
            self.take(",")

    def _field_name(self) -> str:
        if self.peek() == ">":
            raise self.fail("a struct needs at least one field, e.g. struct<city: string>")
        token = self.take()
        if token.startswith("`"):
            return token[1:-1].replace("``", "`")
        if not _IDENT.fullmatch(token):
            self.at -= 1
            raise self.fail(
                f"expected a struct field name, found {token!r} (quote it in backquotes)"
            )
        return token

    def _scalar(self, word: str) -> str:
        key = re.sub(r"\s+", "", word.lower())
        key = _ALIASES.get(key, key)
        if key in _SIMPLE:
            return key
        match = _DECIMAL.fullmatch(key)
        if match:
            precision, scale = int(match[1]), int(match[2])
            if 0 < precision <= 38 and scale <= precision:
                return f"decimal({precision},{scale})"
            self.at -= 1
            raise self.fail(
                f"{word!r}: decimal precision must be 1 to 38 and scale at most the precision"
            )
        self.at -= 1
        raise self.fail(f"unknown type {word!r}; {did_you_mean(key, TYPE_NAMES)}")


_EXAMPLES = {
    "struct": "struct<city: string, zip: string>",
    "list": "list<string>",
    "array": "array<string>",
    "map": "map<string, int64>",
}
