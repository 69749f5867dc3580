"""``format: debezium`` on the files source: Debezium's JSON envelope, with or without the
``schema``/``payload`` wrapper, its encodings of times, dates and decimals, bad envelopes as
parse problems naming file and line, and the configurations that cannot work."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from weir.errors import ConfigError
from weir.observe.record import RunRecord
from weir.run.pipeline import PipelineRun
from weir.spec import load_project
from weirtest.debezium import (
    customers_pipeline,
    customers_project,
    delete,
    event,
    insert,
    silver,
    truncate,
    update,
    wrapped,
    write_events,
)
from weirtest.projects import table_rows


def _run(root: Path) -> RunRecord:
    project = load_project(root)
    return PipelineRun(project, project.pipeline("customers")).execute()


def _values(root: Path) -> list[dict[str, Any]]:
    columns = ["id", "name", "balance", "updated_at", "born"]
    rows = table_rows(root / "lake" / "silver" / "customers", sort=["id"])
    return [{c: r[c] for c in columns} for r in rows]


EXPECTED = [
    {
        "id": 1,
        "name": "ann",
        "balance": Decimal("4.82"),
        "updated_at": dt.datetime(2024, 1, 1, 0, 0, 0, 123456),
        "born": dt.date(2024, 1, 1),
    },
    {
        "id": 2,
        "name": "bob",
        "balance": Decimal("2.55"),
        "updated_at": dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
        "born": dt.date(1969, 12, 31),
    },
]


def test_the_schema_wrapper_and_the_bare_envelope_give_the_same_silver(tmp_path: Path) -> None:
    """With the wrapper the schema names the encodings: MicroTimestamp, Date (days) and
    Decimal (base64 of the unscaled value, scale 2); bare, the values are ISO strings and
    decimal text, as with time.precision.mode connect / decimal.handling.mode string."""
    with_schema = customers_project(tmp_path / "a")
    write_events(
        with_schema,
        "1.jsonl",
        [
            wrapped(insert(10, 1, "ann", "AeI=", updated_at=1704067200123456, born=19723)),
            wrapped(insert(11, 2, "bob", "AP8=", updated_at=-1, born=-1)),
        ],
    )
    bare = customers_project(tmp_path / "b")
    write_events(
        bare,
        "1.jsonl",
        [
            insert(10, 1, "ann", "4.82", updated_at="2024-01-01T00:00:00.123456", born=19723),
            insert(11, 2, "bob", "2.55", updated_at=-1, born="1969-12-31"),
        ],
    )
    for root in (with_schema, bare):
        record = _run(root)
        assert record.status == "success", record.error_message
        assert _values(root) == EXPECTED
        assert [
            r["_committed_at"] for r in table_rows(root / "lake/silver/customers", sort=["id"])
        ] == [
            dt.datetime(2024, 1, 1, 0, 0, 10, tzinfo=dt.UTC),
            dt.datetime(2024, 1, 1, 0, 0, 11, tzinfo=dt.UTC),
        ]


def test_time_unit_reads_integer_timestamps_without_a_schema(tmp_path: Path) -> None:
    pipe = customers_pipeline(debezium={"time_unit": "millis"})
    root = customers_project(tmp_path / "p", **{"extract": pipe["extract"]})
    write_events(root, "1.jsonl", [insert(10, 1, "ann", updated_at=1704067200123)])
    assert _run(root).status == "success"
    assert _values(root)[0]["updated_at"] == dt.datetime(2024, 1, 1, 0, 0, 0, 123000)


def test_a_json_array_of_envelopes_and_tombstones(tmp_path: Path) -> None:
    """A file may hold one JSON array of envelopes; a ``null`` line (a Kafka tombstone after
    a delete) carries no change and is skipped."""
    root = customers_project(tmp_path / "p")
    (root / "data").mkdir()
    (root / "data" / "1.jsonl").write_text(
        json.dumps([insert(10, 1, "ann"), insert(11, 2, "bob")], indent=2)
    )
    write_events(root, "2.jsonl", [delete(12, 2), "null", update(13, 1, "anna")])
    record = _run(root)
    assert record.status == "success", record.error_message
    assert record.rows_extracted == 4
    assert silver(root) == {1: ("anna", "1.00", False), 2: ("bob", "1.00", True)}


BAD = [
    "{not json",
    json.dumps({"before": None, "after": {"id": 1}, "source": {"lsn": 1}}),
    json.dumps({**insert(10, 1, "ann"), "op": "x"}),
    json.dumps({**insert(11, 1, "ann"), "source": {"ts_ms": 5}}),
    json.dumps({**insert(12, 1, "ann"), "source": {"lsn": "12/AB"}}),
    json.dumps({**delete(13, 1), "before": None}),
    json.dumps({**insert(14, 1, "ann"), "after": "oops"}),
    json.dumps({"schema": {}, "payload": [1]}),
    "[1]",
]
REASONS = [
    "parse: line 2 is not valid JSON",
    "parse: line 3 is not a Debezium change event ('op' is not one of c, u, d, r, t)",
    "parse: line 4 is not a Debezium change event ('op' is not one of c, u, d, r, t)",
    "parse: line 5 has no integer source.lsn (its log position)",
    "parse: line 6 has no integer source.lsn (its log position)",
    "parse: line 7 is a Debezium delete event without 'before' (the deleted row's key)",
    "parse: line 8 is a Debezium insert event without 'after' (the row)",
    "parse: line 9 is not a Debezium change event (its payload is not an object)",
    "parse: line 10 is not a JSON object",
]


def test_bad_envelopes_are_quarantined_naming_their_line(tmp_path: Path) -> None:
    root = customers_project(tmp_path / "p")
    lines = [json.dumps(insert(1, 1, "ann")), *BAD, json.dumps(update(2, 1, "anna"))]
    write_events(root, "1.jsonl", lines)
    record = _run(root)
    assert record.status == "partial", record.error_message
    held = table_rows(root / "lake" / "quarantine" / "customers", sort=["_row"])
    # the problem first, then the rules its NULL row breaks
    assert [r["_reasons"][0] for r in held] == REASONS
    assert {r["_source_file"] for r in held} == {"data/1.jsonl"}
    assert silver(root) == {1: ("anna", "1.00", False)}


def test_a_bad_envelope_fails_the_run_naming_file_and_line(tmp_path: Path) -> None:
    root = customers_project(tmp_path / "p", on_parse_error="fail")
    write_events(root, "1.jsonl", [json.dumps(insert(1, 1, "ann")), BAD[3]])
    record = _run(root)
    assert record.status == "failed"
    assert "data/1.jsonl" in (record.error_message or "")
    assert "line 2 has no integer source.lsn" in (record.error_message or "")
    assert not (root / "lake" / "bronze" / "customers").exists()


def test_a_value_debezium_cannot_mean_is_a_problem_of_its_column(tmp_path: Path) -> None:
    root = customers_project(tmp_path / "p")
    write_events(root, "1.jsonl", [insert(1, 1, "ann", "AeI=")])  # base64 without a schema
    record = _run(root)
    [held] = table_rows(root / "lake" / "quarantine" / "customers")
    assert held["_reasons"] == ["parse: column balance, value 'AeI=' (line 1)"]
    assert record.rows_quarantined == 1


def test_truncate_and_snapshot_reads_are_normalised(tmp_path: Path) -> None:
    root = customers_project(tmp_path / "p")
    write_events(root, "1.jsonl", [event("snapshot", 5, 1, name="ann"), truncate(6)])
    assert _run(root).status == "success"
    bronze = table_rows(root / "lake" / "bronze" / "customers", sort=["_row"])
    assert [(r["_op"], r["_lsn"], r["_seq"], r["_tx_id"]) for r in bronze] == [
        ("snapshot", 5, 0, 705),
        ("truncate", 6, 0, 706),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"load": {"strategy": "append"}}, "which load with strategy 'merge'"),
        ({"load": {"strategy": "truncate-reload"}}, "which load with strategy 'merge'"),
        ({"transform": {"dedupe_order_by": "updated_at"}}, "dedupe_order_by does not apply"),
    ],
)
def test_what_change_events_cannot_load_with_is_a_config_error(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    root = customers_project(tmp_path / "p", **change)
    with pytest.raises(ConfigError) as caught:
        load_project(root)
    assert message in caught.value.message
    assert "pipelines/customers.yml:" in str(caught.value.where)


def test_deletes_need_change_events(tmp_path: Path) -> None:
    pipe = customers_pipeline()
    pipe["extract"] = {**pipe["extract"], "format": "ndjson"}
    root = customers_project(tmp_path / "q", **{"extract": pipe["extract"]})
    with pytest.raises(ConfigError) as caught:
        load_project(root)
    assert "deletes applies to change events" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "kind", "schema_name", "params", "expected"),
    [
        (
            "/w==",
            pa.decimal128(10, 2),
            "org.apache.kafka.connect.data.Decimal",
            {"scale": "2"},
            "-0.01",
        ),
        (
            "AA==",
            pa.decimal128(10, 0),
            "org.apache.kafka.connect.data.Decimal",
            {"scale": "0"},
            "0",
        ),
        ("3600000000", pa.time64("us"), "io.debezium.time.MicroTime", {}, "01:00:00"),
        ("3600000", pa.time64("us"), "io.debezium.time.Time", {}, "01:00:00"),
        (
            "1500",
            pa.timestamp("us", tz="UTC"),
            "io.debezium.time.Timestamp",
            {},
            "1970-01-01T00:00:01.500000+00:00",
        ),
        (
            "1000000001",
            pa.timestamp("us"),
            "io.debezium.time.NanoTimestamp",
            {},
            "1970-01-01T00:00:01",
        ),
        ("86400000000", pa.time64("us"), "io.debezium.time.MicroTime", {}, "86400000000"),
        ("1.5", pa.timestamp("us"), None, {}, "1.5"),
    ],
)
def test_debezium_encodings(
    value: str, kind: pa.DataType, schema_name: str | None, params: dict[str, str], expected: str
) -> None:
    """Each encoding becomes the text weir's rule for the type reads; what fits none (a
    time past midnight, a fraction for a timestamp) stays as written, a problem of its
    column."""
    from weir.sources.files.debezium_envelope import decoded
    from weir.sources.parse import JsonNumber

    raw = JsonNumber(value) if value[0].isdigit() else value
    types = {"c": (schema_name, params)}
    assert decoded(raw, pa.field("c", kind), types, "micros") == expected
