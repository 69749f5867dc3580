"""Contract column types: one spelling in YAML, one Arrow type, one DuckDB type."""

from __future__ import annotations

import re

import pyarrow as pa

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
}
_DECIMAL = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")

TYPE_NAMES = sorted([*_SIMPLE, *_ALIASES, "decimal(p,s)"])


def normalize(name: str) -> str | None:
    """Canonical spelling of a type name, or None when it is not a known type."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in _SIMPLE:
        return key
    match = _DECIMAL.fullmatch(key)
    if match and 0 < int(match[1]) <= 38 and int(match[2]) <= int(match[1]):
        return f"decimal({match[1]},{match[2]})"
    return None


def arrow_type(name: str) -> pa.DataType:
    key = normalize(name)
    if key is None:
        raise ValueError(f"unknown type {name!r}")
    if key.startswith("decimal"):
        match = _DECIMAL.fullmatch(key)
        assert match is not None
        return pa.decimal128(int(match[1]), int(match[2]))
    return _SIMPLE[key][0]


def duckdb_type(name: str) -> str:
    key = normalize(name)
    if key is None:
        raise ValueError(f"unknown type {name!r}")
    if key.startswith("decimal"):
        return key.upper()
    return _SIMPLE[key][1]


def type_name(dtype: pa.DataType) -> str:
    """The contract spelling of an Arrow type (for diffs and `weir infer`)."""
    for key, (arrow, _) in _SIMPLE.items():
        if dtype == arrow:
            return key
    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if pa.types.is_timestamp(dtype):
        return "timestamptz" if dtype.tz else "timestamp"
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "string"
    return str(dtype)


_INT_ORDER = ["int8", "int16", "int32", "int64"]
_FLOAT_ORDER = ["float32", "float64"]


def widening(source: str, target: str) -> bool:
    """True when values of type ``source`` always fit in ``target`` without loss."""
    if source == target:
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
