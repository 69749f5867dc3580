"""Property: any sequence of batches, re-runs and rebuilds ends in the de-duplicated latest
state.

The expected silver table is computed here independently, in plain Python, from every row
ever offered: per key the row with the greatest (updated_at, batch, position), excluding
rows that break an error-level rule. Re-runs must create no table versions; a rebuild from
bronze (``--full-refresh``) must leave exactly the same silver content.
"""

from __future__ import annotations

import datetime as dt
import os
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


def _batch(rows: list[tuple[int, int, int]], step: int = 0) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            # unique per offer: a full SQL read re-reads the table, and bronze skips rows it
            # holds identically; distinct offers keep that from merging two of them
            "email": [f"u{r[0]}.{step}.{i}@example.com" for i, r in enumerate(rows)],
            "amount": pa.array([float(r[1]) for r in rows], pa.float64()),
            "updated_at": [dt.datetime(2024, 1, r[2]) for r in rows],
        }
    )


SOURCES = ["memory", "sqlite", "postgres"]
"""memory: each step's rows are a new batch; sqlite and postgres: they are inserted into an
orders table that a ``sql`` source reads whole every run (``strategy: full``)."""


class _Offer:
    """Where a step's rows go: the memory dataset, or the database table."""

    def __init__(self, source: str, root: Path, request: pytest.FixtureRequest):
        from weirtest.sqldb import OrdersDb, sql_project

        self.db: OrdersDb | None = None
        self.database: str | None = None
        if source == "memory":
            write_project(root)
            memory.register("orders")
            return
        cluster = request.getfixturevalue("postgres") if source == "postgres" else None
        self.database = cluster.database() if cluster is not None else None
        self.db = OrdersDb(root, pg=cluster, database=self.database)
        sql_project(root, self.db, chunk_rows=3)
        self.env = self.db.env()

    def load(self, root: Path) -> Any:
        env = None if self.db is None else {**os.environ, **self.env}
        return load_project(root, environ=env)

    def add(self, rows: pa.Table) -> None:
        if self.db is None:
            memory.append("orders", rows)
        else:
            self.db.insert(tuple(r.values()) for r in rows.to_pylist())

    def close(self) -> None:
        if self.db is not None and self.db.pg is not None and self.database is not None:
            self.db.pg.drop(self.database)


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
@pytest.mark.parametrize("source", SOURCES)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(step, min_size=1, max_size=6))
def test_any_sequence_of_batches_and_reruns_converges(
    steps: list[Any], source: str, request: pytest.FixtureRequest
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        offer = _Offer(source, root, request)
        try:
            _converges(root, offer, steps)
        finally:
            offer.close()


def _converges(root: Path, offer: _Offer, steps: list[Any]) -> None:
    project = offer.load(root)
    pipeline = project.pipeline("orders")
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
        offer.add(_batch(item, len(offered)))
        offered.append(item)
        record = PipelineRun(project, pipeline).execute()
        assert record.status == ("partial" if record.rows_quarantined else "success")
        assert record.rows_extracted == record.rows_loaded + record.rows_quarantined == len(item)
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


@pytest.mark.parametrize("strategy", ["merge", "scd2"])
@pytest.mark.parametrize("action", ["soft", "hard"])
def test_change_events_twice_and_rebuilt_leave_the_same_tables(
    tmp_path: Path, action: str, strategy: str
) -> None:
    """Debezium change events (lake/changes.py; as versions with scd2, lake/changes_scd2.py):
    a second run creates no version and leaves every table as it was; a rebuild from bronze
    gives the same silver."""
    from weirtest import debezium as dbz
    from weirtest.projects import lake_content

    load = {"strategy": strategy}
    root = dbz.customers_project(tmp_path / "p", action=action, load=load)
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


@pytest.mark.parametrize("action", ["soft", "hard"])
def test_reconciled_deletes_twice_and_rebuilt_leave_the_same_tables(
    tmp_path: Path, action: str
) -> None:
    """``deletes: {detect: keys}`` (lake/reconcile.py): once the deletes are applied, a second
    run creates no version in any table; a rebuild from bronze brings the deleted rows back
    and its reconciliation deletes them again, so silver ends the same (its run's time dates
    a soft delete)."""
    from weirtest.projects import lake_content
    from weirtest.sqldb import OrdersDb, sql_project

    db = OrdersDb(tmp_path)
    root = sql_project(tmp_path, db, deletes={"detect": "keys", "action": action})
    db.insert((i, f"u{i}@x.io", float(i), dt.datetime(2024, 1, i)) for i in range(1, 6))
    project = load_project(root)
    pipeline = project.pipeline("orders")
    assert PipelineRun(project, pipeline).execute().status == "success"
    db.execute("DELETE FROM orders WHERE id IN (2, 5)")
    deleted = PipelineRun(project, pipeline).execute()
    assert deleted.status == "success" and deleted.changed
    times = frozenset({"deleted_at"})
    content = lake_content(root, "orders", run_times=times)
    versions = {p.name: version(p) for p in (root / "lake").glob("*/orders")}
    for _ in range(2):
        again = PipelineRun(project, pipeline).execute()
        assert again.status == "success" and not again.changed
    assert lake_content(root, "orders", run_times=times) == content
    assert {p.name: version(p) for p in (root / "lake").glob("*/orders")} == versions
    rebuilt = PipelineRun(project, pipeline, full_refresh=True).execute()
    assert rebuilt.status == "success", rebuilt.error_message
    assert lake_content(root, "orders", run_times=times)["silver"] == content["silver"]
    ids = sorted(r["order_id"] for r in table_rows(root / "lake/silver/orders"))
    assert ids == ([1, 2, 3, 4, 5] if action == "soft" else [1, 3, 4])
