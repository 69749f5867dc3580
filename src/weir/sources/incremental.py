"""Incremental reads: a cursor column, a committed watermark and a lookback window.

Any source that reads "what changed since the last commit" (REST now, SQL next) keeps its
state here. A *cursor* is the column that orders changes: a time (a timestamp, a date or an
ISO 8601 string; held as µs since the epoch, UTC, naive times taken as UTC) or an integer
(a sequence, a version). The committed position is ``{"watermark": value}``: an ISO 8601
string for a time, a JSON integer for an integer.

A read asks for ``cursor >= watermark − lookback``. The bound is inclusive, so rows that share
the watermark's own value but arrived after the last read are not lost; the lookback re-reads
a window before it for rows that arrive late. Every row at or after the bound may have been
delivered by an earlier run: :meth:`Watermark.overlap` reports the bound, and the engine skips
the rows bronze already holds (``rows_already_ingested``). The watermark moves to the largest
cursor value read, never back: a read that returns nothing, or only older rows, keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pyarrow as pa

from weir.errors import ConfigError, SchemaDriftError, SourceError

Committed = Mapping[str, Any]
"""A committed position (``weir.sources.base.Position``)."""
CursorKind = Literal["time", "integer"]

TS_UTC = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_T = pa.types
_KEY = "watermark"


def kind_of(dtype: pa.DataType) -> CursorKind | None:
    """The cursor kind a column of ``dtype`` can be, or None (it cannot order changes)."""
    if _T.is_timestamp(dtype) or _T.is_date(dtype):
        return "time"
    if _T.is_string(dtype) or _T.is_large_string(dtype):
        return "time"
    if _T.is_integer(dtype):
        return "integer"
    return None


def check_cursor(
    schema: pa.Schema,
    name: str,
    *,
    kinds: tuple[CursorKind, ...] = ("time", "integer"),
    option: str = "incremental.field",
) -> CursorKind | None:
    """The kind of cursor column ``name`` in ``schema`` (None: the contract lacks it); a
    ConfigError when its type is not one of ``kinds``. ``option`` names the setting."""
    if name not in schema.names:
        return None
    dtype = schema.field(name).type
    kind = kind_of(dtype)
    if kind is None or kind not in kinds:
        wanted = " or ".join(_KIND_WORDS[k] for k in kinds)
        raise ConfigError(
            f"{option} {name!r} is {dtype} in the contract",
            hint=f"use {wanted} field as the change time",
        )
    return kind


_KIND_WORDS = {"time": "a timestamp, date or ISO 8601 string", "integer": "an integer"}


@dataclass
class Watermark:
    """The incremental state of one read: where it starts, how far it got.

    ``since`` is the inclusive lower bound to ask the source for (None: read everything);
    ``latest`` the largest cursor value seen, starting at the committed one. Times are µs
    since the epoch (UTC)."""

    kind: CursorKind
    committed: int | None
    since: int | None
    latest: int | None

    @classmethod
    def start(
        cls,
        kind: CursorKind,
        position: Committed | None,
        *,
        lookback: int = 0,
        initial: int | None = None,
    ) -> Watermark:
        """The state before a read after ``position``: ``since`` is the committed watermark
        minus ``lookback`` (in the cursor's unit: µs, see :func:`lookback_micros`), or
        ``initial`` before the first commit (None: the first read reads everything)."""
        if lookback < 0:
            raise ValueError(f"lookback must not be negative, got {lookback}")
        committed = committed_value(kind, position)
        since = initial if committed is None else committed - lookback
        return cls(kind=kind, committed=committed, since=since, latest=committed)

    def advance(self, column: pa.Array | pa.ChunkedArray, name: str, where: str) -> None:
        """Move the watermark to the largest value of ``column`` when that is later."""
        newest = max_value(self.kind, column, name, where)
        if newest is not None and (self.latest is None or newest > self.latest):
            self.latest = newest

    def position(self) -> dict[str, Any]:
        """What to commit: ``{"watermark": …}``, or ``{}`` when no value was ever seen."""
        return {} if self.latest is None else {_KEY: self.render(self.latest)}

    def text(self) -> str | None:
        """The watermark reached, for humans (run records, summaries)."""
        return None if self.latest is None else str(self.render(self.latest))

    def overlap(self, column: str | None) -> tuple[str | None, str | None]:
        """``Extraction.overlap()`` of a read with this state: every row at or after
        ``since`` may repeat one already delivered (all rows, when ``since`` is None).
        ``column`` is the cursor column as bronze holds it; None when bronze has none."""
        if column is None:
            return None, None
        return column, None if self.since is None else str(self.render(self.since))

    def render(self, value: int) -> str | int:
        return iso(value) if self.kind == "time" else value


def committed_value(kind: CursorKind, position: Committed | None) -> int | None:
    """The committed watermark (µs for a time), or None before the first incremental commit."""
    value = position.get(_KEY) if position else None
    if value is None or value == "":
        return None
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _bad_position(value, "an integer")
    try:
        return micros(parse_time(str(value)))
    except ValueError:
        raise _bad_position(value, "an ISO 8601 timestamp") from None


def _bad_position(value: object, kind: str) -> SourceError:
    return SourceError(
        f"the committed watermark {value!r} is not {kind}",
        hint="restore the table to a version this source wrote, or backfill",
    )


def describe(position: Committed | None) -> str | None:
    """Human form of a committed incremental position (``watermark_before``)."""
    value = position.get(_KEY) if position else None
    return None if value is None or value == "" else str(value)


def max_value(
    kind: CursorKind, column: pa.Array | pa.ChunkedArray, name: str, where: str
) -> int | None:
    """The largest value of ``column`` (µs since the epoch for a time); None when it holds
    only NULLs or nothing. SchemaDriftError when the values are not of the cursor's kind."""
    import pyarrow.compute as pc  # imported when used (~40 ms)

    if kind == "time":
        return max_micros(column, name, where)
    if not _T.is_integer(column.type):
        raise SchemaDriftError(
            f"incremental field {name!r} holds {column.type} values, not integers",
            where=where,
            hint="point incremental.field at an integer column",
        )
    value = pc.max(column).as_py()
    return None if value is None else int(value)


def max_micros(column: pa.Array | pa.ChunkedArray, name: str, where: str) -> int | None:
    """The latest time in ``column`` as µs since the epoch (naive times are taken as UTC).
    Strings must be ISO 8601, all with a zone or all without."""
    import pyarrow.compute as pc  # imported when used (~40 ms)

    if _T.is_string(column.type) or _T.is_large_string(column.type):
        column = _times(column, name, where)
    if _T.is_date(column.type):
        column = pc.cast(column, pa.timestamp("us"))
    if not _T.is_timestamp(column.type):
        raise SchemaDriftError(
            f"incremental field {name!r} holds {column.type} values, not timestamps",
            where=where,
            hint="point incremental.field at the record's change time",
        )
    unit = pa.timestamp("us", tz=column.type.tz)
    value = pc.max(pc.cast(column, unit, safe=False).cast(pa.int64())).as_py()
    return None if value is None else int(value)


def _times(column: pa.Array | pa.ChunkedArray, name: str, where: str) -> Any:
    import pyarrow.compute as pc  # imported when used (~40 ms)

    for target in (TS_UTC, pa.timestamp("us")):
        try:
            return pc.cast(column, target)
        except pa.ArrowInvalid:
            continue
    raise SchemaDriftError(
        f"incremental field {name!r} holds values that are not ISO 8601 timestamps",
        where=where,
        hint="point incremental.field at the record's change time",
    )


def lookback_micros(seconds: float) -> int:
    """A lookback of ``seconds`` in the unit of a time cursor."""
    return round(seconds * 1_000_000)


def parse_time(value: str) -> datetime:
    """An ISO 8601 time; naive ones are taken as UTC. ValueError names the value."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def micros(moment: datetime) -> int:
    """``moment`` as µs since the epoch (naive: taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def iso(value: int) -> str:
    """``2024-05-01T12:00:00Z`` (with ``.ffffff`` when there are fractions of a second)."""
    moment = _datetime(value)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def format_time(value: int, fmt: str) -> str:
    """``value`` (µs) written as ``iso``, ``unix`` (seconds), ``unix_ms`` or a strftime
    pattern (in UTC)."""
    if fmt == "iso":
        return iso(value)
    if fmt == "unix":
        return str(value // 1_000_000)
    if fmt == "unix_ms":
        return str(value // 1_000)
    return _datetime(value).strftime(fmt)


def _datetime(value: int) -> datetime:
    return _EPOCH + value * _MICROSECOND
