"""Running a project: the one call behind ``weir run``, for any caller.

A command line, a scheduler, an HTTP API, Airflow or Dagster call :func:`run` with the
selectors and their observers, and get the run records back::

    from weir.run.api import NodeFinished, run
    from weir.spec import load_project

    def report(event):
        if isinstance(event, NodeFinished):
            print(event.node, event.record.status)

    records = run(load_project(Path("my_project")), ["+mrt_daily"], observers=[report])

Observers receive typed events. They may be called from the worker threads that run
independent nodes at the same time, so an observer that keeps state guards it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from weir.run import dag

if TYPE_CHECKING:
    from weir.observe.record import RunRecord
    from weir.run.node import NodeRun
    from weir.spec import Project


@dataclass(frozen=True)
class RunStarted:
    """The selected nodes, in the order they were selected (before any of them starts)."""

    nodes: tuple[str, ...]


@dataclass(frozen=True)
class NodeStarted:
    node: str
    kind: dag.Kind


@dataclass(frozen=True)
class NodeProgress:
    """A line of progress from a running node (already scrubbed of secrets)."""

    node: str
    kind: dag.Kind
    message: str


@dataclass(frozen=True)
class NodeFinished:
    """A node ended: ran (any status) or was skipped because an upstream node failed."""

    node: str
    kind: dag.Kind
    record: RunRecord


Event = RunStarted | NodeStarted | NodeProgress | NodeFinished
Observer = Callable[[Event], None]


def run(
    project: Project,
    selectors: Sequence[str] = (),
    *,
    exclude: Sequence[str] = (),
    observers: Sequence[Observer] = (),
    wait: bool = False,
    full_refresh: bool = False,
    threads: int | None = None,
) -> list[RunRecord]:
    """Run the selected nodes (all without selectors; minus what ``exclude`` selects) in
    dependency order, independent ones
    in parallel (``threads``, default weir.yml's); a failure skips only its descendants.

    ``wait``: wait for another run holding a node's lock instead of failing that node.
    ``full_refresh``: rebuild pipelines' silver from bronze and recompute models in full."""
    from weir.quality.validate import check_project

    check_project(project)  # the checks' kinds and columns, before anything runs
    nodes = dag.graph(project)
    selected = dag.select(nodes, list(selectors), exclude)
    project.require_env(selected)  # before anything runs: a run needs its nodes' secrets only

    def emit(event: Event) -> None:
        for observer in observers:
            observer(event)

    def execute(node: dag.Node) -> RunRecord:
        def progress(message: str) -> None:
            emit(NodeProgress(node.name, node.kind, message))

        return runner(project, node, progress, wait=wait, full_refresh=full_refresh).execute()

    emit(RunStarted(tuple(selected)))
    return dag.execute(
        project,
        nodes,
        selected,
        execute,
        threads=threads or project.spec.threads,
        on_start=lambda n: emit(NodeStarted(n.name, n.kind)),
        on_done=lambda n, record: emit(NodeFinished(n.name, n.kind, record)),
    )


def runner(
    project: Project,
    node: dag.Node,
    progress: Callable[[str], None],
    *,
    wait: bool = False,
    full_refresh: bool = False,
) -> NodeRun:
    """The run of one node, ready to ``execute()``."""
    if node.kind == "model":
        from weir.run.model import ModelRun

        return ModelRun(
            project,
            project.models[node.name],
            wait=wait,
            progress=progress,
            full_refresh=full_refresh,
        )
    if node.kind == "dbt":
        from weir.run.dbt import DbtRun

        return DbtRun(project, project.dbt_steps[node.name], wait=wait, progress=progress)
    from weir.run.pipeline import PipelineRun

    return PipelineRun(
        project,
        project.pipelines[node.name],
        wait=wait,
        progress=progress,
        full_refresh=full_refresh,
    )
