"""Every check kind, each severity, on real DuckDB: failing-row counts against hand counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from conftest import orders_pipeline, table_rows
from weir.run.pipeline import PipelineRun
from weir.sources import memory
from weir.spec import load_project

CONTRACT: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "events",
    "version": "1.0.0",
    "schema": [
        {
            "name": "events",
            "properties": [
                {
                    "name": "event_id",
                    "physicalName": "id",
                    "physicalType": "int64",
                    "primaryKey": True,
                },
                {
                    "name": "kind",
                    "physicalType": "string",
                    "quality": [
                        {
                            "rule": "accepted_values",
                            "validValues": ["click", "view"],
                            "severity": "warn",
                        },
                        {"rule": "not_null", "severity": "info"},
                    ],
                },
                {
                    "name": "code",
                    "physicalType": "string",
                    "quality": [
                        {"rule": "regex", "pattern": "[A-Z]{2}-[0-9]+", "severity": "warn"},
                        {"rule": "unique", "severity": "warn"},
                    ],
                },
                {
                    "name": "score",
                    "physicalType": "int32",
                    "quality": [
                        {"rule": "range", "mustBeBetween": [0, 100], "severity": "error"},
                    ],
                },
                {"name": "user", "physicalType": "string"},
                {
                    "name": "at",
                    "physicalType": "timestamp",
                    "quality": [
                        {"rule": "freshness", "maxAgeHours": 1, "severity": "warn"},
                    ],
                },
            ],
            "quality": [
                {
                    "rule": "unique",
                    "columns": ["user", "kind"],
                    "severity": "warn",
                    "name": "one_kind_per_user",
                },
                {
                    "rule": "row_condition",
                    "condition": "score >= 10 OR kind = 'view'",
                    "severity": "warn",
                    "name": "clicks_score",
                },
                {"rule": "row_count", "mustBeBetween": [1, 5], "severity": "warn"},
            ],
        }
    ],
}


def _batch() -> pa.Table:
    rows = [
        # id, kind,   code,    score, user, at
        (1, "click", "AB-1", 50, "u1", dt.datetime(2020, 1, 1)),
        (2, "view", "AB-2", 5, "u1", dt.datetime(2020, 1, 1)),
        (3, "buy", "ab-3", 20, "u2", dt.datetime(2020, 1, 1)),  # kind not accepted, bad code
        (4, "click", "AB-4", 5, "u3", dt.datetime(2020, 1, 1)),  # clicks_score
        (5, None, "AB-4", 70, "u2", dt.datetime(2020, 1, 1)),  # kind null (info), code dup
        (6, "click", "AB-6", 101, "u1", dt.datetime(2020, 1, 1)),  # score out of range: error
        (7, "click", "AB-7", 30, "u1", dt.datetime(2020, 1, 1)),  # user/kind dup with 1
    ]
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "id": pa.array(cols[0], pa.int64()),
            "kind": cols[1],
            "code": cols[2],
            "score": pa.array(cols[3], pa.int32()),
            "user": cols[4],
            "at": cols[5],
        }
    )


def test_every_check_kind(project_dir: Callable[..., Path]) -> None:
    pipe = orders_pipeline(
        name="events",
        contract="events",
        transform={},
        extract={"source": "memory", "dataset": "events"},
    )
    root = project_dir(contracts={"events": CONTRACT}, pipelines={"events": pipe})
    memory.register("events", _batch().to_batches())
    project = load_project(root)
    record = PipelineRun(project, project.pipeline("events")).execute()
    assert record.status == "partial", record.error_message
    outcome = {c.name: (c.passed, c.failing_rows) for c in record.checks}
    assert outcome == {
        "event_id.required": (True, 0),
        "kind.accepted_values": (False, 1),
        "kind.not_null": (False, 1),
        "code.regex": (False, 1),
        "code.unique": (False, 2),
        "score.range": (False, 1),
        "at.freshness": (False, 0),
        "one_kind_per_user": (False, 3),  # u1 click ×3 (ids 1, 6, 7)
        "clicks_score": (False, 1),
        "events.row_count": (False, 0),  # 7 rows > 5
        "parse": (True, 0),  # every value could be parsed
    }
    assert record.quality_checks_failed == 8  # the info rule records, never fails
    assert record.rows_quarantined == 1 and record.rows_loaded == 6
    flags = {r["event_id"]: sorted(r["dq_flags"]) for r in table_rows(root / "lake/silver/events")}
    assert flags == {
        1: ["one_kind_per_user"],
        2: [],
        3: ["code.regex", "kind.accepted_values"],
        4: ["clicks_score", "code.unique"],
        5: ["code.unique"],
        7: ["one_kind_per_user"],
    }
    [quarantined] = table_rows(root / "lake/quarantine/events")
    assert quarantined["event_id"] == 6 and quarantined["_reasons"] == ["score.range"]
    assert quarantined["dq_flags"] == ["one_kind_per_user"]
    freshness = next(c for c in record.checks if c.name == "at.freshness")
    assert float(freshness.observed or 0) > 24 * 365  # hours since 2020
    samples = next(c for c in record.checks if c.name == "code.unique").samples
    assert [s["event_id"] for s in samples] == ["4", "5"] and samples[0]["code"] == "AB-4"
