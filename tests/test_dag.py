"""The run graph's executor: parallel branches, skip-on-failure, selection order."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from modelkit import events_project
from weir.errors import ConfigError
from weir.observe.record import RunRecord
from weir.run import dag
from weir.spec import load_project
from weir.toposort import CycleError, topological

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
