"""dbt steps end to end: a real dbt project (tests/dbt_project) built by real dbt-duckdb over
weir's real Delta tables, exposed as DuckDB views."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import yaml

from weir.errors import ConfigError
from weir.observe.record import RunRecord
from weir.run.dag import Node
from weir.run.dbt import DbtRun, dbt_graph
from weir.run.modified import modified
from weir.run.pipeline import PipelineRun
from weir.sources import memory
from weir.spec import load_project
from weirtest.projects import SALT, orders_pipeline, write_project

pytestmark = (
    pytest.mark.slow
)  # subprocesses, dbt or many generated cases: `make test-fast` skips it

DBT_PROJECT = Path(__file__).parent / "dbt_project"
DATASET = "dbt_orders"
PKG = "weir_shop"

# id, amount, day of January 2024 (updated_at at noon). Weir quarantines amounts below
# -100 (error rule) and flags amounts outside 0..1000 (warn rule: dq_valid false).
ORDERS = [(1, 10.0, 1), (2, 20.5, 1), (3, 30.0, 2), (4, 2000.0, 2), (5, 5.0, 3), (6, -500.0, 3)]


def orders_table(rows: list[tuple[int, float, int]]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            "email": [f"customer{r[0]}@example.com" for r in rows],
            "amount": pa.array([r[1] for r in rows], pa.float64()),
            "updated_at": [dt.datetime(2024, 1, r[2], 12) for r in rows],
        }
    )


def expected_daily(rows: list[tuple[int, float, int]]) -> list[tuple[dt.date, int, float]]:
    """fct_daily_orders computed without weir or dbt: latest row per id, valid amounts only."""
    latest = {r[0]: r for r in rows}
    days: dict[dt.date, list[float]] = {}
    for _, amount, day in latest.values():
        if 0 <= amount <= 1000:
            days.setdefault(dt.date(2024, 1, day), []).append(amount)
    return sorted((d, len(a), sum(a)) for d, a in days.items())


def step_file(name: str, **dbt: Any) -> dict[str, Any]:
    return {"name": name, "kind": "dbt", "owner": "analytics", "tags": ["marts"], "dbt": dbt}


def make_project(root: Path, steps: dict[str, dict[str, Any]], *, dbt_dirs: bool = True) -> Path:
    write_project(
        root,
        pipelines={"orders": orders_pipeline(extract={"source": "memory", "dataset": DATASET})},
    )
    for name, data in steps.items():
        (root / "pipelines" / f"{name}.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    if dbt_dirs:
        shutil.copytree(DBT_PROJECT, root / "dbt")
    return root


def variant(root: Path, folder: str, old: str, new: str) -> None:
    """A copy of the dbt project whose sources.yml has ``old`` replaced by ``new``."""
    shutil.copytree(DBT_PROJECT, root / folder)
    sources = root / folder / "models/staging/sources.yml"
    text = sources.read_text()
    assert old in text
    sources.write_text(text.replace(old, new))


def load_orders(root: Path, rows: list[tuple[int, float, int]]) -> RunRecord:
    memory.append(DATASET, orders_table(rows))
    project = load_project(root)
    record = PipelineRun(project, project.pipeline("orders")).execute()
    assert record.status in ("success", "partial"), record.error_message
    return record


def run_step(root: Path, name: str) -> RunRecord:
    project = load_project(root)
    return DbtRun(project, project.dbt_steps[name]).execute()


def query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def by_name(record: RunRecord) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in record.nodes}


@dataclass
class Built:
    root: Path
    first: RunRecord

    @property
    def warehouse(self) -> Path:
        return self.root / ".weir/dbt/shop.duckdb"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """One project, orders loaded, step ``shop`` built once; shared by the tests below."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WEIR_PII_SALT", SALT)
        root = make_project(
            tmp_path_factory.mktemp("dbt") / "proj",
            {
                "shop": step_file("shop", reads=["silver.orders"]),
                "shop_strict": step_file("shop_strict", vars={"amount_floor": 15}),
                "shop_stale": step_file("shop_stale", project_dir="dbt_stale"),
                "shop_nofresh": step_file("shop_nofresh", project_dir="dbt_nofresh"),
            },
        )
        variant(root, "dbt_stale", "_ingested_at", "\"_ingested_at - interval '3 days'\"")
        variant(root, "dbt_nofresh", "freshness:", "meta:")
        memory.register(DATASET)
        load_orders(root, ORDERS)
        yield Built(root, run_step(root, "shop"))


# ---------------------------------------------------------------- a successful build
def test_build_creates_the_models_from_weir_tables(built: Built) -> None:
    record = built.first
    assert record.status == "success", record.error_message
    assert (record.kind, record.stage, record.pipeline_name) == ("dbt", "build", "shop")
    daily = query(built.warehouse, "SELECT * FROM main.fct_daily_orders ORDER BY order_date")
    assert daily == expected_daily(ORDERS)
    # staging keeps every silver row (the flagged 2000 too); quarantined rows never got there
    staged = query(built.warehouse, "SELECT order_id, amount FROM main.stg_orders ORDER BY 1")
    assert staged == [(i, a) for i, a, _ in ORDERS if a >= -100]
    # the view over silver.orders reads the current Delta snapshot, typed per the schema
    [(ingested_type,)] = query(
        built.warehouse,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_schema = 'silver' AND table_name = 'orders' AND column_name = '_ingested_at'",
    )
    assert ingested_type == "TIMESTAMP WITH TIME ZONE"
    assert record.table_versions == {"silver.orders": 0}


def test_record_lists_every_node_with_its_status(built: Built) -> None:
    record = built.first
    nodes = by_name(record)
    assert {n: nodes[n]["status"] for n in ("stg_orders", "fct_daily_orders")} == {
        "stg_orders": "success",
        "fct_daily_orders": "success",
    }
    assert nodes["orders_snapshot"]["resource_type"] == "snapshot"
    assert nodes["orders_snapshot"]["status"] == "success"
    tests = [n for n in record.nodes if n["resource_type"] == "test"]
    assert len(tests) == 6 and all(t["status"] == "pass" for t in tests)
    assert {"unique_stg_orders_order_id", "assert_amount_at_least_floor"} <= {
        t["name"] for t in tests
    }
    for node in record.nodes:
        assert node["unique_id"].startswith(("model.", "test.", "snapshot.")), node
        assert node["execution_time"] >= 0
    assert (record.quality_checks_passed, record.quality_checks_failed) == (6, 0)
    assert record.rows_loaded == 0  # dbt-duckdb reports no row counts; none are invented
    [freshness] = [c for c in record.checks if c.kind == "dbt_freshness"]
    assert freshness.name == "freshness silver.orders" and freshness.passed
    checked = {c.name: c.status for c in record.checks if c.kind == "dbt_test"}
    assert checked == {t["name"]: "pass" for t in tests}  # each test, typed like weir's checks


def test_record_is_persisted(built: Built) -> None:
    lines = (built.root / ".weir/runs.jsonl").read_text().splitlines()
    mine = [json.loads(line) for line in lines if json.loads(line)["run_id"] == built.first.run_id]
    assert len(mine) == 1 and mine[0]["kind"] == "dbt" and len(mine[0]["nodes"]) == 9
    # the step's definition as it ran: what `state:modified` compares the step with later
    assert set(mine[0]["definition"]) == {"selection", "files"}
    assert modified(load_project(built.root), {"shop": Node("shop", "dbt", (), (), ())}) == {}


def test_snapshot_has_a_row_per_order(built: Built) -> None:
    rows = query(
        built.warehouse,
        "SELECT order_id, dbt_valid_to FROM main.orders_snapshot ORDER BY order_id",
    )
    assert rows == [(i, None) for i, a, _ in ORDERS if a >= -100]


# ---------------------------------------------------------------- lineage
def test_dbt_graph_links_silver_orders_through_staging_to_the_mart(built: Built) -> None:
    project = load_project(built.root)
    graph = dbt_graph(project, project.dbt_steps["shop"])
    source = f"source.{PKG}.silver.orders"
    stg, fct, snap = (
        f"model.{PKG}.stg_orders",
        f"model.{PKG}.fct_daily_orders",
        f"snapshot.{PKG}.orders_snapshot",
    )
    assert {(source, stg), (stg, fct), (stg, snap)} <= set(graph.edges)
    assert graph.nodes[source].weir_table == "silver.orders"
    assert graph.nodes[source].resource_type == "source"
    assert graph.nodes[fct].relation == "main.fct_daily_orders"
    assert graph.nodes[stg].columns == (
        "order_id",
        "customer_hash",
        "amount",
        "dq_valid",
        "updated_at",
        "order_date",
    )
    assert graph.nodes[fct].weir_table is None
    tests_of_stg = [c for p, c in graph.edges if p == stg and c.startswith("test.")]
    assert len(tests_of_stg) >= 3


def test_dbt_graph_parses_a_step_that_never_ran(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", {"shop": step_file("shop")})
    project = load_project(root)
    graph = dbt_graph(project, project.dbt_steps["shop"])
    assert (f"model.{PKG}.stg_orders", f"model.{PKG}.fct_daily_orders") in graph.edges
    # silver.orders has not been loaded, but it is a weir table: the source maps onto it
    assert graph.nodes[f"source.{PKG}.silver.orders"].weir_table == "silver.orders"


# ---------------------------------------------------------------- gates and failures
def test_stale_source_stops_the_step_before_the_build(built: Built) -> None:
    record = run_step(built.root, "shop_stale")
    assert (record.status, record.stage) == ("failed", "freshness")
    assert record.error_message is not None
    assert "silver.orders last loaded 7" in record.error_message  # 72 h and some seconds
    assert "error after 24 hour" in record.error_message
    assert record.nodes == []
    [stale] = record.checks
    assert (stale.kind, stale.status, stale.severity) == ("dbt_freshness", "fail", "error")
    tables = query(
        built.root / ".weir/dbt/shop_stale.duckdb",
        "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1",
    )
    assert tables == [("silver.orders",)]  # weir's view, and nothing dbt built


def test_failing_dbt_test_fails_the_step_and_names_the_test(built: Built) -> None:
    record = run_step(built.root, "shop_strict")  # vars: amount_floor 15 > orders 1 and 5
    assert (record.status, record.stage) == ("failed", "build")
    assert record.error_message is not None
    assert "test assert_amount_at_least_floor failed (2 failing rows)" in record.error_message
    nodes = by_name(record)
    assert nodes["assert_amount_at_least_floor"]["status"] == "fail"
    assert nodes["assert_amount_at_least_floor"]["failures"] == 2
    # dbt build skips what depends on a failed test: the mart and the snapshot
    assert nodes["fct_daily_orders"]["status"] == "skipped"
    assert "fct_daily_orders" in record.error_message
    assert any("skipped" in w and "fct_daily_orders" in w for w in record.warnings)
    assert record.quality_checks_failed == 1
    [failed] = [c for c in record.checks if not c.passed]
    assert (failed.name, failed.kind, failed.failing_rows) == (
        "assert_amount_at_least_floor",
        "dbt_test",
        2,
    )


def test_rerun_without_changes_and_after_new_data(built: Built) -> None:
    again = run_step(built.root, "shop")
    assert again.status == "success", again.error_message
    snapshot = "SELECT count(*) FROM main.orders_snapshot"
    assert query(built.warehouse, snapshot) == [(5,)]
    # order 1 moves to January 4th with a new amount: the view shows the new Delta version
    load_orders(built.root, [(1, 15.0, 4)])
    third = run_step(built.root, "shop")
    assert third.status == "success", third.error_message
    assert third.table_versions["silver.orders"] == 1
    daily = query(built.warehouse, "SELECT * FROM main.fct_daily_orders ORDER BY order_date")
    assert daily == expected_daily([*ORDERS, (1, 15.0, 4)])
    versions = query(
        built.warehouse,
        "SELECT amount, dbt_valid_to IS NULL FROM main.orders_snapshot "
        "WHERE order_id = 1 ORDER BY dbt_valid_from",
    )
    assert versions == [(10.0, False), (15.0, True)]


def test_weir_run_json_stays_machine_readable(built: Built) -> None:
    """`weir run --json` prints JSON only: dbt's console output must stay off stdout."""
    command = ["run", "shop", "shop_strict", "--project", str(built.root), "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "weir.cli", *command],
        env={**os.environ, "WEIR_PII_SALT": SALT},
        capture_output=True,
        text=True,
        timeout=300,
    )
    runs = {r["pipeline_name"]: r for r in json.loads(done.stdout)["runs"]}
    assert done.returncode == 1, done.stderr  # one of them failed
    assert runs["shop"]["status"] == "success" and runs["shop"]["kind"] == "dbt"
    assert runs["shop_strict"]["status"] == "failed"
    assert len(runs["shop"]["nodes"]) == 9


def test_missing_table_is_a_warning_and_a_model_error_names_the_model(tmp_path: Path) -> None:
    # silver.orders was never loaded: no view for it, so stg_orders cannot build
    root = make_project(tmp_path / "proj", {"shop": step_file("shop", freshness=False)})
    record = run_step(root, "shop")
    assert (record.status, record.stage) == ("failed", "build")
    assert record.warnings[0].startswith("silver.orders does not exist yet")
    assert record.table_versions == {"silver.orders": None}
    assert record.error_message is not None
    assert "dbt build failed: model stg_orders errored:" in record.error_message
    assert "orders does not exist" in record.error_message
    nodes = by_name(record)
    assert nodes["stg_orders"]["status"] == "error"
    assert nodes["fct_daily_orders"]["status"] == "skipped"
    assert record.checks == []  # freshness: false skipped the gate


def test_sources_without_freshness_pass_the_gate(built: Built) -> None:
    record = run_step(built.root, "shop_nofresh")
    assert record.status == "success", record.error_message
    assert [c.kind for c in record.checks if c.kind != "dbt_test"] == []  # no freshness


# ---------------------------------------------------------------- configuration errors
def test_missing_dbt_project_is_a_config_error_with_file_and_line(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "proj", {"shop": step_file("shop", project_dir="analytics")}, dbt_dirs=False
    )
    with pytest.raises(ConfigError, match="'analytics' does not exist") as info:
        load_project(root)
    assert info.value.where == f"{root / 'pipelines/shop.yml'}:7"


def test_folder_without_dbt_project_yml_is_a_config_error(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", {"shop": step_file("shop", project_dir="empty")})
    (root / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no dbt_project\.yml") as info:
        load_project(root)
    assert str(info.value.where).endswith("shop.yml:7")


def test_unknown_table_in_reads_suggests_the_right_one(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", {"shop": step_file("shop", reads=["silver.order"])})
    with pytest.raises(ConfigError, match=r"unknown table 'silver\.order'") as info:
        load_project(root)
    assert info.value.where == f"{root / 'pipelines/shop.yml'}:8"
    assert info.value.hint == "did you mean 'silver.orders'?"


def test_step_named_like_a_pipeline_is_a_config_error(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", {"zz_orders": step_file("orders")})
    with pytest.raises(ConfigError, match="has the name of another") as info:
        load_project(root)
    assert str(info.value.where).endswith("zz_orders.yml:1")


def test_unknown_kind_is_a_config_error(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", {"shop": {**step_file("shop"), "kind": "dtb"}})
    with pytest.raises(ConfigError, match="unknown kind 'dtb'") as info:
        load_project(root)
    assert info.value.hint == "did you mean 'dbt'?"


def test_depends_on_defaults_to_every_weir_table(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", {"shop": step_file("shop")})
    project = load_project(root)
    step = project.dbt_steps["shop"]
    assert step.depends_on == ("silver.orders",)
    assert step.spec.warehouse == ".weir/dbt/shop.duckdb"
    assert "shop" not in project.pipelines
