"""Watermark maths of incremental REST reads: change times as µs since the epoch (UTC).

The committed position is ``{"watermark": "<ISO 8601>"}``; a read sends ``watermark −
lookback`` in the configured format and moves the watermark to the latest change time it saw.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from weir.errors import ConfigError, SchemaDriftError, SourceError
from weir.sources.base import Position

TS_UTC = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_T = pa.types


def check_incremental(schema: pa.Schema, name: str) -> str | None:
    """The field to read besides the contract's (None when the contract has it); checks its type."""
    if name not in schema.names:
        return name
    dtype = schema.field(name).type
    if not (_T.is_timestamp(dtype) or _T.is_date(dtype) or _T.is_string(dtype)):
        raise ConfigError(
            f"incremental.field {name!r} is {dtype} in the contract",
            hint="use a timestamp, date or ISO 8601 string field as the change time",
        )
    return None


def max_micros(column: pa.Array, name: str, where: str) -> int | None:
    """The latest time in ``column`` as µs since the epoch (naive times are taken as UTC)."""
    if _T.is_string(column.type) or _T.is_large_string(column.type):
        for target in (TS_UTC, pa.timestamp("us")):
            try:
                column = pc.cast(column, target)
                break
            except pa.ArrowInvalid:
                continue
        else:
            raise SchemaDriftError(
                f"incremental field {name!r} holds values that are not ISO 8601 timestamps",
                where=where,
                hint="point incremental.field at the record's change time",
            )
    if _T.is_date(column.type):
        column = pc.cast(column, pa.timestamp("us"))
    unit = pa.timestamp("us", tz=column.type.tz)
    value = pc.max(pc.cast(column, unit, safe=False).cast(pa.int64())).as_py()
    return None if value is None else int(value)


def committed(position: Position | None) -> int | None:
    """The committed watermark in µs, or None before the first incremental commit."""
    value = position.get("watermark") if position else None
    if not value:
        return None
    try:
        return micros(parse_time(str(value)))
    except ValueError:
        raise SourceError(
            f"the committed watermark {value!r} is not an ISO 8601 timestamp",
            hint="restore the table to a version written by the rest source, or backfill",
        ) from None


def parse_time(value: str) -> datetime:
    """An ISO 8601 time; naive ones are taken as UTC. ValueError names the value."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def iso(value: int) -> str:
    """``2024-05-01T12:00:00Z`` (with ``.ffffff`` when there are fractions of a second)."""
    moment = _datetime(value)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def format_time(value: int, fmt: str) -> str:
    """``value`` (µs) as the query parameter is written: iso, unix, unix_ms or strftime."""
    if fmt == "iso":
        return iso(value)
    if fmt == "unix":
        return str(value // 1_000_000)
    if fmt == "unix_ms":
        return str(value // 1_000)
    return _datetime(value).strftime(fmt)


def _datetime(value: int) -> datetime:
    return _EPOCH + value * _MICROSECOND
