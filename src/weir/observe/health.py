"""The health of every node: its last run and how fresh its data is against its SLA.

What ``weir status`` shows, and what a scheduler, a dashboard or a monitoring probe asks for.
A pipeline's freshness is the time since a successful run last loaded rows, measured against
its contract's freshness SLA (``slaProperties``). Its runtime is measured against the
pipeline's ``sla_minutes``. Models and dbt steps have a last run but no freshness SLA of their
own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the CLI's parser reads FAIL_ON: importing this module must stay cheap
    from weir.spec import Project

Kind = Literal["pipeline", "model", "dbt"]
FAIL_ON = ("stale", "failed", "never")
"""How far a status probe fails (``weir status --fail-on``): ``failed`` a node whose last run
failed; ``stale`` that or a pipeline past its freshness SLA (the default); ``never`` those
or a node that never ran."""


@dataclass(frozen=True)
class NodeHealth:
    name: str
    kind: Kind
    status: str
    """The last run's status (success, partial, failed), or ``never``."""
    last_run: str | None
    """When the last run started (ISO 8601)."""
    age_hours: float | None
    """Hours since a successful run last loaded rows (None: never)."""
    freshness_sla_hours: float | None
    stale: bool | None
    """Past the freshness SLA (None: no SLA, or no data yet)."""
    duration_seconds: float | None
    runtime_sla_minutes: int | None
    rows_loaded: int | None
    error_message: str | None

    def failing(self, fail_on: str) -> bool:
        """Whether this node fails a probe at level ``fail_on`` (one of :data:`FAIL_ON`)."""
        if self.status == "failed":
            return True
        if fail_on in ("stale", "never") and self.stale:
            return True
        return fail_on == "never" and self.status == "never"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def health(project: Project, *, now: datetime | None = None) -> list[NodeHealth]:
    """Every pipeline, model and dbt step of ``project``, in that order, by name."""
    from weir.state.sqlite import StateStore

    now = now or datetime.now(UTC)
    last = StateStore(project.root / project.spec.state).last_runs()
    nodes: list[tuple[str, Kind, float | None, int | None]] = [
        (name, "pipeline", p.contract.freshness_hours, p.spec.sla_minutes)
        for name, p in sorted(project.pipelines.items())
    ]
    nodes += [(name, "model", None, None) for name in sorted(project.models)]
    nodes += [(name, "dbt", None, None) for name in sorted(project.dbt_steps)]
    return [
        _node(name, kind, sla_h, sla_m, last.get(name), now) for name, kind, sla_h, sla_m in nodes
    ]


def _node(
    name: str,
    kind: Kind,
    sla_hours: float | None,
    sla_minutes: int | None,
    run: dict[str, Any] | None,
    now: datetime,
) -> NodeHealth:
    if run is None:
        return NodeHealth(
            name, kind, "never", None, None, sla_hours, None, None, sla_minutes, None, None
        )
    loaded_at = run.get("last_loaded_at")
    age = (now - datetime.fromisoformat(loaded_at)).total_seconds() / 3600 if loaded_at else None
    stale = None if sla_hours is None or age is None else age > sla_hours
    return NodeHealth(
        name,
        kind,
        run["status"],
        run["started_at"],
        age,
        sla_hours,
        stale,
        run["duration_seconds"],
        sla_minutes,
        run["rows_loaded"],
        run["error_message"],
    )
