"""The run graph's executor: parallel branches, skip-on-failure, selection order."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from weir.errors import ConfigError
from weir.observe.record import RunRecord
from weir.run import dag
from weir.run.dbt import DbtRun
from weir.run.model import ModelRun
from weir.run.pipeline import PipelineRun
from weir.sources import memory
from weir.spec import load_project
from weir.toposort import CycleError, topological
from weirtest.modelkit import events_project, write_models
from weirtest.projects import SALT, orders_pipeline, write_project

MODELS = {
    "stg_a": "SELECT * FROM silver.events",
    "stg_b": "SELECT * FROM silver.events",
    "mrt_a": "SELECT count(*) AS n FROM gold.stg_a",
    "mrt_b": "SELECT count(*) AS n FROM gold.stg_b",
}


def _record(node: dag.Node, status: str = "success") -> RunRecord:
    record = RunRecord(pipeline_name=node.name, run_id="r", kind=node.kind)
    record.finish(status)  # type: ignore[arg-type]
    return record


def test_graph_reads_dependencies_from_the_sql(tmp_path: Path) -> None:
    nodes = dag.graph(load_project(events_project(tmp_path / "p", MODELS)))
    assert nodes["stg_a"].upstream == ("events",)
    assert nodes["mrt_b"].upstream == ("stg_b",)
    order = dag.select(nodes, [])
    assert order.index("events") < order.index("stg_a") < order.index("mrt_a")


def test_independent_branches_run_at_the_same_time(tmp_path: Path) -> None:
    project = load_project(events_project(tmp_path / "p", MODELS))
    nodes = dag.graph(project)
    # both staging models must be inside run() together, or the barrier breaks (5 s)
    together = threading.Barrier(2, timeout=5)

    def run(node: dag.Node) -> RunRecord:
        if node.name in ("stg_a", "stg_b"):
            together.wait()
        return _record(node)

    records = dag.execute(project, nodes, dag.select(nodes, []), run, threads=2)
    assert [r.status for r in records] == ["success"] * 5


def test_a_failure_skips_only_its_descendants(tmp_path: Path) -> None:
    project = load_project(events_project(tmp_path / "p", MODELS))
    nodes = dag.graph(project)
    ran: list[str] = []

    def run(node: dag.Node) -> RunRecord:
        ran.append(node.name)
        return _record(node, "failed" if node.name == "stg_a" else "success")

    records = {
        r.pipeline_name: r
        for r in dag.execute(project, nodes, dag.select(nodes, []), run, threads=1)
    }
    assert records["stg_a"].status == "failed"
    assert records["mrt_a"].status == "skipped" and "stg_a" in (
        records["mrt_a"].error_message or ""
    )
    assert records["mrt_b"].status == "success" and "mrt_a" not in ran


def test_topological_order_is_by_dependency_then_by_name() -> None:
    # z reads nothing, so it is ready first but sorts last among the ready ones
    graph = {"z": [], "b": ["a", "outside"], "a": [], "c": ["b", "z"], "d": []}
    assert topological(graph) == ["a", "b", "d", "z", "c"]
    assert topological(dict(reversed(graph.items()))) == ["a", "b", "d", "z", "c"]


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"c": ["a"], "a": ["b"], "b": ["c"], "x": []}, ["a", "b", "c", "a"]),
        ({"m": ["m"]}, ["m", "m"]),
    ],
)
def test_a_cycle_names_its_nodes_in_reading_order(
    graph: dict[str, list[str]], cycle: list[str]
) -> None:
    with pytest.raises(CycleError) as info:
        topological(graph)
    assert info.value.cycle == cycle and str(info.value) == " → ".join(cycle)


@pytest.mark.parametrize(
    ("models", "message", "where"),
    [
        (
            {
                "c": "SELECT * FROM gold.a",
                "a": "SELECT * FROM gold.b",
                "b": "SELECT * FROM gold.c",
                "ok": "SELECT * FROM silver.events",
            },
            "models depend on each other in a cycle: a → b → c → a",
            "a.sql",
        ),
        ({"self": "SELECT * FROM gold.self"}, "in a cycle: self → self", "self.sql"),
    ],
)
def test_the_loader_names_a_model_cycle(
    tmp_path: Path, models: dict[str, str], message: str, where: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_project(events_project(tmp_path / "p", models))
    assert message in info.value.message
    assert (info.value.where or "").endswith(where)


@pytest.mark.slow
def test_a_dbt_step_leaves_the_working_directory_of_other_nodes_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What runs inside dbt (here a Python model that moves into the dbt project and stays a
    while) runs in a child process: a node running beside the step sees weir's working
    directory throughout, and so does weir afterwards."""
    monkeypatch.setenv("WEIR_PII_SALT", SALT)
    monkeypatch.chdir(tmp_path)
    extract = {"source": "memory", "dataset": "dag_orders"}
    root = write_project(tmp_path / "p", pipelines={"orders": orders_pipeline(extract=extract)})
    shutil.copytree(Path(__file__).parent / "dbt_project", root / "dbt")
    (root / "dbt/models/marts/wander.py").write_text(
        "import os, time\n\n\ndef model(dbt, session):\n"
        "    os.chdir('/')\n"
        "    time.sleep(1)\n"
        "    return session.sql('SELECT 1 AS x')\n"
    )
    step = {
        "name": "shop",
        "kind": "dbt",
        "owner": "analytics",
        "dbt": {"reads": ["silver.orders"]},
    }
    (root / "pipelines" / "shop.yml").write_text(yaml.safe_dump(step))
    write_models(root, {"beside": "SELECT count(*) AS n FROM silver.orders"})
    memory.register("dag_orders")
    memory.append(
        "dag_orders",
        pa.table(
            {
                "id": pa.array([1, 2], pa.int64()),
                "email": ["a@example.com", "b@example.com"],
                "amount": [10.0, 20.5],
                "updated_at": [dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 2, 12)],
            }
        ),
    )
    project = load_project(root)
    assert PipelineRun(project, project.pipeline("orders")).execute().status == "success"
    nodes = dag.graph(project)
    assert nodes["shop"].upstream == ("orders",) and nodes["beside"].upstream == ("orders",)
    started, finished = threading.Event(), threading.Event()
    seen: list[str] = []

    def run(node: dag.Node) -> RunRecord:
        if node.kind == "dbt":
            return DbtRun(project, project.dbt_steps[node.name]).execute()
        assert started.wait(timeout=60)
        while not finished.is_set():  # sample the directory while dbt works
            seen.append(os.getcwd())
            finished.wait(0.002)
        return ModelRun(project, project.models[node.name]).execute()

    records = dag.execute(
        project,
        nodes,
        ["beside", "shop"],
        run,
        threads=2,
        on_start=lambda n: started.set() if n.kind == "dbt" else None,
        on_done=lambda n, r: finished.set() if n.kind == "dbt" else None,
    )
    assert [r.status for r in records] == ["success", "success"], [r.error_message for r in records]
    built = {n["name"]: n["status"] for n in records[1].nodes}
    assert built["wander"] == "success"
    assert len(seen) > 50 and set(seen) == {str(tmp_path)}
    assert os.getcwd() == str(tmp_path)
