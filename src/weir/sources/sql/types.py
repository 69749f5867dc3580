"""Database values as Arrow arrays that :func:`weir.sources.base.conform` turns into the
contract's types. The contract decides every type; nothing here guesses one.

PostgreSQL's values come typed from ADBC; its extension types are unwrapped to their storage:
``numeric`` (an opaque type over its exact text) becomes that text, parsed strictly against
the contract's ``decimal(p,s)`` (or an integer or float type); ``uuid`` the 16 bytes the uuid
rule reads; ``json``/``jsonb`` their text, read as JSON for a nested contract type. Arrays are
lists, ``bytea`` binary, enums text, ``time`` Arrow times, ``timestamptz`` UTC timestamps.

SQLite's values carry only a storage class per value (NULL, INTEGER, REAL, TEXT, BLOB), and a
column may mix them. A column whose values share a class becomes that Arrow type
(conform casts it strictly: a REAL 1.5 is not an integer); a mixed column becomes text (a REAL
written by ``repr``, so it round-trips), parsed by the contract's rule for each value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from weir.spec.types import logical


def plain(array: pa.Array | pa.ChunkedArray) -> Any:
    """``array`` with extension types replaced by their storage, nested ones too."""
    if isinstance(array, pa.ChunkedArray):
        return pa.chunked_array([plain(c) for c in array.chunks], plain_type(array.type))
    if isinstance(array.type, pa.BaseExtensionType):
        return plain(array.storage)
    dtype = array.type
    if (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)) and _has_extension(dtype):
        values = plain(array.values)
        kind = pa.ListArray if pa.types.is_list(dtype) else pa.LargeListArray
        return kind.from_arrays(array.offsets, values, mask=array.is_null())
    return array


def plain_type(dtype: pa.DataType) -> pa.DataType:
    if isinstance(dtype, pa.BaseExtensionType):
        return plain_type(dtype.storage_type)
    if pa.types.is_list(dtype):
        return pa.list_(plain_type(dtype.value_type))
    if pa.types.is_large_list(dtype):
        return pa.large_list(plain_type(dtype.value_type))
    return dtype


def _has_extension(dtype: pa.DataType) -> bool:
    return bool(plain_type(dtype) != dtype)


def plain_batch(data: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    """A batch (a table's rows as one batch) with plain column types."""
    if isinstance(data, pa.Table):
        data = data.combine_chunks()
        batches = data.to_batches()
        data = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=data.schema)
    if not any(isinstance(t, pa.BaseExtensionType) or _has_extension(t) for t in data.schema.types):
        return data
    arrays = [plain(column) for column in data.columns]
    fields = [
        pa.field(f.name, a.type, metadata=f.metadata)
        for f, a in zip(data.schema, arrays, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def from_rows(
    rows: Sequence[Sequence[object]], names: Sequence[str], schema: pa.Schema | None
) -> pa.RecordBatch:
    """SQLite rows (tuples of Python values) as one batch, a column per name."""
    arrays = []
    for index, name in enumerate(names):
        values = [row[index] for row in rows]
        target = schema.field(name) if schema is not None and name in schema.names else None
        arrays.append(_column(values, target))
    return pa.RecordBatch.from_arrays(arrays, names=list(names))


def _column(values: list[object], target: pa.Field | None) -> pa.Array:
    classes = {type(v) for v in values if v is not None}
    if target is not None and logical(target) is None:
        if pa.types.is_binary(target.type):
            return pa.array([_bytes(v) for v in values], pa.binary())
        if pa.types.is_struct(target.type) or pa.types.is_list(target.type):
            classes = classes | {str}  # JSON text, read by the nested rule
    if len(classes) == 1 and classes != {str}:
        try:
            return pa.array(values)
        except (pa.ArrowException, OverflowError):
            pass  # an integer beyond 64 bits: read as its text
    texts = [_text(v) for v in values]
    try:
        return pa.array(texts, pa.string())
    except (UnicodeError, pa.ArrowException):  # not UTF-8: bytes, which the rules refuse
        return pa.array([_bytes(t) for t in texts], pa.binary())


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return repr(value)


def _bytes(value: object) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")
