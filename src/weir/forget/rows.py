"""Rows of one Delta table that hold a data subject: found, named without their values, deleted.

A :class:`Matcher` says which rows are the subject's: those whose ``columns`` equal one of
its ``values`` rows (a key tuple, or a PII digest). It is evaluated two ways, which the
tests hold to the same answer: as DataFusion SQL over the table's current snapshot (delta-rs
runs the DELETE, so the rows are found with the same engine), and with Arrow over a loose
parquet file (the old files that the snapshot no longer references).

delta-rs writes a DELETE's predicate into the commit, and the log is kept for as long as the
table. So the predicate never names a value: it names the rows by a **fingerprint**, the
SHA-256 of every scalar column of the row (``_batch`` narrows the files to read where the
table has it). A fingerprint can only be matched by someone who holds the whole row — which
is gone once the forget is done.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder
from deltalake.exceptions import DeltaError

from weir.errors import LakeError
from weir.sql import ident, literal

FINGERPRINT = "__weir_fingerprint"
_UNITS = {"s": "Second", "ms": "Millisecond", "us": "Microsecond", "ns": "Nanosecond"}


@dataclass(frozen=True)
class Matcher:
    """The rows whose ``columns`` equal one row of ``values`` (a table with those columns)."""

    columns: tuple[str, ...]
    values: pa.Table
    label: str
    """What the rows are matched on, for people: ``email`` or ``key (order_id)``."""

    @classmethod
    def of(
        cls, columns: Sequence[str], rows: Sequence[Sequence[Any]], schema: pa.Schema, label: str
    ) -> Matcher | None:
        """A matcher over ``columns`` of a table with ``schema``; None when no row is
        complete (a NULL identifies nobody) or a value does not fit the column's type."""
        complete = list(dict.fromkeys(tuple(r) for r in rows if all(v is not None for v in r)))
        if not complete or any(c not in schema.names for c in columns):
            return None
        arrays = {}
        for i, name in enumerate(columns):
            try:
                arrays[name] = pa.array([r[i] for r in complete]).cast(schema.field(name).type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                return None
        return cls(tuple(columns), pa.table(arrays), label)

    def sql(self) -> str:
        """DataFusion SQL that is true for the matching rows (values as literals)."""
        if len(self.columns) == 1:
            column = self.values.column(0)
            items = ", ".join(_literal(v, column.type) for v in column.to_pylist())
            return f"{ident(self.columns[0])} IN ({items})"
        rows = []
        for row in self.values.to_pylist():
            parts = [
                f"{ident(c)} = {_literal(row[c], self.values.schema.field(c).type)}"
                for c in self.columns
            ]
            rows.append("(" + " AND ".join(parts) + ")")
        return "(" + " OR ".join(rows) + ")"

    def count(self, data: pa.Table) -> int:
        """How many rows of ``data`` match (0 when ``data`` lacks a column)."""
        if any(c not in data.column_names for c in self.columns):
            return 0
        data = data.select(list(self.columns))
        data = data.cast(pa.schema([_joinable(f) for f in data.schema]))
        try:
            values = self.values.cast(data.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return 0
        joined = data.join(values, list(self.columns), join_type="inner")
        return int(joined.num_rows)


def _joinable(f: pa.Field) -> pa.Field:
    """Arrow joins take plain strings, not views or large strings (parquet may give both)."""
    if pa.types.is_string_view(f.type) or pa.types.is_large_string(f.type):
        return f.with_type(pa.string())
    return f


@dataclass
class Found:
    """The subject's rows in a table's current snapshot."""

    searched: bool = False
    rows: int = 0
    fingerprints: list[str] = field(default_factory=list)
    batches: set[int] | None = None
    """``_batch`` values of the rows, when the table has that column."""
    values: pa.Table | None = None
    """The columns asked for (``wanted``), one row per matching row."""


def find(dt: DeltaTable, matchers: Sequence[Matcher], wanted: Sequence[str] = ()) -> Found:
    """The rows of ``dt``'s current snapshot that any of ``matchers`` matches."""
    if not matchers:
        return Found(searched=True)
    schema = pa.schema(dt.schema().to_arrow())
    wanted = [c for c in dict.fromkeys(wanted) if c in schema.names]
    batch = ["_batch"] if "_batch" in schema.names else []
    columns = [f"{fingerprint_sql(schema)} AS {FINGERPRINT}", *map(ident, [*batch, *wanted])]
    where = " OR ".join(f"({m.sql()})" for m in matchers)
    data = query(dt, f"SELECT {', '.join(columns)} FROM subject_table WHERE {where}")
    found = Found(True, data.num_rows, data.column(FINGERPRINT).to_pylist())
    if batch:
        found.batches = set(data.column("_batch").to_pylist())
    found.values = data.select(wanted)
    return found


def predicate(dt: DeltaTable, found: Found) -> str:
    """The DELETE predicate for ``found``: fingerprints, no values."""
    schema = pa.schema(dt.schema().to_arrow())
    prints = ", ".join(f"'{fp}'" for fp in sorted(set(found.fingerprints)))
    where = f"{fingerprint_sql(schema)} IN ({prints})"
    if found.batches and None not in found.batches:
        where = f"_batch IN ({', '.join(str(b) for b in sorted(found.batches))}) AND {where}"
    return where


def fingerprint_sql(schema: pa.Schema) -> str:
    """DataFusion SQL for the SHA-256 of a row's scalar columns (each length-prefixed, so
    no two rows share a text; NULL spelled apart from every value)."""
    parts = []
    for f in schema:
        if _scalar(f.type):
            text = f"CAST({ident(f.name)} AS VARCHAR)"
            parts.append(f"coalesce(concat(character_length({text}), ':', {text}), '-')")
    return f"encode(sha256(concat_ws(',', {', '.join(parts)})), 'hex')"


def query(dt: DeltaTable, sql: str) -> pa.Table:
    """Run DataFusion ``sql`` over ``dt`` registered as ``subject_table``."""
    try:
        reader = QueryBuilder().register("subject_table", dt).execute(sql)
        return pa.table(reader.read_all())
    except (DeltaError, pa.ArrowException, OSError) as exc:
        # the message may quote the query, whose literals are the subject's values
        first = re.sub(r"'[^']*'", "'…'", str(exc).splitlines()[0] if str(exc) else "")
        raise LakeError(
            f"could not search the table for the subject: {type(exc).__name__}: {first}",
            where=dt.table_uri,
            hint="check that the table is readable (`weir history`); nothing was changed",
        ) from None


def _scalar(typ: pa.DataType) -> bool:
    nested = pa.types.is_nested(typ) or pa.types.is_dictionary(typ) or pa.types.is_null(typ)
    binary = pa.types.is_binary(typ) or pa.types.is_large_binary(typ)
    return not (nested or binary or pa.types.is_fixed_size_binary(typ))


def _literal(value: Any, typ: pa.DataType) -> str:
    """A DataFusion literal of ``value`` typed as ``typ``."""
    if value is None:
        return "NULL"
    if pa.types.is_boolean(typ):
        return "true" if value else "false"
    if pa.types.is_integer(typ):
        return str(int(value))
    if pa.types.is_floating(typ):
        return f"CAST('{float(value)!r}' AS DOUBLE)"
    if pa.types.is_decimal(typ):
        assert isinstance(value, Decimal)
        return f"CAST('{value}' AS DECIMAL({typ.precision}, {typ.scale}))"
    if pa.types.is_date(typ):
        assert isinstance(value, date)
        return f"CAST('{value.isoformat()}' AS DATE)"
    if pa.types.is_timestamp(typ):
        assert isinstance(value, datetime)
        zone = f'Some("{typ.tz}")' if typ.tz else "None"
        return f"arrow_cast('{value.isoformat()}', 'Timestamp({_UNITS[typ.unit]}, {zone})')"
    return literal(str(value))
