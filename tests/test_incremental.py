"""The shared incremental maths (weir.sources.incremental): windows, overlap, cursor kinds.

Fast unit tests on real Arrow arrays; the REST tests cover the same module end to end.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weir.errors import ConfigError, SchemaDriftError, SourceError
from weir.sources.incremental import (
    Watermark,
    check_cursor,
    committed_value,
    describe,
    format_time,
    iso,
    lookback_micros,
    max_value,
    micros,
    parse_time,
)

NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = lookback_micros(3600)


def test_lookback_window_starts_at_the_watermark_minus_lookback() -> None:
    mark = Watermark.start("time", {"watermark": "2024-05-01T12:00:00Z"}, lookback=HOUR)
    assert mark.committed == micros(NOON)
    assert mark.since == micros(NOON - timedelta(hours=1))
    assert mark.latest == mark.committed  # nothing read yet: the watermark stays


def test_without_lookback_the_bound_is_the_watermark_itself_inclusive() -> None:
    mark = Watermark.start("time", {"watermark": "2024-05-01T12:00:00Z"})
    assert mark.since == micros(NOON)
    # a row at exactly the watermark is inside the overlap window: it may repeat
    assert mark.overlap("updated_at") == ("updated_at", "2024-05-01T12:00:00Z")


def test_first_read_uses_initial_or_reads_everything() -> None:
    start = micros(parse_time("2024-01-01"))
    with_initial = Watermark.start("time", None, lookback=HOUR, initial=start)
    assert with_initial.since == start  # no lookback before the first commit
    assert with_initial.committed is None and with_initial.latest is None
    everything = Watermark.start("time", {}, lookback=HOUR)
    assert everything.since is None
    assert everything.overlap("updated_at") == ("updated_at", None)  # every row may repeat
    assert everything.overlap(None) == (None, None)


def test_lookback_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="lookback"):
        Watermark.start("integer", {"watermark": 5}, lookback=-1)


def test_the_watermark_moves_to_the_latest_value_and_never_back() -> None:
    mark = Watermark.start("time", {"watermark": "2024-05-01T12:00:00Z"}, lookback=HOUR)
    older = pa.array([NOON - timedelta(minutes=30)], pa.timestamp("us", tz="UTC"))
    mark.advance(older, "updated_at", "page 1")  # a late row inside the lookback window
    assert mark.position() == {"watermark": "2024-05-01T12:00:00Z"}
    newer = pa.array([NOON + timedelta(seconds=1, microseconds=5), None], older.type)
    mark.advance(newer, "updated_at", "page 2")
    assert mark.position() == {"watermark": "2024-05-01T12:00:01.000005Z"}
    assert mark.text() == "2024-05-01T12:00:01.000005Z"
    # the window of this read is still measured from where it started
    assert mark.overlap("updated_at") == ("updated_at", "2024-05-01T11:00:00Z")


def test_an_empty_extraction_keeps_the_committed_position() -> None:
    mark = Watermark.start("time", {"watermark": "2024-05-01T12:00:00Z"})
    mark.advance(pa.array([], pa.timestamp("us", tz="UTC")), "updated_at", "page 1")
    mark.advance(pa.array([None, None], pa.timestamp("us")), "updated_at", "page 2")
    assert mark.position() == {"watermark": "2024-05-01T12:00:00Z"}
    first = Watermark.start("integer", None)
    first.advance(pa.array([], pa.int64()), "seq", "batch 1")
    assert first.position() == {} and first.text() is None


def test_timestamps_with_zones_compare_as_instants() -> None:
    mark = Watermark.start("time", {"watermark": "2024-05-01T12:00:00+02:00"})
    assert mark.committed == micros(NOON - timedelta(hours=2))
    berlin = timezone(timedelta(hours=2))
    zoned = pa.array(
        [datetime(2024, 5, 1, 13, 0, tzinfo=berlin)],  # 11:00 UTC: older than 12:00 UTC
        pa.timestamp("us", tz="Europe/Berlin"),
    )
    mark.advance(zoned, "t", "w")
    assert mark.position() == {"watermark": "2024-05-01T11:00:00Z"}
    tokyo = pa.array([datetime(2024, 5, 1, 22, 0, tzinfo=UTC)], pa.timestamp("ms", tz="Asia/Tokyo"))
    mark.advance(tokyo, "t", "w")
    assert mark.position() == {"watermark": "2024-05-01T22:00:00Z"}


def test_naive_times_dates_and_iso_strings_are_taken_as_utc() -> None:
    naive = pa.array([datetime(2024, 5, 1, 12, 0)], pa.timestamp("s"))
    assert max_value("time", naive, "t", "w") == micros(NOON)
    days = pa.array([date(2024, 5, 1), date(2024, 4, 30)], pa.date32())
    assert max_value("time", days, "t", "w") == micros(NOON - timedelta(hours=12))
    zoned = pa.array(["2024-05-01T14:00:00+02:00", "2024-05-01T09:00:00Z"])
    assert max_value("time", zoned, "t", "w") == micros(NOON)
    plain = pa.array(["2024-05-01T12:00:00", None])
    assert max_value("time", plain, "t", "w") == micros(NOON)


def test_strings_that_are_not_times_are_drift_naming_the_field() -> None:
    with pytest.raises(SchemaDriftError, match="'updated_at' holds values that are not ISO"):
        max_value("time", pa.array(["yesterday"]), "updated_at", "page 3")
    with pytest.raises(SchemaDriftError, match="not timestamps") as caught:
        max_value("time", pa.array([1.5]), "updated_at", "page 3")
    assert caught.value.where == "page 3"


def test_integer_cursors_commit_json_integers() -> None:
    mark = Watermark.start("integer", {"watermark": 100}, lookback=10)
    assert (mark.committed, mark.since, mark.latest) == (100, 90, 100)
    mark.advance(pa.array([95, 120, None, 101], pa.int32()), "seq", "w")
    assert mark.position() == {"watermark": 120}
    assert mark.overlap("seq") == ("seq", "90")
    zero = Watermark.start("integer", {"watermark": 0})
    assert zero.committed == 0 and zero.since == 0  # zero is a watermark, not "none yet"
    with pytest.raises(SchemaDriftError, match="'seq' holds string values, not integers"):
        mark.advance(pa.array(["7"]), "seq", "w")


@pytest.mark.parametrize(
    ("kind", "value", "wanted"),
    [
        ("integer", "100", "an integer"),
        ("integer", True, "an integer"),
        ("integer", 1.5, "an integer"),
        ("time", "last tuesday", "an ISO 8601 timestamp"),
        ("time", 17, "an ISO 8601 timestamp"),
    ],
)
def test_a_committed_position_of_the_wrong_kind_is_a_clear_error(
    kind: str, value: object, wanted: str
) -> None:
    with pytest.raises(SourceError, match=f"is not {wanted}") as caught:
        committed_value(kind, {"watermark": value})  # type: ignore[arg-type]
    assert "restore the table" in (caught.value.hint or "")


def test_describe_is_the_committed_value() -> None:
    assert describe({"watermark": "2024-05-01T12:00:00Z"}) == "2024-05-01T12:00:00Z"
    assert describe({"watermark": 0}) == "0"
    assert describe(None) is None and describe({}) is None


def test_check_cursor_accepts_the_kinds_asked_for() -> None:
    schema = pa.schema(
        [
            ("ts", pa.timestamp("us", tz="UTC")),
            ("day", pa.date32()),
            ("text", pa.string()),
            ("seq", pa.int64()),
            ("price", pa.float64()),
        ]
    )
    assert [check_cursor(schema, n) for n in ("ts", "day", "text", "seq")] == [
        "time",
        "time",
        "time",
        "integer",
    ]
    assert check_cursor(schema, "absent") is None  # read beside the contract's columns
    with pytest.raises(ConfigError, match="'price' is double") as caught:
        check_cursor(schema, "price")
    assert "a timestamp, date or ISO 8601 string or an integer field" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match=r"incremental\.field 'seq' is int64"):
        check_cursor(schema, "seq", kinds=("time",))


def test_format_time_writes_the_query_forms() -> None:
    value = micros(NOON) + 250_000
    assert format_time(value, "iso") == "2024-05-01T12:00:00.250000Z"
    assert format_time(value, "unix") == "1714564800"
    assert format_time(value, "unix_ms") == "1714564800250"
    assert format_time(value, "%Y-%m-%d") == "2024-05-01"


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(UTC),
    )
)
def test_iso_round_trips_every_microsecond(moment: datetime) -> None:
    value = micros(moment)
    assert micros(parse_time(iso(value))) == value
    mark = Watermark.start("time", {"watermark": iso(value)})
    assert mark.committed == value and mark.position() == {"watermark": iso(value)}


@given(st.lists(st.integers(-(2**62), 2**62) | st.none(), max_size=20), st.integers(0, 2**40))
def test_the_integer_watermark_is_the_running_maximum(
    values: list[int | None], committed: int
) -> None:
    mark = Watermark.start("integer", {"watermark": committed})
    mark.advance(pa.array(values, pa.int64()), "seq", "w")
    present = [v for v in values if v is not None]
    assert mark.position() == {"watermark": max([committed, *present])}
