"""The alert an incident's start or end sends: one JSON document, the same for every
channel (each sender renders it its way), stored with the delivery so a retry sends what
the first attempt would have.

Its fields: ``text`` (the one-line summary), ``title``, ``event`` (``opened`` or
``resolved``), ``incident_id``, ``kind``, ``severity``, ``node``, ``node_kind``, ``tier``,
``stage``, ``error``, ``run_id``, ``occurrences``, ``opened_at``, ``resolved_at``,
``first_step``, ``runbook_url``, ``project``, ``target``. Every text is scrubbed of the
project's secrets before it is built into the document.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from weir.observe.alerts.incidents import Incident

if TYPE_CHECKING:
    from weir.spec import Project

_WHAT = {
    "failure": "failed",
    "sla_breach": "ran past its runtime SLA",
    "sla_warning": "is close to its runtime SLA",
    "stale": "has stale data",
}


def alert(project: Project, incident: Incident, event: str) -> dict[str, Any]:
    """The alert for ``incident`` opening (``event="opened"``) or being resolved."""
    d = incident.detail
    title = f"[{incident.severity}] {incident.node} {_WHAT[incident.kind]}"
    if event == "resolved":
        title = f"[{incident.severity}] resolved: {incident.node} {_RESOLVED[incident.kind]}"
    summary = (incident.message or "").split("\n")[0]
    text = f"[{incident.severity}] {summary}" if event == "opened" else title
    if event == "resolved" and d.get("resolution"):
        text += f" ({d['resolution']})"
    if event == "opened" and d.get("first_step"):
        text += f". First: {d['first_step']}"
    runbook = runbook_url(project, incident)
    if event == "opened" and runbook:
        text += f". Runbook: {runbook}"
    return {
        "text": text,
        "title": title,
        "event": event,
        "incident_id": incident.incident_id,
        "kind": incident.kind,
        "severity": incident.severity,
        "node": incident.node,
        "node_kind": d.get("node_kind"),
        "tier": d.get("tier"),
        "stage": d.get("stage"),
        "error": d.get("error"),
        "run_id": incident.run_id,
        "occurrences": incident.occurrences,
        "opened_at": incident.opened_at,
        "resolved_at": incident.resolved_at,
        "first_step": d.get("first_step"),
        "runbook_url": runbook,
        "project": project.spec.name,
        "target": project.target,
    }


_RESOLVED = {
    "failure": "runs again",
    "sla_breach": "runs within its runtime SLA again",
    "sla_warning": "finished within its runtime SLA",
    "stale": "has fresh data again",
}


def runbook_url(project: Project, incident: Incident) -> str | None:
    """weir.yml's ``alerts.runbook_url`` for the incident's node and kind."""
    template = project.spec.alerts.runbook_url
    return None if template is None else template.format(node=incident.node, kind=incident.kind)
