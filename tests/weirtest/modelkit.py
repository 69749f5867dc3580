"""Small real projects with gold models, shared by the model tests.

One pipeline ``events`` (memory or files source) loads a full snapshot of the source per run
(``truncate-reload``), so a test states the whole source each step: inserts, updates and
deletes alike. Models read ``silver.events``.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable

from weir.observe.record import RunRecord
from weir.run import api
from weir.sources import memory
from weir.spec import load_project
from weirtest.projects import write_project

EVENTS_CONTRACT: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "events",
    "version": "1.0.0",
    "schema": [
        {
            "name": "events",
            "properties": [
                {"name": "event_id", "physicalType": "int64", "primaryKey": True},
                {"name": "day", "physicalType": "date", "required": True},
                {"name": "grp", "physicalType": "string", "required": True},
                {"name": "amount", "physicalType": "int64"},
                {"name": "updated_at", "physicalType": "timestamp"},
            ],
        }
    ],
}
EVENT_COLUMNS = ["event_id", "day", "grp", "amount", "updated_at"]

DAILY = """
/* weir
materialized: incremental
unique_key: [day, grp]
incremental: {column: day, lookback: 2 days}
*/
SELECT day, grp, count(*) AS n, sum(amount) AS total
FROM silver.events
GROUP BY day, grp
"""
"""An incremental per-day, per-group aggregate with a two-day lookback."""
Event = tuple[int, dt.date, str, int | None, dt.datetime]


def events_pipeline(source: str = "memory", **overrides: Any) -> dict[str, Any]:
    extract: dict[str, Any] = {"source": "memory", "dataset": "events"}
    if source == "files":
        extract = {"source": "files", "path": "data/*.csv", "format": "csv"}
    spec: dict[str, Any] = {
        "name": "events",
        "owner": "data-eng",
        "contract": "events",
        "extract": extract,
        "load": {"strategy": "truncate-reload"},
    }
    return {**spec, **overrides}


def write_models(root: Path, models: dict[str, str]) -> Path:
    """``models/<name>.sql`` (dedented) in the project at ``root``."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    for name, sql in models.items():
        (root / "models" / f"{name}.sql").write_text(textwrap.dedent(sql).strip() + "\n")
    return root


def events_project(
    root: Path,
    models: dict[str, str],
    *,
    source: str = "memory",
    pipelines: dict[str, dict[str, Any]] | None = None,
    contracts: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """A project with the ``events`` pipeline (plus any others) and ``models``."""
    write_project(
        root,
        contracts={"events": EVENTS_CONTRACT, **(contracts or {})},
        pipelines={"events": events_pipeline(source), **(pipelines or {})},
        project="name: test\nthreads: 2\n",
    )
    write_models(root, models)
    if source == "memory":
        memory.register("events")
    else:
        (root / "data").mkdir(exist_ok=True)
    return root


def events_table(rows: list[Event]) -> pa.Table:
    return pa.table(
        {
            "event_id": pa.array([r[0] for r in rows], pa.int64()),
            "day": pa.array([r[1] for r in rows], pa.date32()),
            "grp": pa.array([r[2] for r in rows], pa.string()),
            "amount": pa.array([r[3] for r in rows], pa.int64()),
            "updated_at": pa.array([r[4] for r in rows], pa.timestamp("us")),
        }
    )


def push(rows: list[Event], dataset: str = "events") -> None:
    """The source's whole current state, as the next memory batch."""
    memory.append(dataset, events_table(rows))


def events_csv(rows: list[Event]) -> str:
    lines = [",".join(EVENT_COLUMNS)]
    lines += [f"{r[0]},{r[1].isoformat()},{r[2]},{r[3]},{r[4].isoformat()}" for r in rows]
    return "\n".join(lines) + "\n"


def run(root: Path, *selectors: str, full_refresh: bool = False) -> dict[str, RunRecord]:
    """``weir run`` in process (quiet); the records by node name."""
    records = api.run(load_project(root), selectors, full_refresh=full_refresh)
    return {r.pipeline_name: r for r in records}


def run_ok(root: Path, *selectors: str, full_refresh: bool = False) -> dict[str, RunRecord]:
    records = run(root, *selectors, full_refresh=full_refresh)
    bad = {n: r.error_message for n, r in records.items() if r.status != "success"}
    assert not bad, bad
    return records


def gold(root: Path, model: str) -> Path:
    return root / "lake" / "gold" / model


def gold_rows(root: Path, model: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """The model's rows, sorted by every column shown (order-independent comparisons)."""
    data = DeltaTable(str(gold(root, model))).to_pyarrow_table(columns=columns)
    return sorted(data.to_pylist(), key=lambda r: [(v is None, str(v)) for v in r.values()])


def gold_versions(root: Path) -> dict[str, int]:
    return {p.name: DeltaTable(str(p)).version() for p in sorted((root / "lake/gold").iterdir())}


def day(n: int) -> dt.date:
    return dt.date(2024, 1, 1) + dt.timedelta(days=n - 1)


def at(n: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, 1, hour) + dt.timedelta(days=n - 1)


def naive(iso: str) -> dt.datetime:
    """A run record's ``started_at`` (UTC, with offset) as the naive UTC time snapshots store."""
    return dt.datetime.fromisoformat(iso).astimezone(dt.UTC).replace(tzinfo=None)
