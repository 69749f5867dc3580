"""Running a project: the one call behind ``weir run``, for any caller.

A command line, a scheduler, an HTTP API, Airflow or Dagster call :func:`run` with the
selectors and their observers, and get the run records back::

    from weir.run.api import NodeFinished, run
    from weir.spec import load_project

    def report(event):
        if isinstance(event, NodeFinished):
            print(event.node, event.record.status)

    records = run(load_project(Path("my_project")), ["+mrt_daily"], observers=[report])

Observers receive the typed events of :mod:`weir.observe.events` (re-exported here):
``RunStarted``, then per node ``NodeStarted``, ``NodeStage``, ``NodeProgress`` and
``NodeFinished``. The project's own observers (the run-record writer, OpenLineage when
weir.yml configures it) hear each event first. Observers may be called from the worker
threads that run independent nodes at the same time, so an observer that keeps state guards
it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from weir.observe.events import (
    Event,
    NodeFinished,
    NodeProgress,
    NodeStage,
    NodeStarted,
    Observer,
    RunStarted,
    notify,
)
from weir.observe.observers import observers_for
from weir.run import dag

if TYPE_CHECKING:
    from weir.observe.record import RunRecord
    from weir.run.node import NodeRun
    from weir.spec import Project


__all__ = [
    "Event",
    "NodeFinished",
    "NodeProgress",
    "NodeStage",
    "NodeStarted",
    "Observer",
    "RunStarted",
    "run",
    "runner",
]


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
    selected = dag.select(nodes, list(selectors), exclude, modified=lambda: _modified(project))
    project.require_env(selected)  # before anything runs: a run needs its nodes' secrets only

    everyone = (*observers_for(project), *observers)

    def emit(event: Event) -> None:
        notify(everyone, event)

    def execute(node: dag.Node) -> RunRecord:
        return runner(project, node, wait=wait, full_refresh=full_refresh).execute(everyone)

    emit(RunStarted(tuple(selected)))
    return dag.execute(
        project,
        nodes,
        selected,
        execute,
        threads=threads or project.spec.threads,
        on_skip=lambda n, record: emit(NodeFinished(n.name, n.kind, record)),
    )


def _modified(project: Project) -> set[str]:
    """What ``state:modified`` selects (run/modified.py, imported only when used)."""
    from weir.run.modified import modified

    return set(modified(project, dag.graph(project)))


def _quiet(_: str) -> None:
    return None


def runner(
    project: Project,
    node: dag.Node,
    progress: Callable[[str], None] | None = None,
    *,
    wait: bool = False,
    full_refresh: bool = False,
) -> NodeRun:
    """The run of one node, ready to ``execute(observers)``; ``progress``: a plain-text
    callback for its progress lines besides the events."""
    progress = progress or _quiet
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
