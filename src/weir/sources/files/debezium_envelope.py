"""One Debezium change event (its JSON envelope) → the row image and the change columns.

An envelope is ``{"op", "before", "after", "source": {"lsn", "txId", "ts_ms"}, "ts_ms",
"transaction"}``, alone or as the ``payload`` of ``{"schema", "payload"}`` (Kafka Connect's
JSON converter with schemas). ``op`` is normalised to weir's vocabulary
(:data:`weir.layout.OPS`): ``c`` insert, ``u`` update, ``d`` delete, ``r`` snapshot, ``t``
truncate. The image is ``after`` (``before`` for a delete, which often holds only the key;
none for a truncate). The log position is ``source.lsn``; ``_seq`` is the event's
``transaction.total_order`` when the envelope has one, else 0; the commit time is
``source.ts_us`` (or ``source.ts_ms``, else the envelope's ``ts_ms``).

Debezium encodes some types its own way; before weir's one rule per type converts a value
(``conform()``), :func:`decoded` turns these into the text that rule reads:

- timestamps and times of day as integers since the epoch / midnight, in the unit the
  schema names (``io.debezium.time.Timestamp`` ms, ``MicroTimestamp`` µs, ``NanoTimestamp``
  ns; ``Time``, ``MicroTime``, ``NanoTime``), else in ``debezium.time_unit``;
- dates as integer days since 1970-01-01 (``io.debezium.time.Date``);
- decimals as base64 big-endian unscaled integers (``decimal.handling.mode: precise``) when
  the schema names ``org.apache.kafka.connect.data.Decimal`` with its ``scale``.

ISO strings (``ZonedTimestamp``, ``timestamp`` as text) and plain JSON numbers pass as they
are. What is out of scope: variable-scale decimals (``VariableScaleDecimal``), geometry,
intervals (``MicroDuration``) and ``__debezium_unavailable_value`` (an unchanged TOASTed
column, taken as the text it is).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from weir.layout import Op

TimeUnit = Literal["millis", "micros", "nanos"]

OPS: dict[str, Op] = {
    "c": "insert",
    "u": "update",
    "d": "delete",
    "r": "snapshot",
    "t": "truncate",
}
_PER_SECOND = {"millis": 1_000, "micros": 1_000_000, "nanos": 1_000_000_000}
_UNITS: dict[str, TimeUnit] = {
    "io.debezium.time.Timestamp": "millis",
    "io.debezium.time.MicroTimestamp": "micros",
    "io.debezium.time.NanoTimestamp": "nanos",
    "io.debezium.time.Time": "millis",
    "io.debezium.time.MicroTime": "micros",
    "io.debezium.time.NanoTime": "nanos",
    "org.apache.kafka.connect.data.Timestamp": "millis",
    "org.apache.kafka.connect.data.Time": "millis",
}
_DECIMAL = "org.apache.kafka.connect.data.Decimal"
_INTEGER = re.compile(r"-?[0-9]+")
_INT64 = 1 << 63
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_DAY = dt.date(1970, 1, 1)
_UTC = dt.UTC

Types = Mapping[str, tuple[str | None, Mapping[str, Any]]]
"""Column → (Connect schema ``name``, ``parameters``), from an envelope's ``schema``."""


@dataclass(frozen=True)
class Event:
    op: Op
    lsn: int
    seq: int
    tx_id: int | None
    committed_at: dt.datetime | None
    image: dict[str, Any] | None
    types: Types
    """What the envelope's ``schema`` says of the image's columns (empty without one)."""


def event(record: dict[str, Any]) -> tuple[Event | None, str | None]:
    """The change event a decoded line holds, or what is wrong with it (the rest of a
    sentence: ``has no integer source.lsn``). Says nothing of the row's values."""
    schema: Any = None
    if "payload" in record and "op" not in record:
        schema, record = record.get("schema"), record["payload"]
        if not isinstance(record, dict):
            return None, "is not a Debezium change event (its payload is not an object)"
    code = record.get("op")
    if not isinstance(code, str) or code not in OPS:
        return None, "is not a Debezium change event ('op' is not one of c, u, d, r, t)"
    op = OPS[code]
    source = record.get("source")
    if not isinstance(source, dict):
        return None, "is not a Debezium change event (it has no 'source' object)"
    lsn = _integer(source.get("lsn"))
    if lsn is None:
        return None, "has no integer source.lsn (its log position)"
    image, why = _image(record, op)
    if why is not None:
        return None, why
    transaction = record.get("transaction")
    order = transaction.get("total_order") if isinstance(transaction, dict) else None
    return Event(
        op=op,
        lsn=lsn,
        seq=_integer(order) or 0,
        tx_id=_integer(source.get("txId")),
        committed_at=_commit_time(source, record),
        image=image,
        types=_types(schema, "before" if op == "delete" else "after"),
    ), None


def _image(record: dict[str, Any], op: Op) -> tuple[dict[str, Any] | None, str | None]:
    if op == "truncate":
        return None, None
    side = "before" if op == "delete" else "after"
    image = record.get(side)
    if not isinstance(image, dict):
        what = "the deleted row's key" if op == "delete" else "the row"
        return None, f"is a Debezium {op} event without '{side}' ({what})"
    return image, None


def _integer(value: Any) -> int | None:
    """A JSON integer (kept as its text by the decoder) that fits an int64, else None."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    if not _INTEGER.fullmatch(text):
        return None
    number = int(text)
    return number if -_INT64 <= number < _INT64 else None


def _commit_time(source: dict[str, Any], record: dict[str, Any]) -> dt.datetime | None:
    for value, unit in (
        (source.get("ts_us"), "micros"),
        (source.get("ts_ms"), "millis"),
        (record.get("ts_ms"), "millis"),
    ):
        count = _integer(value)
        if count is not None:
            return _instant(count, unit)
    return None


def _instant(count: int, unit: str) -> dt.datetime | None:
    per = _PER_SECOND[unit]
    seconds, rest = divmod(count, per)
    try:
        return (
            _EPOCH + dt.timedelta(seconds=seconds, microseconds=rest * 1_000_000 // per)
        ).replace(tzinfo=_UTC)
    except OverflowError:
        return None


def _types(schema: Any, side: str) -> Types:
    """The Connect ``name`` and ``parameters`` of each column of the ``side`` image."""
    if not isinstance(schema, dict):
        return {}
    for part in schema.get("fields") or ():
        if isinstance(part, dict) and part.get("field") == side:
            found: dict[str, tuple[str | None, Mapping[str, Any]]] = {}
            for column in part.get("fields") or ():
                if isinstance(column, dict) and isinstance(column.get("field"), str):
                    name = column.get("name")
                    params = column.get("parameters")
                    found[column["field"]] = (
                        name if isinstance(name, str) else None,
                        params if isinstance(params, dict) else {},
                    )
            return found
    return {}


def decoded(value: Any, fld: pa.Field, types: Types, unit: TimeUnit) -> Any:
    """``value`` of column ``fld`` with Debezium's encodings turned into the text weir's rules
    read (module docstring); any other value as it is (so that a value that fits neither
    is a parse problem of its column, shown as written)."""
    if value is None:
        return None
    kind = fld.type
    name, params = types.get(fld.name, (None, {}))
    if pa.types.is_decimal(kind) and name == _DECIMAL and isinstance(value, str):
        return _decimal(value, params) or value
    count = _integer(value)
    if count is None:
        return value
    if pa.types.is_timestamp(kind):
        moment = _instant(count, _UNITS.get(name or "", unit))
        if moment is None:
            return value
        return (
            moment.isoformat() if kind.tz is not None else moment.replace(tzinfo=None).isoformat()
        )
    if pa.types.is_date(kind):
        try:
            return (_EPOCH_DAY + dt.timedelta(days=count)).isoformat()
        except OverflowError:
            return value
    if pa.types.is_time(kind):
        per = _PER_SECOND[_UNITS.get(name or "", unit)]
        micros = count * 1_000_000 // per
        if not 0 <= micros < 86_400_000_000:
            return value
        return (_EPOCH + dt.timedelta(microseconds=micros)).time().isoformat()
    return value


def _decimal(text: str, params: Mapping[str, Any]) -> str | None:
    """A ``precise`` decimal: base64 of the unscaled value (big-endian two's complement)."""
    scale = _integer(params.get("scale"))
    if scale is None:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw:
        return None
    unscaled = int.from_bytes(raw, "big", signed=True)
    sign, digits = ("-" if unscaled < 0 else ""), str(abs(unscaled)).rjust(scale + 1, "0")
    if scale == 0:
        return sign + digits
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"
