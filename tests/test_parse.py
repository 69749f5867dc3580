"""weir's strict value rules (weir.sources.parse): one rule per type, whatever the source."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weir.sources.parse import JsonNumber, convert, from_objects

BAD = object()
UTC = dt.UTC

RULES: list[tuple[pa.DataType, str, Any]] = [
    (pa.int64(), "42", 42),
    (pa.int64(), "-7", -7),
    (pa.int64(), "+7", 7),
    (pa.int64(), " 8 ", 8),
    (pa.int64(), "007", 7),
    (pa.int64(), "0x10", BAD),
    (pa.int64(), "0X10", BAD),
    (pa.int64(), "1e3", BAD),
    (pa.int64(), "1.0", BAD),
    (pa.int64(), "+-1", BAD),
    (pa.int64(), "9223372036854775807", 9223372036854775807),
    (pa.int64(), "9223372036854775808", BAD),
    (pa.int8(), "127", 127),
    (pa.int8(), "128", BAD),
    (pa.float64(), "1.5", 1.5),
    (pa.float64(), "-1e3", -1000.0),
    (pa.float64(), ".5", 0.5),
    (pa.float64(), " 2.5", 2.5),
    (pa.float64(), "1e999999", BAD),
    (pa.float64(), "inf", BAD),
    (pa.float64(), "-Infinity", BAD),
    (pa.float64(), "nan", BAD),
    (pa.float64(), "0x1p3", BAD),
    (pa.float64(), "1,5", BAD),
    (pa.float32(), "1e39", BAD),
    (pa.float32(), "1.5", 1.5),
    (pa.decimal128(10, 2), "10.25", Decimal("10.25")),
    (pa.decimal128(10, 2), "1e2", Decimal("100.00")),
    (pa.decimal128(10, 2), "10.255", BAD),
    (pa.decimal128(10, 2), "123456789012", BAD),
    (pa.bool_(), "true", True),
    (pa.bool_(), "FALSE", False),
    (pa.bool_(), "1", True),
    (pa.bool_(), "0", False),
    (pa.bool_(), " True ", True),
    (pa.bool_(), "yes", BAD),
    (pa.bool_(), "t", BAD),
    (pa.date32(), "2024-02-29", dt.date(2024, 2, 29)),
    (pa.date32(), "2023-02-29", BAD),
    (pa.date32(), "2023-1-1", BAD),
    (pa.date32(), "20230101", BAD),
    (pa.date32(), "2023-01-01T00:00", BAD),
    (pa.timestamp("us"), "2013-01-01T06:30:00", dt.datetime(2013, 1, 1, 6, 30)),
    (pa.timestamp("us"), "2013-01-01 06:30:00.5", dt.datetime(2013, 1, 1, 6, 30, 0, 500000)),
    (pa.timestamp("us"), "2013-01-01", dt.datetime(2013, 1, 1)),
    (pa.timestamp("us"), "2013-01-01T06:30:00Z", BAD),
    (pa.timestamp("us"), "2013-01-01T25:00:00", BAD),
    (
        pa.timestamp("us", tz="UTC"),
        "2013-01-01T06:30:00+01:00",
        dt.datetime(2013, 1, 1, 5, 30, tzinfo=UTC),
    ),
    (pa.timestamp("us", tz="UTC"), "2013-01-01T06:30:00", BAD),
    # nanosecond fractions (Java, Spark, pyarrow write them): the zeros past µs lose nothing
    (pa.timestamp("us"), "2013-01-01 06:30:00.000000000", dt.datetime(2013, 1, 1, 6, 30)),
    (pa.timestamp("us"), "2013-01-01T06:30:00.1234560", dt.datetime(2013, 1, 1, 6, 30, 0, 123456)),
    (
        pa.timestamp("us", tz="UTC"),
        "2013-01-01T06:30:00.500000000Z",
        dt.datetime(2013, 1, 1, 6, 30, 0, 500000, tzinfo=UTC),
    ),
    (pa.timestamp("us"), "2013-01-01 06:30:00.123456789", BAD),  # would lose the 789
    (pa.string(), " padded ", " padded "),
]


@pytest.mark.parametrize(("target", "text", "expected"), RULES)
def test_one_rule_per_type(target: pa.DataType, text: str, expected: Any) -> None:
    for source in (pa.string(), pa.binary()):
        got = convert(pa.array([None, text], source), target)
        assert got.values.type == target
        if expected is BAD:
            assert got.failed == (1,)
            assert got.values.to_pylist() == [None, None]
            assert got.raw(1) == text
        else:
            assert got.failed == ()
            assert got.values.to_pylist() == [None, expected]


def test_invalid_utf8_is_a_bad_value_not_a_bad_column() -> None:
    got = convert(pa.array([b"ok", b"\xfe\xff", None], pa.binary()), pa.string())
    assert got.values.to_pylist() == ["ok", None, None]
    assert (got.failed, got.raw(1)) == ((1,), "\\xfe\\xff")
    invalid = pa.array([b"a", b"\xc3\x28"], pa.binary()).view(pa.string())  # unchecked strings
    got = convert(invalid, pa.string())
    assert (got.values.to_pylist(), got.failed) == (["a", None], (1,))


def test_native_values_are_cast_safely_and_floats_must_be_finite() -> None:
    got = convert(pa.array([1.0, 2.5, None]), pa.int64())
    assert (got.values.to_pylist(), got.failed, got.raw(1)) == ([1, None, None], (1,), "2.5")
    got = convert(pa.array([1.5, float("inf"), float("nan")]), pa.float64())
    assert (got.values.to_pylist()[0], got.failed) == (1.5, (1, 2))
    got = convert(pa.array([300, 1]), pa.int8())
    assert (got.values.to_pylist(), got.failed) == ([None, 1], (0,))
    got = convert(pa.array([{"a": 1}]), pa.int64())  # no cast at all: every value fails
    assert (got.values.to_pylist(), got.failed) == ([None], (0,))
    assert convert(pa.array([7, None]), pa.string()).values.to_pylist() == ["7", None]


def test_json_values_are_text_for_scalar_columns() -> None:
    values = [JsonNumber("42"), "43", True, None, {"a": JsonNumber("1")}, [1], "\udcfe"]
    text, bad = from_objects(values, pa.int64())
    assert text.to_pylist() == ["42", "43", "true", None, None, None, None]
    assert bad == [(4, '{"a": 1}'), (5, "[1]"), (6, "\udcfe")]
    target = pa.list_(pa.float64())
    nested, bad = from_objects([[JsonNumber("1"), JsonNumber("2.5")], "x"], target)
    assert (nested.to_pylist(), bad) == ([["1", "2.5"], None], [(1, "x")])  # text leaves
    assert convert(nested, target).values.to_pylist() == [[1.0, 2.5], None]


TYPES = [
    pa.int8(),
    pa.int64(),
    pa.float32(),
    pa.float64(),
    pa.decimal128(6, 2),
    pa.bool_(),
    pa.date32(),
    pa.timestamp("us"),
    pa.timestamp("us", tz="UTC"),
]
PIECES = st.sampled_from(
    ["0", "1", "7", "-", "+", ".", "e", "E", "x", "0x", " ", "2013-01-0", "T06:30", "Z",
     "+01:00", "true", "FALSE", "inf", "nan", "99999", "2.5", "1e3", "1e999", "\xe9"]
)  # fmt: skip


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    target=st.sampled_from(TYPES),
    texts=st.lists(st.none() | st.lists(PIECES, max_size=4).map("".join), min_size=1, max_size=40),
)
def test_a_column_converts_like_its_values_one_by_one(
    target: pa.DataType, texts: list[str | None]
) -> None:
    """The vectorised path, and the search it falls back to, agree with each value alone."""
    whole = convert(pa.array(texts, pa.string()), target)
    alone = [convert(pa.array([text], pa.string()), target) for text in texts]
    assert whole.values.to_pylist() == [one.values.to_pylist()[0] for one in alone]
    assert list(whole.failed) == [n for n, one in enumerate(alone) if one.failed]
    assert not any(texts[n] is None for n in whole.failed)


CSV_TYPES = [
    pa.float64(),
    pa.float32(),
    pa.decimal128(6, 2),
    pa.bool_(),
    pa.date32(),
    pa.timestamp("us"),
]
NULLS = {"", "NA", "NULL", "null"}


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    target=st.sampled_from(CSV_TYPES),
    texts=st.lists(st.lists(PIECES, max_size=4).map("".join), min_size=1, max_size=30),
)
def test_the_csv_fast_path_reads_by_the_same_rule(
    tmp_path_factory: pytest.TempPathFactory, target: pa.DataType, texts: list[str]
) -> None:
    """Columns pyarrow's CSV reader parses typed (the fast path) hold exactly what the rule
    gives for their text: the values it takes, NULL with a reason for the ones it refuses."""
    from weir.sources.base import SourceContext
    from weir.sources.files import FilesConfig, FilesSource

    root = tmp_path_factory.mktemp("fast")
    quoted = ['"' + text.replace('"', '""') + '"' for text in texts]
    (root / "a.csv").write_text("v\n" + "\n".join(quoted) + "\n", encoding="utf-8")
    schema = pa.schema([pa.field("v", target)])
    context = SourceContext("p", str(root), "r", on_parse_error="quarantine")
    source = FilesSource(FilesConfig(path="a.csv"), context)
    rows = [row for b in source.extract(None, schema).batches() for row in b.to_pylist()]
    rule = convert(pa.array([None if t in NULLS else t for t in texts], pa.string()), target)
    assert [row["v"] for row in rows] == rule.values.to_pylist()
    assert [n for n, row in enumerate(rows) if row["_parse_errors"]] == list(rule.failed)
