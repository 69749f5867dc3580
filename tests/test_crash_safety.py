"""Crash safety: SIGKILL the real `weir run` process at every commit boundary and inside the
bronze write, re-run, and compare every table with a clean run — no duplicates, no loss.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from weirtest import debezium as dbz
from weirtest.projects import lake_content, orders_pipeline, table_rows, weir_run, write_project

pytestmark = (
    pytest.mark.slow
)  # subprocesses, dbt or many generated cases: `make test-fast` skips it

POINTS = [
    "bronze.write",
    "bronze.before_commit",
    "bronze.after_commit",
    "quarantine.before_commit",
    "quarantine.after_commit",
    "silver.before_commit",
    "silver.after_commit",
]
FILES = {
    "orders_1.csv": "id,email,amount,updated_at\n1,a@x.io,10,2024-01-01T00:00:00\n"
    "2,b@x.io,20,2024-01-01T00:00:00\n,n@x.io,1,2024-01-01T00:00:00\n3,c@x.io,-500,2024-01-01T00:00:00\n",
    "orders_2.csv": "id,email,amount,updated_at\n2,b@x.io,25,2024-01-02T00:00:00\n"
    "4,d@x.io,40,2024-01-02T00:00:00\n,m@x.io,2,2024-01-02T00:00:00\n1,a@x.io,11,2024-01-03T00:00:00\n",
}


CASES = [
    ("files", "merge"),
    ("files", "scd2"),
    ("sql", "merge"),
    ("sql", "scd2"),
    ("debezium", "merge"),
    ("debezium", "scd2"),
    ("sql-deletes", "merge"),
]
"""(source, load strategy). files: the CSV drops; sql: the same rows inserted into a SQLite
table, read incrementally (the watermark commits with the rows; the inclusive bound re-reads
the last value); debezium: change events from files, applied by key (soft deletes), or kept as versions
(``scd2``, lake/changes_scd2.py);
sql-deletes: sql, with key 1 deleted from the table before the second run, which
soft-deletes it in silver (``deletes: {detect: keys}``, lake/reconcile.py)."""
RECONCILE_POINTS = ["reconcile.before_commit", "reconcile.after_commit"]
RUN_TIMES = frozenset({"deleted_at"})
"""A reconciliation dates its deletes with its run's time: compared as set or NULL."""


def _events(*events: dict[str, Any] | str) -> str:
    return "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events)


# change events (lake/changes.py): deletes, a truncate, stale and bad events, a re-insert
DEBEZIUM = {
    "orders_1.jsonl": _events(
        dbz.insert(10, 1, "ann"),
        dbz.insert(11, 2, "bob"),
        dbz.update(12, 1, "anna", "2.00"),
        dbz.insert(13, 3, "neg", "-1.00"),
    ),
    "orders_2.jsonl": _events(
        dbz.delete(20, 2),
        dbz.update(5, 1, "stale"),
        "{not json",
        dbz.truncate(21),
        dbz.insert(22, 2, "bob again"),
        dbz.insert(23, 4, "dee"),
    ),
}


def _files(source: str) -> dict[str, str]:
    return DEBEZIUM if source == "debezium" else FILES


def _project(root: Path, strategy: str, source: str = "files") -> Path:
    if source == "debezium":
        pipe = {**dbz.customers_pipeline(), "name": "orders"}
        pipe["extract"] = {**pipe["extract"], "path": "data/*.jsonl"}
        if strategy == "scd2":
            pipe["load"] = {"strategy": "scd2"}
        write_project(root, contracts={"customers": dbz.CUSTOMERS}, pipelines={"orders": pipe})
        (root / "data").mkdir()
        return root
    load: dict[str, Any] = {"strategy": strategy}
    if strategy == "scd2":
        load["scd2"] = {"valid_from": "updated_at"}
    extract: dict[str, Any] = {"source": "files", "path": "data/*.csv", "format": "csv"}
    if source.startswith("sql"):
        extract = {"source": "sql", "url": "sqlite:///data/shop.db", "table": "orders"}
        extract |= {"strategy": "incremental", "cursor": "updated_at", "chunk_rows": 2}
    if source == "sql-deletes":
        extract["deletes"] = {"detect": "keys"}
    pipe = orders_pipeline(extract=extract, load=load)
    write_project(root, pipelines={"orders": pipe})
    (root / "data").mkdir()
    if source.startswith("sql"):
        with sqlite3.connect(root / "data/shop.db") as con:
            con.execute(
                "CREATE TABLE orders (id INTEGER, email TEXT, amount REAL, updated_at TEXT)"
            )
    return root


def _drop(root: Path, name: str) -> None:
    database = root / "data/shop.db"
    if not database.exists():
        files = DEBEZIUM if name.endswith(".jsonl") else FILES
        (root / "data" / name).write_text(files[name])
        return
    rows = list(csv.DictReader(io.StringIO(FILES[name])))
    with sqlite3.connect(database) as con:
        con.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [(r["id"] or None, r["email"], r["amount"], r["updated_at"]) for r in rows],
        )
        if name == "orders_2.csv" and _deletes(root):
            con.execute("DELETE FROM orders WHERE id = 1")


def _content(root: Path, source: str) -> dict[str, list[tuple[str, ...]]]:
    return lake_content(
        root, "orders", run_times=RUN_TIMES if source == "sql-deletes" else frozenset()
    )


def _deletes(root: Path) -> bool:
    return "deletes" in (root / "pipelines/orders.yml").read_text()


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    refs = {}
    for source, strategy in CASES:
        root = _project(tmp_path_factory.mktemp(f"ref-{source}-{strategy}"), strategy, source)
        for name in _files(source):
            _drop(root, name)
            assert weir_run(root).returncode == 0
        refs[f"{source}-{strategy}"] = _content(root, source)
    refs |= {strategy: refs[f"files-{strategy}"] for strategy in ("merge", "scd2")}
    return refs


@pytest.mark.slow
@pytest.mark.parametrize(("source", "strategy"), CASES)
@pytest.mark.parametrize("point", POINTS)
def test_kill_at_commit_boundary_then_rerun_matches_clean_run(
    tmp_path: Path, reference: dict[str, Any], strategy: str, point: str, source: str
) -> None:
    _kill_and_rerun(tmp_path, reference, strategy, point, source)


@pytest.mark.slow
@pytest.mark.parametrize("point", RECONCILE_POINTS)
def test_kill_at_the_reconciliation_commit_then_rerun_matches_clean_run(
    tmp_path: Path, reference: dict[str, Any], point: str
) -> None:
    _kill_and_rerun(tmp_path, reference, "merge", point, "sql-deletes")
    silver = table_rows(tmp_path / "p/lake/silver/orders")
    assert {r["order_id"] for r in silver if r["is_deleted"]} == {1}


def _kill_and_rerun(
    tmp_path: Path, reference: dict[str, Any], strategy: str, point: str, source: str
) -> None:
    root = _project(tmp_path / "p", strategy, source)
    first, second = _files(source)
    _drop(root, first)
    assert weir_run(root).returncode == 0
    _drop(root, second)
    killed = weir_run(root, fault=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = weir_run(root)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _content(root, source) == reference[f"{source}-{strategy}"]
    # and one more run changes nothing at all
    versions = {p.name: DeltaTable(str(p)).version() for p in (root / "lake").glob("*/orders")}
    assert weir_run(root).returncode == 0
    assert {
        p.name: DeltaTable(str(p)).version() for p in (root / "lake").glob("*/orders")
    } == versions


@pytest.mark.slow
def test_kill_on_very_first_run(tmp_path: Path, reference: dict[str, Any]) -> None:
    root = _project(tmp_path / "p", "merge")
    _drop(root, "orders_1.csv")
    assert weir_run(root, fault="silver.before_commit").returncode == -signal.SIGKILL
    _drop(root, "orders_2.csv")
    assert weir_run(root).returncode == 0
    assert lake_content(root, "orders") == reference["merge"]


def test_concurrent_run_is_refused_with_clear_message(tmp_path: Path) -> None:
    from weir.run.lock import pipeline_lock

    root = _project(tmp_path / "p", "merge")
    _drop(root, "orders_1.csv")
    with pipeline_lock(root / ".weir", "orders"):
        busy = weir_run(root)
    assert busy.returncode == 1
    assert "already running" in busy.stdout + busy.stderr and "--wait" in busy.stdout + busy.stderr
    assert not (root / "lake" / "bronze" / "orders").exists()
    assert weir_run(root).returncode == 0
    shutil.rmtree(root)


def test_wait_flag_queues_behind_a_running_instance(tmp_path: Path) -> None:
    import threading

    from weir.cli import main
    from weir.run.lock import pipeline_lock

    root = _project(tmp_path / "p", "merge")
    _drop(root, "orders_1.csv")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with pipeline_lock(root / ".weir", "orders"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    assert main(["run", "--wait", "--project", str(root)]) == 0  # blocked ~1 s, then ran
    holder.join()
    assert release.is_set() and (root / "lake" / "silver" / "orders").exists()


REBUILD_POINTS = ["rebuild.after_commit", "quarantine.after_commit", "silver.before_commit"]


@pytest.mark.slow
@pytest.mark.parametrize("point", REBUILD_POINTS)
def test_a_rebuild_killed_anywhere_changes_nothing_until_the_next_one_finishes(
    tmp_path: Path, reference: dict[str, Any], point: str
) -> None:
    """`weir run --full-refresh` replays bronze into scratch tables, then replaces quarantine
    and silver; a kill while replaying changes nothing, and a kill between the two replacing
    commits is finished by the next rebuild."""
    root = _project(tmp_path / "p", "merge")
    for name in FILES:
        _drop(root, name)
        assert weir_run(root).returncode == 0
    before = lake_content(root, "orders")
    killed = weir_run(root, fault=point, args=("--full-refresh",))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if point.startswith("rebuild"):
        assert lake_content(root, "orders") == before
    again = weir_run(root, args=("--full-refresh",))
    assert again.returncode == 0, again.stdout + again.stderr
    assert lake_content(root, "orders") == reference["merge"]
