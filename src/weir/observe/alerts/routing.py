"""Which channels a node's alerts go to, and what the alert needs to know of the node (its
kind, tier and runtime SLA).

A pipeline that sets ``error_handling.alert_channels`` uses its own list (``[]``: none);
one that does not (also one whose ``error_handling`` sets other fields only), every model
and every dbt step use weir.yml's ``error_handling.alert_channels``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from weir.spec.alerts import Channel, resolve

if TYPE_CHECKING:
    from weir.observe.events import Kind
    from weir.spec import Project


@dataclass(frozen=True)
class Node:
    name: str
    kind: Kind
    tier: int
    sla_minutes: int | None
    channels: tuple[str, ...]
    """Labels of the channels (``#name``, ``webhook:host~1a2b3c4d``, ``file:PATH``)."""


def node(project: Project, name: str) -> Node | None:
    """What alerts need of node ``name``; None when the project has no such node."""
    if name in project.pipelines:
        spec = project.pipelines[name].spec
        own = spec.error_handling
        uses_own = own is not None and "alert_channels" in own.model_fields_set
        entries = own.alert_channels if own is not None and uses_own else _default(project)
        return Node(name, "pipeline", spec.tier, spec.sla_minutes, _labels(project, entries))
    if name in project.dbt_steps:
        step = project.dbt_steps[name].spec
        labels = _labels(project, _default(project))
        return Node(name, "dbt", step.tier, step.sla_minutes, labels)
    if name in project.models:
        return Node(name, "model", 2, None, _labels(project, _default(project)))
    return None


def channels(project: Project) -> dict[str, Channel]:
    """Every channel the project's nodes name, by label."""
    found: dict[str, Channel] = {}
    entries = list(_default(project))
    for pipeline in project.pipelines.values():
        if pipeline.spec.error_handling is not None:
            entries += pipeline.spec.error_handling.alert_channels
    for entry in entries:
        label, channel = resolve(entry, project.spec.alerts)
        found[label] = channel
    return found


def configured(project: Project) -> bool:
    """Whether any node of the project has a channel to alert."""
    names = [*project.pipelines, *project.models, *project.dbt_steps]
    return any((n := node(project, name)) is not None and n.channels for name in names)


def _default(project: Project) -> list[str]:
    return project.spec.error_handling.alert_channels


def _labels(project: Project, entries: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(resolve(e, project.spec.alerts)[0] for e in entries))
