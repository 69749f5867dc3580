"""Nested and richer contract types (struct, list, map, uuid, time, binary) and ``flatten``,
through real pipeline runs: a nested REST payload from the local HTTP server, NDJSON, JSON
and Parquet files, into real bronze, silver and quarantine Delta tables."""

from __future__ import annotations

import base64
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from weir.cli import main
from weirtest.projects import table_rows, write_project
from weirtest.restserver import RestServer

TRACKING = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"


def _order(n: int, **changes: Any) -> dict[str, Any]:
    """One order as a typical REST API sends it: objects within objects, arrays of objects."""
    record: dict[str, Any] = {
        "id": n,
        "status": "paid",
        "customer": {
            "name": f"Customer {n}",
            "email": f"c{n}@example.com",
            "address": {"city": "Lyon", "zip": "69001", "geo": {"lat": 45.76, "lon": 4.83}},
            "loyalty": {"tier": "gold"},
        },
        "shipping": {"carrier": "dhl", "days": 2},
        "items": [
            {"sku": f"SKU-{n}", "qty": 2, "price": "9.99"},
            {"sku": "SKU-X", "qty": 1, "price": "0.50"},
        ],
        "tags": ["web", "promo"],
        "attributes": {"channel": "app", "coupon": "SPRING"},
        "tracking": TRACKING.upper(),
        "window": "09:30",
        "placed_at": "2024-03-01T10:00:00Z",
    }
    record.update(changes)
    return record


ORDERS: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "orders",
    "version": "1.0.0",
    "team": [{"username": "shop", "role": "owner"}],
    "schema": [
        {
            "name": "orders",
            "properties": [
                {
                    "name": "order_id",
                    "physicalName": "id",
                    "physicalType": "int64",
                    "primaryKey": True,
                },
                {"name": "status", "physicalType": "string"},
                {
                    "name": "customer_name",
                    "physicalName": "customer__name",
                    "physicalType": "string",
                },
                {
                    "name": "customer_email",
                    "physicalName": "customer__email",
                    "physicalType": "string",
                    "classification": "pii",
                },
                {
                    "name": "city",
                    "physicalName": "customer__address__city",
                    "physicalType": "string",
                },
                {
                    "name": "geo",
                    "physicalName": "customer__address__geo",
                    "physicalType": "struct<lat: float64, lon: float64>",
                },
                {
                    "name": "shipping",
                    "physicalType": "struct<carrier: string, days: int32>",
                    "quality": [
                        {
                            "rule": "row_condition",
                            "condition": "shipping['days'] <= 1",
                            "severity": "warn",
                            "name": "next_day",
                        },
                        {"rule": "unique", "severity": "info"},
                    ],
                },
                {
                    "name": "items",
                    "physicalType": "list<struct<sku: string, qty: int32, price: decimal(10,2)>>",
                    "required": True,
                    "quality": [
                        {"rule": "row_condition", "condition": "len(items) > 0", "severity": "warn"}
                    ],
                },
                {"name": "tags", "physicalType": "array<string>"},
                {"name": "attributes", "physicalType": "map<string, string>"},
                {"name": "tracking", "physicalType": "uuid"},
                {"name": "window", "physicalType": "time"},
                {"name": "placed_at", "physicalType": "timestamptz", "required": True},
            ],
        }
    ],
}


def _rest_pipeline(url: str, **extract: Any) -> dict[str, Any]:
    return {
        "name": "orders",
        "owner": "shop",
        "contract": "orders",
        "on_parse_error": "quarantine",
        "extract": {
            "source": "rest",
            "url": url,
            "records_path": "data",
            "pagination": {"style": "page", "size_param": "per_page"},
            "page_size": 2,
            "flatten": True,
            **extract,
        },
        "load": {"strategy": "merge"},
    }


def _run(root: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    main(["run", "--project", str(root), "--json"])
    runs: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["runs"]
    return runs[0]


def _versions(root: Path) -> dict[str, int]:
    return {p.parent.name: DeltaTable(str(p)).version() for p in (root / "lake").glob("*/orders")}


def test_a_nested_rest_payload_loads_flattened_into_bronze_and_silver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_qty = _order(3)
    bad_qty["items"][1]["qty"] = "two"
    records = [_order(1), _order(2), bad_qty, _order(4, tracking="not-a-uuid"), _order(5)]
    with RestServer(records, page_size=2) as server:
        root = write_project(
            tmp_path / "p",
            contracts={"orders": ORDERS},
            pipelines={"orders": _rest_pipeline(server.url)},
        )
        first = _run(root, capsys)
        assert first["status"] == "partial", first["error_message"]  # some rows quarantined
        assert (first["rows_extracted"], first["rows_loaded"], first["rows_quarantined"]) == (
            5,
            3,
            2,
        )
        # a nested key outside the contract is named, flattened, in a warning
        assert any("'customer__loyalty__tier'" in w for w in first["warnings"])

        bronze = DeltaTable(str(root / "lake/bronze/orders")).schema().to_arrow()
        names = [f.name for f in bronze]
        assert {"customer__name", "customer__address__city", "customer__address__geo"} <= set(names)
        assert "customer" not in names  # flattened away, not kept whole
        # raw PII never lands: the flattened e-mail is a digest in bronze already
        emails = table_rows(root / "lake/bronze/orders", ["customer__email"])
        assert all(e["customer__email"] and "@" not in e["customer__email"] for e in emails)

        silver = {r["order_id"]: r for r in table_rows(root / "lake/silver/orders")}
        assert sorted(silver) == [1, 2, 5]
        one = silver[1]
        assert one["customer_name"] == "Customer 1" and one["city"] == "Lyon"
        assert one["geo"] == {"lat": 45.76, "lon": 4.83}
        assert one["shipping"] == {"carrier": "dhl", "days": 2}
        assert one["items"] == [
            {"sku": "SKU-1", "qty": 2, "price": Decimal("9.99")},
            {"sku": "SKU-X", "qty": 1, "price": Decimal("0.50")},
        ]
        assert one["tags"] == ["web", "promo"]
        assert dict(one["attributes"]) == {"channel": "app", "coupon": "SPRING"}
        assert one["tracking"] == TRACKING and one["window"] == "09:30:00"
        # checks on nested columns: a condition on a struct field, unique on a struct
        assert one["dq_valid"] is False and one["dq_flags"] == ["next_day"]
        failing = {c["name"]: c["failing_rows"] for c in first["checks"]}
        assert failing["next_day"] == 5 and failing["shipping.unique"] == 5

        reasons = {
            r["order_id"]: r["_reasons"] for r in table_rows(root / "lake/quarantine/orders")
        }
        assert reasons[3] == ["parse: column items[1].qty, value 'two' (page 2, record 1)"]
        assert reasons[4] == ["parse: column tracking, value 'not-a-uuid' (page 2, record 2)"]

        versions = _versions(root)
        again = _run(root, capsys)  # the same payload: nothing new, no new table versions
        assert again["status"] == "success", again["error_message"]
        assert again["rows_extracted"] == 0 and _versions(root) == versions


def test_without_flatten_a_struct_column_reads_the_object_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contract = json.loads(json.dumps(ORDERS))
    contract["schema"][0]["properties"] = [
        p for p in contract["schema"][0]["properties"] if "__" not in p.get("physicalName", "")
    ] + [
        {
            "name": "customer",
            "physicalType": "struct<name: string, address: struct<city: string, zip: int32>>",
        }
    ]
    records = [
        _order(1),
        _order(2, customer={"name": "B", "address": {"city": "Nice", "zip": "x"}}),
    ]
    with RestServer(records, page_size=5) as server:
        root = write_project(
            tmp_path / "p",
            contracts={"orders": contract},
            pipelines={"orders": _rest_pipeline(server.url, flatten=False)},
        )
        result = _run(root, capsys)
    assert result["status"] == "partial", result["error_message"]
    silver = table_rows(root / "lake/silver/orders")
    assert silver[0]["customer"] == {
        "name": "Customer 1",
        "address": {"city": "Lyon", "zip": 69001},
    }
    (bad,) = table_rows(root / "lake/quarantine/orders")
    assert bad["_reasons"] == ["parse: column customer.address.zip, value 'x' (page 1, record 2)"]


# --- files ----------------------------------------------------------------------------------------

EVENTS: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "events",
    "version": "1.0.0",
    "team": [{"username": "web", "role": "owner"}],
    "schema": [
        {
            "name": "events",
            "properties": [
                {
                    "name": "event_id",
                    "physicalName": "id",
                    "physicalType": "uuid",
                    "primaryKey": True,
                },
                {"name": "at", "physicalType": "time"},
                {"name": "payload", "physicalType": "binary"},
                {
                    "name": "device",
                    "physicalType": "struct<os: string, version: int32, tags: list<string>>",
                },
                {"name": "counts", "physicalType": "map<string, int64>"},
            ],
        }
    ],
}


def _files_pipeline(path: str, **extract: Any) -> dict[str, Any]:
    return {
        "name": "events",
        "owner": "web",
        "contract": "events",
        "on_parse_error": "quarantine",
        "extract": {"source": "files", "path": path, **extract},
        "load": {"strategy": "append"},
    }


def _event(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": str(uuid.UUID(int=1)),
        "at": "23:59:59.5",
        "payload": base64.b64encode(b"\x00\xffdata").decode(),
        "device": {"os": "ios", "version": 17, "tags": ["a"]},
        "counts": {"clicks": 3, "views": 10},
    }
    record.update(changes)
    return record


@pytest.mark.parametrize("fmt", ["ndjson", "json"])
def test_nested_json_files_load_and_bad_parts_are_quarantined(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    records = [
        _event(),
        _event(id=str(uuid.UUID(int=2)), device={"os": "android", "version": "x", "tags": []}),
        _event(id=str(uuid.UUID(int=3)), counts={"clicks": 1.5}),
        _event(id=str(uuid.UUID(int=4)), payload="%%%"),
        _event(id=str(uuid.UUID(int=5)), at="7pm"),
        _event(id=str(uuid.UUID(int=6)), device=["not", "an", "object"]),
    ]
    data = tmp_path / "p" / "data"
    data.mkdir(parents=True)
    if fmt == "ndjson":
        (data / "e.ndjson").write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        (data / "e.json").write_text(json.dumps(records, indent=1))
    root = write_project(
        tmp_path / "p", contracts={"events": EVENTS}, pipelines={"events": _files_pipeline("data")}
    )
    result = _run(root, capsys)
    assert result["status"] == "partial", result["error_message"]
    assert (result["rows_loaded"], result["rows_quarantined"]) == (1, 5)
    (row,) = table_rows(root / "lake/silver/events")
    assert row["event_id"] == "00000000-0000-0000-0000-000000000001"
    assert row["at"] == "23:59:59.500000" and row["payload"] == b"\x00\xffdata"
    assert row["device"] == {"os": "ios", "version": 17, "tags": ["a"]}
    assert dict(row["counts"]) == {"clicks": 3, "views": 10}
    reasons = sorted(
        r["_reasons"][0].split(" (line")[0] for r in table_rows(root / "lake/quarantine/events")
    )
    assert reasons == [
        "parse: column at, value '7pm'",
        "parse: column counts['clicks'], value '1.5'",
        'parse: column device, value \'["not", "an", "object"]\'',
        "parse: column device.version, value 'x'",
        "parse: column payload, value '%%%'",
    ]


def test_flatten_on_ndjson_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contract = {
        **EVENTS,
        "schema": [
            {
                "name": "events",
                "properties": [
                    {"name": "event_id", "physicalName": "id", "physicalType": "int64"},
                    {"name": "os", "physicalName": "device__os", "physicalType": "string"},
                    {"name": "version", "physicalName": "device__version", "physicalType": "int32"},
                    {
                        "name": "tags",
                        "physicalName": "device__tags",
                        "physicalType": "list<string>",
                    },
                ],
            }
        ],
    }
    lines = [
        {"id": 1, "device": {"os": "ios", "version": 17, "tags": ["a", "b"]}},
        {"id": 2, "device": {"os": "ios", "version": 18}, "device__os": "clash"},
        {"id": 3, "device": {"os": "linux", "kernel": {"major": 6}}},
    ]
    data = tmp_path / "p" / "data"
    data.mkdir(parents=True)
    (data / "e.ndjson").write_text("".join(json.dumps(r) + "\n" for r in lines))
    root = write_project(
        tmp_path / "p",
        contracts={"events": contract},
        pipelines={"events": _files_pipeline("data", flatten=True)},
    )
    result = _run(root, capsys)
    assert result["status"] == "partial", result["error_message"]
    silver = sorted(table_rows(root / "lake/silver/events"), key=lambda r: r["event_id"])
    assert [(r["event_id"], r["os"], r["version"], r["tags"]) for r in silver] == [
        (1, "ios", 17, ["a", "b"]),
        (3, "linux", None, None),
    ]
    # a nested key the contract does not name evolves the tables, as a top-level one does
    assert silver[1]["device__kernel__major"] == 6
    (clash,) = table_rows(root / "lake/quarantine/events")
    assert "'device__os' twice" in clash["_reasons"][0]


def test_parquet_nested_uuid_and_time_columns_and_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import datetime as dt

    data = tmp_path / "p" / "data"
    data.mkdir(parents=True)
    device = pa.struct(
        [("os", pa.string()), ("version", pa.int16()), ("tags", pa.list_(pa.string()))]
    )
    table = pa.table(
        {
            "id": pa.array([uuid.UUID(int=7).bytes], pa.uuid()),
            "at": pa.array([dt.time(8, 15)], pa.time64("us")),
            "payload": pa.array([b"\x01"], pa.binary()),
            "device": pa.array([{"os": "ios", "version": 3, "tags": ["z"]}], device),
            "counts": pa.array([[("a", 1)]], pa.map_(pa.string(), pa.int32())),
        }
    )
    pq.write_table(table, data / "a.parquet")
    root = write_project(
        tmp_path / "p",
        contracts={"events": EVENTS},
        pipelines={"events": _files_pipeline("data/*.parquet")},
    )
    result = _run(root, capsys)
    assert result["status"] == "success", result["error_message"]
    (row,) = table_rows(root / "lake/silver/events")
    assert row["event_id"] == str(uuid.UUID(int=7)) and row["at"] == "08:15:00"
    assert row["device"] == {"os": "ios", "version": 3, "tags": ["z"]}  # int16 widens into int32

    # a nested field whose type no longer widens is breaking drift, shown before any write
    versions = {
        p.parent.name: DeltaTable(str(p)).version() for p in (root / "lake").glob("*/events")
    }
    device = pa.struct([("os", pa.string()), ("version", pa.string())])
    pq.write_table(
        table.set_column(3, "device", pa.array([{"os": "ios", "version": "3"}], device)),
        data / "b.parquet",
    )
    failed = _run(root, capsys)
    assert failed["status"] == "failed"
    assert (
        "~ device: struct<os: string, version: int32, tags: list<string>> → "
        in failed["error_message"]
    )
    assert "struct<os: string, version: string>" in failed["error_message"]
    assert {
        p.parent.name: DeltaTable(str(p)).version() for p in (root / "lake").glob("*/events")
    } == versions


# --- configuration --------------------------------------------------------------------------------


def _validate(root: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = main(["validate", "--project", str(root)])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    return captured.err + captured.out


def _with_column(column: dict[str, Any]) -> dict[str, Any]:
    contract = json.loads(json.dumps(EVENTS))
    contract["schema"][0]["properties"].append(column)
    return contract


@pytest.mark.parametrize(
    ("type_", "message"),
    [
        (
            "struct<city: strng>",
            "struct field 'city': unknown type 'strng'; did you mean 'string'?",
        ),
        ("list<int64", "ends early; expected '>'"),
        ("map<list<string>, int64>", "a map's keys must be of a scalar type"),
        ("struct<a: int, a: int>", "struct field 'a' is declared twice"),
        ("struct", "struct needs its parts in <…>, e.g. struct<city: string, zip: string>"),
    ],
)
def test_a_bad_type_spec_is_a_config_error_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], type_: str, message: str
) -> None:
    root = write_project(
        tmp_path / "p",
        contracts={"events": _with_column({"name": "extra", "physicalType": type_})},
        pipelines={"events": _files_pipeline("data")},
    )
    out = _validate(root, capsys)
    assert "contracts/events.yml:" in out and "physicalType" in out
    assert message in out


def test_nested_columns_in_csv_pii_on_a_struct_and_value_rules_are_config_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(
        tmp_path / "a",
        contracts={"events": EVENTS},
        pipelines={"events": _files_pipeline("data/*.csv")},
    )
    out = _validate(root, capsys)
    assert "pipelines/events.yml:" in out
    assert "CSV holds scalar values only, but the contract's column 'device' is struct<" in out

    pii = _with_column(
        {"name": "owner", "physicalType": "struct<email: string>", "classification": "pii"}
    )
    root = write_project(
        tmp_path / "b", contracts={"events": pii}, pipelines={"events": _files_pipeline("data")}
    )
    out = _validate(root, capsys)
    assert "contracts/events.yml:" in out and "a nested column cannot be classified 'pii'" in out
    assert "flatten: true" in out

    ranged = _with_column(
        {
            "name": "scores",
            "physicalType": "list<int32>",
            "quality": [{"rule": "range", "mustBeBetween": [0, 10]}],
        }
    )
    root = write_project(
        tmp_path / "c", contracts={"events": ranged}, pipelines={"events": _files_pipeline("data")}
    )
    assert "rule 'range' needs a scalar column; 'scores' is list<int32>" in _validate(root, capsys)

    root = write_project(
        tmp_path / "d",
        contracts={"events": EVENTS},
        pipelines={"events": _files_pipeline("data", format="parquet", flatten=True)},
    )
    assert "flatten applies to JSON records (format ndjson or json), not parquet" in _validate(
        root, capsys
    )


def test_csv_reads_uuid_time_and_binary_by_the_same_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contract = {
        **EVENTS,
        "schema": [
            {
                "name": "events",
                "properties": [
                    {"name": "event_id", "physicalName": "id", "physicalType": "uuid"},
                    {"name": "at", "physicalType": "time"},
                    {"name": "payload", "physicalType": "binary"},
                ],
            }
        ],
    }
    data = tmp_path / "p" / "data"
    data.mkdir(parents=True)
    good = base64.b64encode(b"\x00\x01").decode()
    (data / "e.csv").write_text(
        f"id,at,payload\n{TRACKING.upper()},07:05:09,{good}\n"
        f"{TRACKING},7:05,{good}\nnot-a-uuid,07:05,{good}\n{TRACKING},07:05,***\n"
    )
    root = write_project(
        tmp_path / "p",
        contracts={"events": contract},
        pipelines={"events": _files_pipeline("data")},
    )
    result = _run(root, capsys)
    assert result["status"] == "partial", result["error_message"]
    (row,) = table_rows(root / "lake/silver/events")
    assert row == {**row, "event_id": TRACKING, "at": "07:05:09", "payload": b"\x00\x01"}
    reasons = sorted(r["_reasons"][0] for r in table_rows(root / "lake/quarantine/events"))
    assert reasons == [
        "parse: column at, value '7:05' (line 3)",
        "parse: column id, value 'not-a-uuid' (line 4)",
        "parse: column payload, value '***' (line 5)",
    ]
