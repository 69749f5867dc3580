"""The bundled shop example (examples/shop) end to end, on a copy: day 1 and day 2 of the
generated database in SQLite, then the same pipelines pointed at the session's PostgreSQL by
one setting (``--target postgres``), which must give the same silver tables row for row."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from deltalake import DeltaTable

from weir.cli import main

if TYPE_CHECKING:
    from weirtest.postgres import Cluster

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shop"
TABLES = {"customers": "customer_id", "products": "product_id", "orders": "order_id"}
MODELS = ("daily_revenue", "customer_lifetime_value", "revenue_by_category")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


prepare = _load("shop_prepare", EXAMPLE / "prepare.py")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(
        EXAMPLE, root, ignore=shutil.ignore_patterns("data", "lake", "lake-pg", ".weir")
    )
    return root


def _run(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> dict[str, Any]:
    code = main(["run", "--project", str(root), "--json", *extra])
    document = json.loads(capsys.readouterr().out)
    assert code == 0, document
    return {r["pipeline_name"]: r for r in document["runs"]}


def _silver(root: Path, lake: str, table: str) -> list[dict[str, Any]]:
    rows = DeltaTable(str(root / lake / "silver" / table)).to_pyarrow_table().to_pylist()
    keep = [c for c in rows[0] if not c.startswith("_")] if rows else []
    return sorted(({c: r[c] for c in keep} for r in rows), key=lambda r: r[TABLES[table]])


def _source_ids(db: Path, table: str) -> set[int]:
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute(f"SELECT {TABLES[table]} FROM {table}")}


def test_day_one_day_two_and_an_idle_run_on_sqlite(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = project / "data" / "shop.db"
    prepare.prepare(1, db=db)
    first = _run(capsys, project)
    assert {n: r["rows_loaded"] for n, r in first.items() if n in TABLES} == {
        "customers": 800,
        "products": 120,
        "orders": 4000,
    }
    assert all(r["status"] == "success" for r in first.values())

    prepare.prepare(2, db=db)
    second = _run(capsys, project)
    assert second["customers"]["rows_loaded"] == 55  # 25 edited, 30 new
    assert second["orders"]["watermark_before"] < second["orders"]["watermark_after"]
    for table in TABLES:  # every source row is in silver; deleted ones stay (no reconciliation)
        silver = {r[TABLES[table]] for r in _silver(project, "lake", table)}
        deleted = silver - _source_ids(db, table)
        assert (
            _source_ids(db, table) <= silver
            and len(deleted)
            == {
                "customers": 5,
                "orders": 20,
                "products": 2,
            }[table]
        )
    with sqlite3.connect(db) as con:
        statuses = dict(con.execute("SELECT order_id, status FROM orders").fetchall())
    silver_orders = _silver(project, "lake", "orders")
    assert all(
        statuses[r["order_id"]] == r["status"] for r in silver_orders if r["order_id"] in statuses
    )
    emails = {r["email"] for r in _silver(project, "lake", "customers")}
    assert not any("@" in e for e in emails)  # PII hashed

    revenue = DeltaTable(str(project / "lake" / "gold" / "daily_revenue")).to_pyarrow_table()
    assert sum(revenue.column("orders").to_pylist()) == len(silver_orders)

    idle = _run(capsys, project)
    assert all(not r["changed"] for r in idle.values())
    assert prepare.prepare(2, db=db) == "day 2 is applied already: nothing to do"


def test_the_same_pipelines_on_postgres_give_the_same_silver(
    project: Path,
    postgres: Cluster,
    pg_database: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from weirtest.postgres import PASSWORD

    monkeypatch.setenv("SHOP_PG_PASSWORD", PASSWORD)
    pg_url = postgres.url(pg_database).replace(PASSWORD, "${env:SHOP_PG_PASSWORD}")
    db = project / "data" / "shop.db"
    for day in (1, 2):
        prepare.prepare(day, db=db)
        prepare.prepare(day, db=db, postgres=pg_url)
        _run(capsys, project)
        # the whole url, password included, from the environment through weir.yml's variable
        monkeypatch.setenv("SHOP_DB_URL", postgres.url(pg_database))
        runs = _run(capsys, project, "--target", "postgres")
        assert PASSWORD not in json.dumps(runs)
        for table in TABLES:
            assert _silver(project, "lake-pg", table) == _silver(project, "lake", table), table
    for model in MODELS:
        sqlite_gold = DeltaTable(str(project / "lake" / "gold" / model)).to_pyarrow_table()
        pg_gold = DeltaTable(str(project / "lake-pg" / "gold" / model)).to_pyarrow_table()
        assert sorted(map(str, pg_gold.to_pylist())) == sorted(map(str, sqlite_gold.to_pylist()))
