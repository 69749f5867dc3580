"""How severe an alert is: from the node's ``tier`` and the incident's kind, by the default
table below unless weir.yml's ``alerts.severity`` says otherwise.

The levels follow the seeds' alert-severity table: P0 revenue or compliance impacting
(respond in 15 min), P1 business-critical data late or stale (1 h), P2 a non-critical
pipeline failed (4 h), P3 a warning or degradation (next business day). Whether a node is
P0 is a business judgement weir cannot make, so no default is P0: a project maps its
tier-1 failures to it with ``alerts.severity: {failure: {1: P0}}``.
"""

from __future__ import annotations

from weir.spec.alerts import LEVELS, AlertKind, Alerts, Level

Tier = int

DEFAULTS: dict[AlertKind, dict[Tier, Level]] = {
    "failure": {1: "P1", 2: "P2", 3: "P3"},
    "sla_breach": {1: "P1", 2: "P2", 3: "P3"},
    "stale": {1: "P1", 2: "P2", 3: "P3"},
    "sla_warning": {1: "P3", 2: "P3", 3: "P3"},
}
"""The default severity of each kind of incident, by the node's tier (1 critical, 2
important, 3 nice-to-have). Models have no tier: they count as tier 2."""


def severity(alerts: Alerts, kind: AlertKind, tier: Tier) -> Level:
    """The level of a ``kind`` incident on a node of ``tier``, weir.yml's overrides first."""
    rule = alerts.severity.get(kind)
    if isinstance(rule, str):
        return rule
    by_tier = {int(key): level for key, level in (rule or {}).items()}
    return by_tier.get(tier, DEFAULTS[kind][tier])


def reaches(level: str, least: str) -> bool:
    """Whether ``level`` is at least as severe as ``least`` (P0 is the most severe)."""
    order: tuple[str, ...] = LEVELS
    return order.index(level) <= order.index(least)
