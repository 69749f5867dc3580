"""The watch: what a running node's elapsed time and a pipeline's data age say, at a tick.

A node's runtime SLA (``sla_minutes``) is watched while it runs: :class:`Running` remembers
when the observer heard it start and the stage it is in; at each tick a node past
``alerts.warn_at`` (80 %) of its SLA is an ``sla_warning``, past all of it an
``sla_breach``. Freshness is the health view's (:func:`weir.observe.health.health`): a
pipeline whose data is older than its contract's freshness SLA is ``stale``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from weir.observe.health import NodeHealth
    from weir.spec import Project

Level = Literal["ok", "sla_warning", "sla_breach"]


@dataclass
class Running:
    """A node the observer heard start and not finish."""

    run_id: str
    started: datetime
    stage: str = "start"
    level: Level = "ok"
    """The furthest this run got: alerted once per level."""


def runtime_level(elapsed_seconds: float, sla_minutes: int, warn_at: float) -> Level:
    """Where ``elapsed_seconds`` of a run stand against its SLA."""
    if elapsed_seconds >= sla_minutes * 60:
        return "sla_breach"
    if elapsed_seconds >= warn_at * sla_minutes * 60:
        return "sla_warning"
    return "ok"


def runtime_message(elapsed_seconds: float, sla_minutes: int, stage: str, level: Level) -> str:
    minutes = elapsed_seconds / 60
    if level == "sla_breach":
        how = f"past its runtime SLA of {sla_minutes} min"
    else:
        how = f"{elapsed_seconds / (sla_minutes * 60):.0%} of its runtime SLA of {sla_minutes} min"
    return f"has run {minutes:.1f} min, {how} (stage {stage})"


RUNTIME_FIRST_STEP = (
    "look for a spike in the source's data volume, the query plan and the machine's load "
    "(CPU, memory, disk); the run goes on meanwhile"
)


def stale_pipelines(project: Project, now: datetime) -> tuple[list[NodeHealth], list[str]]:
    """The pipelines past their freshness SLA at ``now``, and the names of those within it
    (pipelines without an SLA, or without any load yet, are neither)."""
    from weir.observe.health import health

    nodes = [n for n in health(project, now=now) if n.kind == "pipeline" and n.stale is not None]
    return [n for n in nodes if n.stale], [n.name for n in nodes if not n.stale]


def stale_message(node: NodeHealth) -> str:
    assert node.age_hours is not None and node.freshness_sla_hours is not None
    text = (
        f"data is {node.age_hours:.1f} h old, older than its contract's freshness SLA of "
        f"{node.freshness_sla_hours:g} h"
    )
    if node.status == "failed":
        text += "; its last run failed"
    return text


STALE_FIRST_STEP = (
    "find why no run loaded new rows: is the node scheduled, did its runs fail, has the "
    "source stopped delivering? (`weir status`)"
)
