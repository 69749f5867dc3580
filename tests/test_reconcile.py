"""Hard-delete reconciliation (``deletes: {detect: keys}``) against real SQLite and a real
PostgreSQL, into real Delta tables: rows deleted in the source are soft-deleted (values
kept, ``is_deleted``, ``deleted_at``) or removed from silver, keys that come back are live
again, ``every: N`` counts runs, the ``max_delete_ratio`` guard refuses suspicious
reconciliations, and an idle re-run makes no table version."""

from __future__ import annotations

import datetime as dt
import signal
import sqlite3
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from weir.errors import ConfigError
from weir.observe.record import RunRecord
from weir.run.pipeline import PipelineRun
from weir.sources.sql import SqlSource
from weir.spec import load_project
from weirtest.postgres import Cluster
from weirtest.projects import SALT, orders_pipeline, table_rows, version, weir_run, write_project
from weirtest.sqldb import OrdersDb, sql_project

T0 = dt.datetime(2024, 3, 1, 12, 0, 0)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OrdersDb]:
    root = tmp_path / "p"
    root.mkdir()
    if request.param == "sqlite":
        yield OrdersDb(root)
        return
    cluster: Cluster = request.getfixturevalue("postgres")
    yield OrdersDb(root, pg=cluster, database=request.getfixturevalue("pg_database"))


STRATEGIES: dict[str, dict[str, Any]] = {
    "full": {},
    "incremental": {"strategy": "incremental", "cursor": "updated_at"},
}


def _project(db: OrdersDb, read: str = "full", **deletes: Any) -> Path:
    block = {"detect": "keys", **deletes}
    return sql_project(db.path.parent, db, chunk_rows=2, deletes=block, **STRATEGIES[read])


def _run(root: Path, db: OrdersDb, *, ok: bool = True) -> RunRecord:
    project = load_project(root, environ={"WEIR_PII_SALT": SALT, **db.env()})
    record = PipelineRun(project, project.pipeline("orders")).execute()
    if ok:
        assert record.status in ("success", "partial"), record.error_message
    return record


def _rows(ids: range | list[int], *, amount: float = 1.0, at: dt.datetime = T0) -> list[Any]:
    return [(i, f"u{i}@example.com", amount, at) for i in ids]


def _silver(root: Path) -> dict[int, dict[str, Any]]:
    return {r["order_id"]: r for r in table_rows(root / "lake/silver/orders")}


def _version(root: Path) -> int:
    return DeltaTable(str(root / "lake/silver/orders")).version()


def _reconciled(record: RunRecord) -> dict[str, Any]:
    [entry] = [m for m in record.load_metrics if "reconciliation" in m]
    return entry


@pytest.mark.parametrize("read", ["full", "incremental"])
def test_deleted_rows_are_soft_deleted_keeping_their_values(db: OrdersDb, read: str) -> None:
    root = _project(db, read)
    db.insert(_rows(range(1, 6), amount=3.0))
    first = _run(root, db)
    assert _reconciled(first)["num_deletes_found"] == 0
    assert not any(r["is_deleted"] for r in _silver(root).values())
    db.execute("DELETE FROM orders WHERE id IN (2, 4)")
    second = _run(root, db)
    silver = _silver(root)
    assert sorted(silver) == [1, 2, 3, 4, 5]  # soft: nothing leaves silver
    assert {k for k, r in silver.items() if r["is_deleted"]} == {2, 4}
    started = dt.datetime.fromisoformat(second.started_at)
    assert silver[2]["deleted_at"] == started and silver[1]["deleted_at"] is None
    assert silver[2]["amount"] == 3.0  # the row keeps its values
    assert _reconciled(second) == {
        "reconciliation": 1,
        "action": "soft",
        "num_source_keys": 3,
        "num_live_keys": 5,
        "num_deletes_found": 2,
        "num_deletes_applied": 2,
        "num_keys_revived": 0,
    }
    before = _version(root)
    idle = _run(root, db)
    assert _version(root) == before and not idle.changed  # already deleted: nothing to do
    assert _reconciled(idle)["num_live_keys"] == 3


def test_deleted_rows_are_removed_with_action_hard(db: OrdersDb) -> None:
    root = _project(db, action="hard")
    db.insert(_rows(range(1, 6)))
    _run(root, db)
    db.execute("DELETE FROM orders WHERE id = 3")
    record = _run(root, db)
    assert sorted(_silver(root)) == [1, 2, 4, 5]
    assert (
        "is_deleted" not in DeltaTable(str(root / "lake/silver/orders")).schema().to_arrow().names
    )
    assert _reconciled(record)["num_deletes_applied"] == 1
    before = _version(root)
    _run(root, db)
    assert _version(root) == before
    db.insert(_rows([3], amount=7.0, at=T0 + dt.timedelta(hours=1)))  # back, changed
    _run(root, db)
    assert _silver(root)[3]["amount"] == 7.0


@pytest.mark.parametrize("read", ["full", "incremental"])
def test_a_deleted_key_that_comes_back_is_live_again(db: OrdersDb, read: str) -> None:
    root = _project(db, read)
    db.insert(_rows(range(1, 5)))
    _run(root, db)
    db.execute("DELETE FROM orders WHERE id IN (1, 2)")
    _run(root, db)
    assert {k for k, r in _silver(root).items() if r["is_deleted"]} == {1, 2}
    # 1 comes back changed: a new row, merged live. 2 comes back with an older updated_at:
    # an incremental read never sees it (below the watermark), and a full read's merge
    # keeps silver's newer row (dedupe_order_by), so reconciliation itself makes it live
    # again, with the values silver kept.
    db.insert(_rows([1], amount=5.0, at=T0 + dt.timedelta(hours=1)))
    db.insert(_rows([2], at=T0 - dt.timedelta(hours=1)))
    back = _run(root, db)
    silver = _silver(root)
    assert not any(r["is_deleted"] for r in silver.values())
    assert all(r["deleted_at"] is None for r in silver.values())
    assert silver[1]["amount"] == 5.0
    assert _reconciled(back)["num_keys_revived"] == 1
    assert silver[2]["updated_at"] == T0
    before = _version(root)
    _run(root, db)
    assert _version(root) == before


def test_every_three_reconciles_on_the_third_run_only(db: OrdersDb) -> None:
    root = _project(db, every=3)
    db.insert(_rows(range(1, 11)))
    marks = []
    for _ in range(7):
        record = _run(root, db)
        marks.append(any("reconciliation" in m for m in record.load_metrics))
        db.execute("DELETE FROM orders WHERE id = (SELECT min(id) FROM orders)")
    assert marks == [False, False, True, False, False, True, False]
    # run 3 found the 2 keys deleted before it, run 6 the next 3
    assert sorted(k for k, r in _silver(root).items() if r["is_deleted"]) == [1, 2, 3, 4, 5]


def test_the_guard_refuses_to_delete_most_of_silver(db: OrdersDb) -> None:
    root = _project(db)
    db.insert(_rows(range(1, 11)))
    _run(root, db)
    before = _version(root)
    db.execute("DELETE FROM orders")
    refused = _run(root, db, ok=False)
    assert refused.status == "failed" and refused.stage == "deletes"
    message = refused.error_message or ""
    assert "10 of silver's 10 live keys" in message and "max_delete_ratio=0.5" in message
    assert "Traceback" not in message
    assert _version(root) == before
    db.insert(_rows(range(1, 6)))  # half of them back: exactly the ratio is allowed
    _run(root, db)
    assert sum(r["is_deleted"] for r in _silver(root).values()) == 5


def test_the_guard_is_lifted_by_max_delete_ratio(db: OrdersDb) -> None:
    root = _project(db, max_delete_ratio=1.0)
    db.insert(_rows(range(1, 4)))
    _run(root, db)
    db.execute("DELETE FROM orders")
    _run(root, db)
    assert all(r["is_deleted"] for r in _silver(root).values())


# ---------------------------------------------------------------- configuration errors
def _config_error(root: Path, pipe: dict[str, Any]) -> str:
    write_project(root, pipelines={"orders": pipe})
    with pytest.raises(ConfigError) as caught:
        load_project(root, environ={"WEIR_PII_SALT": SALT})
    return str(caught.value)


KEYS = {"detect": "keys"}
SQLITE = {"source": "sql", "url": "sqlite:///shop.db", "table": "orders", "deletes": KEYS}


@pytest.mark.parametrize(
    ("pipe", "line", "expected"),
    [
        (
            {"extract": {"source": "files", "path": "d/*.csv", "format": "csv", "deletes": KEYS}},
            "extract.deletes",
            "deletes applies to change events",
        ),
        (
            {"extract": {"source": "rest", "url": "http://127.0.0.1:1/x", "deletes": KEYS}},
            "extract.deletes",
            "deletes",
        ),
        (
            {"extract": SQLITE, "load": {"strategy": "truncate-reload"}},
            "load.strategy",
            "strategy 'truncate-reload' does not keep",
        ),
        (
            {
                "extract": SQLITE,
                "load": {"strategy": "scd2", "scd2": {"valid_from": "updated_at"}},
            },
            "load.strategy",
            "scd2 with reconciled deletes is not supported yet",
        ),
        (
            {"extract": SQLITE, "load": {"strategy": "merge", "keys": ["email"]}},
            "extract.deletes",
            "key column 'email': it is PII",
        ),
        (
            {"extract": {**SQLITE, "deletes": {**KEYS, "max_delete_ratio": 0}}},
            "extract.deletes.max_delete_ratio",
            "greater than 0",
        ),
    ],
    ids=["files", "rest", "truncate-reload", "scd2", "pii-key", "ratio"],
)
def test_deletes_by_keys_is_checked_when_the_project_loads(
    tmp_path: Path, pipe: dict[str, Any], line: str, expected: str
) -> None:
    message = _config_error(tmp_path, orders_pipeline(**pipe))
    assert "orders.yml:" in message and expected in message, message
    assert "Traceback" not in message


# ---------------------------------------------------------------- streaming, crashes
def test_a_large_key_set_streams_through_the_engine_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200k keys in SQLite: the source's key set reaches the engine chunk by chunk, and
    Python never holds much more than one chunk of them (measured where the rows are Python
    objects: tracemalloc sees sqlite3's tuples, Arrow's buffers are counted by pyarrow)."""
    db = OrdersDb(tmp_path)
    n = 200_000
    with sqlite3.connect(db.path) as con:
        con.executemany(
            "INSERT INTO orders (id, email, amount, updated_at) VALUES (?, ?, 1.0, ?)",
            ((i, f"u{i}@x.io", "2024-03-01 12:00:00") for i in range(n)),
        )
    root = sql_project(tmp_path, db, chunk_rows=10_000, deletes={"detect": "keys"})
    _run(root, db)
    db.execute("DELETE FROM orders WHERE id % 1000 = 0")
    seen: list[tuple[int, int]] = []
    original = SqlSource.key_set

    def watched(self: SqlSource, keys: Any) -> Iterator[pa.RecordBatch]:
        tracemalloc.start()  # from the reconciliation on (the extraction reads every row)
        for batch in original(self, keys):
            seen.append((batch.num_rows, pa.total_allocated_bytes()))
            yield batch

    monkeypatch.setattr(SqlSource, "key_set", watched)
    try:
        record = _run(root, db)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    entry = _reconciled(record)
    assert entry["num_source_keys"] == n - 200 and entry["num_deletes_applied"] == 200
    assert len(seen) >= (n - 200) // 10_000 and max(rows for rows, _ in seen) <= 10_000
    # 200k keys as Python tuples alone are > 15 MB; one chunk of them is well under 2 MB
    assert peak < 6 * 2**20, peak
    # Arrow memory while the keys stream: a chunk or two (80 kB each), never the 1.6 MB of all
    assert max(b for _, b in seen) - min(b for _, b in seen) < 400_000
    assert sum(r["is_deleted"] for r in table_rows(root / "lake/silver/orders")) == 200


@pytest.mark.slow  # real `weir run` subprocesses
def test_every_counts_runs_across_a_run_killed_at_the_reconciliation(tmp_path: Path) -> None:
    """every: 2, with real `weir run` processes: a run killed before the reconciliation's
    commit does not count (the next one reconciles in its place); one killed after it
    counts as having reconciled (silver's commit says so, though its record was never
    written)."""
    db = OrdersDb(tmp_path)
    root = sql_project(tmp_path, db, deletes={"detect": "keys", "every": 2})
    db.insert(_rows(range(1, 11)))
    assert weir_run(root).returncode == 0  # run 1 of 2
    db.execute("DELETE FROM orders WHERE id = 1")
    killed = weir_run(root, fault="reconcile.before_commit")  # run 2: due, killed
    assert killed.returncode == -signal.SIGKILL
    assert not any(r["is_deleted"] for r in table_rows(root / "lake/silver/orders"))
    db.execute("DELETE FROM orders WHERE id = 2")
    killed = weir_run(root, fault="reconcile.after_commit")  # due again: commits, killed
    assert killed.returncode == -signal.SIGKILL
    deleted = {r["order_id"] for r in table_rows(root / "lake/silver/orders") if r["is_deleted"]}
    assert deleted == {1, 2}
    db.execute("DELETE FROM orders WHERE id = 3")
    before = version(root / "lake/silver/orders")
    assert weir_run(root).returncode == 0  # run 1 of 2 after that reconciliation
    assert version(root / "lake/silver/orders") == before
    assert weir_run(root).returncode == 0  # run 2: reconciles
    deleted = {r["order_id"] for r in table_rows(root / "lake/silver/orders") if r["is_deleted"]}
    assert deleted == {1, 2, 3}
