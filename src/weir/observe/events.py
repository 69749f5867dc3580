"""The typed events of a run, which observers receive, and their JSON form.

A run tells its observers what happens as it happens::

    RunStarted(nodes)                                 once, before any node (run.api.run)
    NodeStarted(node, kind, run_id, inputs, outputs)  a node holds its lock and begins
    NodeStage(node, kind, run_id, stage)              it entered a stage: extract, bronze, …
    NodeProgress(node, kind, run_id, message, …)      a line of progress, maybe with counts
    NodeFinished(node, kind, record, …)               it ended (any status), or was skipped

An observer is any callable that takes one event. Events are frozen, and every text in them
is already scrubbed of secrets. ``NodeFinished.record`` is the run's :class:`RunRecord`;
the observers that hear it before the run-record writer (OpenLineage) may add a warning to
it, the others only read it (see :func:`weir.observe.observers.observers_for`).

The stages a node goes through (``NodeStage.stage``, and ``RunRecord.stage`` after it):

- pipeline: ``position`` → ``catch-up`` (a batch an earlier run left in bronze) →
  ``extract`` → ``bronze`` → ``transform`` → ``quarantine`` → ``silver``; ``up-to-date``
  when the source had nothing new; ``rebuild`` for ``--full-refresh``; ``deletes`` while
  deletes are reconciled by key (after the load; back to the stage before when nothing
  changed); ``rejected`` for ``weir batches reject``
- model: ``position`` → ``read`` → ``transform`` → ``gold`` → ``checks``
- dbt step: ``warehouse`` → ``profile`` → ``freshness`` → ``build``

A run that fails before any stage has ``start``; a skipped node has ``upstream``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from weir.observe.record import RunRecord

Kind = Literal["pipeline", "model", "dbt"]


@dataclass(frozen=True)
class RunStarted:
    """The selected nodes, in the order they were selected (before any of them starts)."""

    nodes: tuple[str, ...]


@dataclass(frozen=True)
class NodeStarted:
    """A node holds its lock and begins; ``inputs`` and ``outputs`` are the qualified
    tables it reads and writes (``source.orders``, ``silver.orders``, ``gold.daily``)."""

    node: str
    kind: Kind
    run_id: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeStage:
    """A node entered ``stage`` (see the module docstring for each kind's stages)."""

    node: str
    kind: Kind
    run_id: str
    stage: str


@dataclass(frozen=True)
class NodeProgress:
    """A line of progress from a running node. ``done`` counts ``unit`` (rows, batches) so
    far, of ``total`` when that is known (then a display can show a rate and an ETA)."""

    node: str
    kind: Kind
    message: str
    run_id: str = ""
    done: int | None = None
    total: int | None = None
    unit: str = "rows"


@dataclass(frozen=True)
class NodeFinished:
    """A node ended: ran (any status) or was skipped because an upstream node failed."""

    node: str
    kind: Kind
    record: RunRecord
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


Event = RunStarted | NodeStarted | NodeStage | NodeProgress | NodeFinished
Observer = Callable[[Event], None]

NAMES: dict[type[Any], str] = {
    RunStarted: "run_started",
    NodeStarted: "node_started",
    NodeStage: "node_stage",
    NodeProgress: "node_progress",
    NodeFinished: "node_finished",
}
"""Each event's name in its JSON form (the ``event`` field)."""


def as_dict(event: Event) -> dict[str, Any]:
    """The event as plain JSON values: ``{"event": "node_stage", "node": …, …}``; a
    finished node's record is its :meth:`RunRecord.as_dict`."""
    data: dict[str, Any] = {"event": NAMES[type(event)]}
    for f in fields(event):
        value = getattr(event, f.name)
        if f.name == "record":
            value = value.as_dict()
        elif isinstance(value, tuple):
            value = list(value)
        data[f.name] = value
    return data


def notify(observers: list[Observer] | tuple[Observer, ...], event: Event) -> None:
    """Give ``event`` to each observer in turn."""
    for observer in observers:
        observer(event)
