"""Property: any sequence of batches, re-runs and rebuilds ends in the de-duplicated latest
state.

The expected silver table is computed here independently, in plain Python, from every row
ever offered: per key the row with the greatest (updated_at, batch, position), excluding
rows that break an error-level rule. Re-runs must create no table versions; a rebuild from
bronze (``--full-refresh``) must leave exactly the same silver content.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weir.run.pipeline import PipelineRun
from weir.sources import memory
from weir.spec import load_project
from weirtest.projects import table_rows, version, write_project

row = st.tuples(st.integers(0, 6), st.integers(-150, 1500), st.integers(1, 5))
step = st.one_of(st.just("rerun"), st.just("rebuild"), st.lists(row, min_size=1, max_size=8))


def _batch(rows: list[tuple[int, int, int]]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            "email": [f"u{r[0]}@example.com" for r in rows],
            "amount": pa.array([float(r[1]) for r in rows], pa.float64()),
            "updated_at": [dt.datetime(2024, 1, r[2]) for r in rows],
        }
    )


def _expected(batches: list[list[tuple[int, int, int]]]) -> dict[int, float]:
    best: dict[int, tuple[Any, ...]] = {}
    for b, rows in enumerate(batches):
        for i, (key, amount, day) in enumerate(rows):
            if amount < -100:  # amount.not_absurd is error-level: quarantined
                continue
            rank = (day, b, i)
            if key not in best or rank > best[key][0]:
                best[key] = (rank, float(amount))
    return {k: v[1] for k, v in best.items()}


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=6))
def test_any_sequence_of_batches_and_reruns_converges(steps: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = write_project(Path(tmp))
        project = load_project(root)
        pipeline = project.pipeline("orders")
        memory.register("orders")
        offered: list[list[tuple[int, int, int]]] = []
        for item in steps:
            if item == "rerun":
                before = _versions(root)
                record = PipelineRun(project, pipeline).execute()
                assert record.status == "success", record.error_message
                assert not record.changed and _versions(root) == before
                continue
            if item == "rebuild":
                record = PipelineRun(project, pipeline, full_refresh=True).execute()
                assert record.status != "failed", record.error_message
                assert _silver(root) == _expected(offered)
                continue
            memory.append("orders", _batch(item))
            offered.append(item)
            record = PipelineRun(project, pipeline).execute()
            assert record.status == ("partial" if record.rows_quarantined else "success")
            assert (
                record.rows_extracted == record.rows_loaded + record.rows_quarantined == len(item)
            )
        assert _silver(root) == _expected(offered)


def _silver(root: Path) -> dict[int, float]:
    silver = root / "lake/silver/orders"
    return {r["order_id"]: r["amount"] for r in table_rows(silver)} if silver.exists() else {}


def _versions(root: Path) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for layer in ("bronze", "silver", "quarantine"):
        path = root / "lake" / layer / "orders"
        out[layer] = version(path) if path.exists() else None
    return out


@pytest.mark.parametrize("action", ["soft", "hard"])
def test_change_events_twice_and_rebuilt_leave_the_same_tables(tmp_path: Path, action: str) -> None:
    """Debezium change events (lake/changes.py): a second run creates no version and leaves
    every table as it was; a rebuild from bronze gives the same silver."""
    from weirtest import debezium as dbz
    from weirtest.projects import lake_content

    root = dbz.customers_project(tmp_path / "p", action=action)
    dbz.write_events(
        root, "1.jsonl", [dbz.insert(1, 1, "ann"), dbz.insert(2, 2, "bob"), dbz.delete(3, 2)]
    )
    dbz.write_events(
        root, "2.jsonl", [dbz.truncate(4), dbz.insert(5, 2, "bob2"), dbz.update(1, 1, "stale")]
    )
    project = load_project(root)
    pipeline = project.pipeline("customers")
    assert PipelineRun(project, pipeline).execute().status == "success"
    content = lake_content(root, "customers")
    versions = {p.name: version(p) for p in (root / "lake").glob("*/customers")}
    again = PipelineRun(project, pipeline).execute()
    assert again.status == "success" and not again.changed
    assert lake_content(root, "customers") == content
    assert {p.name: version(p) for p in (root / "lake").glob("*/customers")} == versions
    rebuilt = PipelineRun(project, pipeline, full_refresh=True).execute()
    assert rebuilt.status == "success", rebuilt.error_message
    assert lake_content(root, "customers")["silver"] == content["silver"]
