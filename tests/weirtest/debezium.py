"""Debezium change events for the tests: envelopes as Debezium's PostgreSQL connector writes
them (with or without the ``schema``/``payload`` wrapper), a customers project that reads
them with ``format: debezium``, and silver read back by key."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from weirtest.projects import table_rows, write_project

CUSTOMERS: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "customers",
    "version": "1.0.0",
    "schema": [
        {
            "name": "customers",
            "properties": [
                {"name": "id", "physicalType": "int64", "primaryKey": True},
                {"name": "name", "physicalType": "string", "required": True},
                {
                    "name": "balance",
                    "physicalType": "decimal(10,2)",
                    "quality": [
                        {
                            "rule": "range",
                            "mustBeGreaterThanOrEqualTo": 0,
                            "severity": "error",
                            "name": "balance.not_negative",
                        }
                    ],
                },
                {"name": "updated_at", "physicalType": "timestamp"},
                {"name": "born", "physicalType": "date"},
            ],
        }
    ],
}

_OPS = {"insert": "c", "update": "u", "delete": "d", "snapshot": "r", "truncate": "t"}
_BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def event(op: str, lsn: int, key: int | None = None, **values: Any) -> dict[str, Any]:
    """One envelope: ``op`` in weir's words (insert, update, delete, snapshot, truncate);
    the commit time follows the position (a second per LSN unit)."""
    code = _OPS[op]
    body: dict[str, Any] = {
        "op": code,
        "before": None,
        "after": None,
        "source": {
            "version": "2.5.0.Final",
            "connector": "postgresql",
            "name": "shop",
            "db": "shop",
            "schema": "public",
            "table": "customers",
            "lsn": lsn,
            "txId": 700 + lsn,
            "ts_ms": _BASE_MS + lsn * 1000,
        },
        "ts_ms": _BASE_MS + lsn * 1000 + 5,
    }
    if code in "cur":
        body["after"] = {"id": key, **values}
        if code == "u":
            body["before"] = {"id": key}
    elif code == "d":
        body["before"] = {"id": key, **values}
    return body


def insert(lsn: int, key: int, name: str, balance: str = "1.00", **more: Any) -> dict[str, Any]:
    return event("insert", lsn, key, name=name, balance=balance, **more)


def update(lsn: int, key: int, name: str, balance: str = "1.00", **more: Any) -> dict[str, Any]:
    return event("update", lsn, key, name=name, balance=balance, **more)


def delete(lsn: int, key: int) -> dict[str, Any]:
    return event("delete", lsn, key)


def truncate(lsn: int) -> dict[str, Any]:
    return event("truncate", lsn)


def wrapped(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope as Kafka Connect's JSON converter with schemas writes it."""
    row = {
        "type": "struct",
        "optional": True,
        "name": "shop.public.customers.Value",
        "fields": [
            {"type": "int64", "optional": False, "field": "id"},
            {"type": "string", "optional": False, "field": "name"},
            {
                "type": "bytes",
                "optional": True,
                "name": "org.apache.kafka.connect.data.Decimal",
                "parameters": {"scale": "2", "connect.decimal.precision": "10"},
                "field": "balance",
            },
            {
                "type": "int64",
                "optional": True,
                "name": "io.debezium.time.MicroTimestamp",
                "field": "updated_at",
            },
            {"type": "int32", "optional": True, "name": "io.debezium.time.Date", "field": "born"},
        ],
    }
    schema = {
        "type": "struct",
        "name": "shop.public.customers.Envelope",
        "fields": [
            {**row, "field": "before"},
            {**row, "field": "after"},
            {"type": "struct", "field": "source", "fields": []},
            {"type": "string", "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
        ],
    }
    return {"schema": schema, "payload": envelope}


def write_events(
    root: Path, name: str, events: list[dict[str, Any] | str], *, folder: str = "data"
) -> Path:
    """``<folder>/<name>``: one envelope (or a raw line) per line."""
    path = root / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [e if isinstance(e, str) else json.dumps(e) for e in events]
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def customers_pipeline(action: str = "soft", **extract: Any) -> dict[str, Any]:
    return {
        "name": "customers",
        "owner": "data-eng",
        "contract": "customers",
        "extract": {
            "source": "files",
            "path": "data/*.jsonl",
            "format": "debezium",
            "deletes": {"detect": "log", "action": action},
            **extract,
        },
        "error_handling": {"max_retries": 0, "retry_delay_seconds": 0},
    }


def customers_project(
    root: Path, action: str = "soft", contract: dict[str, Any] | None = None, **pipeline: Any
) -> Path:
    spec = {**customers_pipeline(action), **pipeline}
    contracts = {"customers": contract or CUSTOMERS}
    return write_project(root, contracts=contracts, pipelines={"customers": spec})


def silver(
    root: Path, columns: tuple[str, ...] = ("name", "balance")
) -> dict[int, tuple[Any, ...]]:
    """Silver by key: the ``columns`` of each row, then ``is_deleted`` when the table has it."""
    rows = table_rows(root / "lake" / "silver" / "customers")
    out: dict[int, tuple[Any, ...]] = {}
    for row in rows:
        values = tuple(str(row[c]) if row[c] is not None else None for c in columns)
        if "is_deleted" in row:
            values += (row["is_deleted"],)
        assert row["id"] not in out, f"key {row['id']} twice in silver"
        out[row["id"]] = values
    return out


def committed(lsn: int) -> dt.datetime:
    """The commit time :func:`event` gives the change at ``lsn`` (UTC, naive: how a version's
    ``valid_from`` and ``valid_to`` hold it)."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=_BASE_MS + lsn * 1000)


def versions(root: Path, *columns: str) -> list[tuple[Any, ...]]:
    """Silver's SCD2 versions of change events as ``(id, name, valid_from, valid_to,
    is_current, *columns)``, in key and log order."""
    rows = table_rows(root / "lake" / "silver" / "customers")
    shown = ("id", "name", "valid_from", "valid_to", "is_current", *columns)
    # a version of no length (two changes in one transaction) ends where the next begins
    ordered = sorted(
        rows,
        key=lambda r: (r["id"], r["valid_from"], r["valid_to"] is None, r["valid_to"] or 0),
    )
    return [tuple(r[c] for c in shown) for r in ordered]
