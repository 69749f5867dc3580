"""The eight health metrics of every node and of the project, from the state store's runs.

The seeds' "Pipeline Health Dashboard", computed with SQL aggregates over a window
(``health.window_days``, default 7) of the ``runs`` table (docs/health.md has the formulas):

- ``success_rate``: successful / finished runs (``partial`` is not a success: it loaded, but
  rows went to quarantine; ``skipped`` and ``running`` are not finished runs);
- ``runtime``: the average duration of finished runs against the pipeline's ``sla_minutes``;
- ``freshness``: hours since the last successful (or partial) load with new rows, against
  the contract's freshness SLA (as ``weir status`` measures it);
- ``volume_variance``: how far the last load's ``rows_loaded`` is from the average of the
  loads before it (loads: successful or partial runs that brought new rows);
- ``quality_pass_rate``: passed / (passed + failed) quality checks;
- ``failed_24h``: failed runs in the last 24 hours;
- ``backfill_queue``: n/a: weir has no backfill queue yet;
- ``cost``: compute seconds (the sum of run durations), in money with
  ``price_per_compute_hour``; with the bytes read and written.

Models and dbt steps have success rate, runtime (no SLA: no status), failed runs, quality and
cost. A metric's status is ``ok`` (meets the target), ``warn`` (misses it, not past the
alert threshold), ``alert``, or None when there is no data or nothing to compare with.
Times are compared as the store keeps them: ISO 8601 in UTC with milliseconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from weir.errors import UsageError
from weir.hints import did_you_mean

if TYPE_CHECKING:
    from weir.spec import Project
    from weir.spec.health import Health, Threshold

Kind = Literal["pipeline", "model", "dbt"]
Status = Literal["ok", "warn", "alert"]
Better = Literal["higher", "lower"]

METRICS = (
    "success_rate",
    "runtime",
    "freshness",
    "volume_variance",
    "quality_pass_rate",
    "failed_24h",
    "backfill_queue",
    "cost",
)
"""Every metric's name, in the order the view shows them."""
LAYERS: dict[Kind, str] = {"pipeline": "silver", "model": "gold", "dbt": "dbt"}
"""The layer a node's output lands in (a pipeline writes bronze too; silver is its product)."""
_RANK: dict[Status | None, int] = {None: 0, "ok": 1, "warn": 2, "alert": 3}
_FINISHED = "('success', 'partial', 'failed')"
BACKFILL_NOTE = "weir has no backfills yet: there is no queue to count"


@dataclass(frozen=True)
class Metric:
    name: str
    value: float | None
    unit: str
    target: float | None
    """The target in the value's unit (None: nothing to compare with, e.g. no SLA)."""
    alert: float | None
    better: Better
    status: Status | None
    note: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    """The numbers behind the value (runs counted, the SLA, bytes, …)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "alert": self.alert,
            "better": self.better,
            "status": self.status,
            "note": self.note,
            **self.detail,
        }


@dataclass(frozen=True)
class NodeVitals:
    name: str
    kind: Kind
    tier: int | None
    """A pipeline's ``tier`` (1-3); None for models and dbt steps."""
    metrics: tuple[Metric, ...]

    @property
    def layer(self) -> str:
        return LAYERS[self.kind]

    @property
    def status(self) -> Status | None:
        return worst(m.status for m in self.metrics)

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "tier": self.tier,
            "layer": self.layer,
            "status": self.status,
            "metrics": {m.name: m.as_dict() for m in self.metrics},
        }


@dataclass(frozen=True)
class ProjectHealth:
    computed_at: str
    window_days: int
    nodes: tuple[NodeVitals, ...]
    metrics: tuple[Metric, ...]
    """Over the runs of every node shown: success rate, quality, failed runs, backfills,
    cost (runtime, freshness and volume are each node's own, against its own SLA)."""

    @property
    def status(self) -> Status | None:
        return worst([*(n.status for n in self.nodes), *(m.status for m in self.metrics)])

    def alerts(self) -> list[str]:
        """``node.metric`` (``project.metric``) of every metric in alert."""
        found = [f"{n.name}.{m.name}" for n in self.nodes for m in n.metrics if m.status == "alert"]
        return found + [f"project.{m.name}" for m in self.metrics if m.status == "alert"]

    def node(self, name: str) -> NodeVitals:
        return next(n for n in self.nodes if n.name == name)

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "computed_at": self.computed_at,
            "window_days": self.window_days,
            "status": self.status,
            "alerts": self.alerts(),
            "project": {m.name: m.as_dict() for m in self.metrics},
            "nodes": [n.as_dict() for n in self.nodes],
        }


def worst(statuses: Iterable[Status | None]) -> Status | None:
    return max(statuses, key=_RANK.__getitem__, default=None)


def judge(
    value: float | None, target: float | None, alert: float | None, better: Better
) -> Status | None:
    """``ok`` at or past the target, ``alert`` beyond the alert threshold, else ``warn``."""
    if value is None or target is None or alert is None:
        return None
    if better == "higher":
        return "alert" if value < alert else "ok" if value >= target else "warn"
    return "alert" if value > alert else "ok" if value <= target else "warn"


def iso(when: datetime) -> str:
    """``when`` as the store writes times (run records' ``now_iso``), so text compares."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------- the view
def project_health(
    project: Project, *, now: datetime | None = None, nodes: Sequence[str] | None = None
) -> ProjectHealth:
    """The health of ``nodes`` (default: every pipeline, model and dbt step, in that order)
    and of the project, as of ``now`` (default: the current time; runs after it are left
    out). An unknown node name is a UsageError."""
    from weir.state.sqlite import StateStore

    now = (now or datetime.now(UTC)).astimezone(UTC)
    config = project.spec.health
    chosen = _nodes(project, nodes)
    since = now - timedelta(days=config.window_days)
    with closing(StateStore(project.root / project.spec.state).connect()) as con:
        windows = _window_stats(con, since, now)
        shown = []
        for name, kind in chosen:
            stats = windows.get(name, _Stats())
            loads = _loads(con, name, now, config.volume_runs + 1) if kind == "pipeline" else []
            shown.append(_vitals(project, name, kind, stats, loads, now))
    total = sum((windows.get(name, _Stats()) for name, _ in chosen), _Stats())
    return ProjectHealth(
        computed_at=iso(now),
        window_days=config.window_days,
        nodes=tuple(shown),
        metrics=(
            _success(total, config),
            _quality(total, config),
            _failed(total, config),
            _backfill(config),
            _cost(total, config, budget=True),
        ),
    )


def _nodes(project: Project, names: Sequence[str] | None) -> list[tuple[str, Kind]]:
    every: list[tuple[str, Kind]] = [(n, "pipeline") for n in sorted(project.pipelines)]
    every += [(n, "model") for n in sorted(project.models)]
    every += [(n, "dbt") for n in sorted(project.dbt_steps)]
    if not names:
        return every
    kinds = dict(every)
    for name in names:
        if name not in kinds:
            raise UsageError(
                f"no pipeline, model or dbt step named {name!r} in {project.root}",
                hint=did_you_mean(name, kinds) or "the project has no nodes yet",
            )
    return [(n, k) for n, k in every if n in set(names)]


def _vitals(
    project: Project,
    name: str,
    kind: Kind,
    stats: _Stats,
    loads: list[sqlite3.Row],
    now: datetime,
) -> NodeVitals:
    config = project.spec.health
    metrics: tuple[Metric, ...]
    if kind != "pipeline":
        metrics = (
            _success(stats, config),
            _runtime(stats, config, None),
            _quality(stats, config),
            _failed(stats, config),
            _cost(stats, config),
        )
        return NodeVitals(name, kind, None, metrics)
    pipeline = project.pipelines[name]
    metrics = (
        _success(stats, config),
        _runtime(stats, config, pipeline.spec.sla_minutes),
        _freshness(loads, config, pipeline.contract.freshness_hours, now),
        _volume(loads, config),
        _quality(stats, config),
        _failed(stats, config),
        _backfill(config),
        _cost(stats, config),
    )
    return NodeVitals(name, kind, pipeline.spec.tier, metrics)


# ---------------------------------------------------------------- the queries
@dataclass(frozen=True)
class _Stats:
    """One node's (or, summed, the project's) runs in the window."""

    finished: int = 0
    succeeded: int = 0
    failed_24h: int = 0
    seconds: float = 0.0
    checks_passed: int = 0
    checks_failed: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    def __add__(self, other: _Stats) -> _Stats:
        return _Stats(*(a + b for a, b in zip(self.row(), other.row(), strict=True)))

    def row(self) -> tuple[Any, ...]:
        return (
            self.finished,
            self.succeeded,
            self.failed_24h,
            self.seconds,
            self.checks_passed,
            self.checks_failed,
            self.bytes_read,
            self.bytes_written,
        )


def _window_stats(con: sqlite3.Connection, since: datetime, now: datetime) -> dict[str, _Stats]:
    """Every node's aggregates over ``[since, now]``: one grouped scan of the window
    (index ``runs_by_start``)."""
    sql = (
        "SELECT pipeline_name, "
        f"count(*) FILTER (WHERE status IN {_FINISHED}), "
        "count(*) FILTER (WHERE status = 'success'), "
        "count(*) FILTER (WHERE status = 'failed' AND started_at >= :day), "
        f"total(duration_seconds) FILTER (WHERE status IN {_FINISHED}), "
        "total(quality_checks_passed), total(quality_checks_failed), "
        "total(json_extract(detail, '$.bytes_read')), "
        "total(json_extract(detail, '$.bytes_written')) "
        "FROM runs WHERE started_at >= :since AND started_at <= :now GROUP BY pipeline_name"
    )
    args = {"since": iso(since), "now": iso(now), "day": iso(now - timedelta(hours=24))}
    out = {}
    for name, finished, ok, failed, seconds, passed, bad, read, written in con.execute(sql, args):
        out[name] = _Stats(
            finished, ok, failed, seconds, int(passed), int(bad), int(read), int(written)
        )
    return out


def _loads(con: sqlite3.Connection, pipeline: str, now: datetime, limit: int) -> list[sqlite3.Row]:
    """The newest ``limit`` loads of ``pipeline`` up to ``now`` (successful or partial runs
    that brought new rows), newest first: index ``runs_by_pipeline`` read backwards."""
    sql = (
        "SELECT completed_at, started_at, rows_loaded FROM runs "
        "WHERE pipeline_name = ? AND started_at <= ? AND status IN ('success', 'partial') "
        "AND rows_extracted > 0 ORDER BY started_at DESC LIMIT ?"
    )
    return con.execute(sql, [pipeline, iso(now), limit]).fetchall()


# ---------------------------------------------------------------- the metrics
def _metric(
    name: str,
    value: float | None,
    unit: str,
    limits: tuple[float | None, float | None],
    better: Better,
    note: str | None = None,
    **detail: Any,
) -> Metric:
    target, alert = limits
    status = judge(value, target, alert, better)
    return Metric(name, value, unit, target, alert, better, status, note, detail)


def _limits(threshold: Threshold) -> tuple[float, float]:
    return threshold.target, threshold.alert


def _success(s: _Stats, config: Health) -> Metric:
    value = 100.0 * s.succeeded / s.finished if s.finished else None
    note = None if s.finished else "no finished runs in the window"
    limits = _limits(config.success_rate)
    return _metric(
        "success_rate", value, "%", limits, "higher", note, runs=s.finished, succeeded=s.succeeded
    )


def _runtime(s: _Stats, config: Health, sla_minutes: int | None) -> Metric:
    value = s.seconds / s.finished if s.finished else None
    if sla_minutes is None:
        note = "no sla_minutes" if value is not None else "no finished runs in the window"
        return _metric("runtime", value, "s", (None, None), "lower", note, sla_seconds=None)
    sla = sla_minutes * 60.0
    limits = (sla * config.runtime.target / 100, sla * config.runtime.alert / 100)
    empty = None if value is not None else "no finished runs in the window"
    return _metric("runtime", value, "s", limits, "lower", empty, sla_seconds=sla)


def _freshness(
    loads: list[sqlite3.Row], config: Health, sla_hours: float | None, now: datetime
) -> Metric:
    value = None
    if loads:
        loaded = datetime.fromisoformat(loads[0]["completed_at"] or loads[0]["started_at"])
        value = (now - loaded).total_seconds() / 3600
    note = None if loads else "no load with new rows yet"
    limits: tuple[float | None, float | None] = (None, None)
    if sla_hours is None:
        note = note or "the contract has no freshness SLA"
    else:
        limits = (
            sla_hours * config.freshness.target / 100,
            sla_hours * config.freshness.alert / 100,
        )
    last = loads[0]["completed_at"] if loads else None
    return _metric(
        "freshness", value, "h", limits, "lower", note, sla_hours=sla_hours, loaded_at=last
    )


def _volume(loads: list[sqlite3.Row], config: Health) -> Metric:
    limits = _limits(config.volume_variance)
    if len(loads) < 2:
        note = "needs a load before the last one to compare with"
        return _metric("volume_variance", None, "%", limits, "lower", note)
    last = int(loads[0]["rows_loaded"] or 0)
    before = [int(r["rows_loaded"] or 0) for r in loads[1:]]
    average = sum(before) / len(before)
    if average == 0:
        note = "the loads before the last one loaded no rows"
        return _metric("volume_variance", None, "%", limits, "lower", note, rows_loaded=last)
    value = abs(last - average) / average * 100
    return _metric(
        "volume_variance",
        value,
        "%",
        limits,
        "lower",
        None,
        rows_loaded=last,
        average_rows=average,
        compared_runs=len(before),
    )


def _quality(s: _Stats, config: Health) -> Metric:
    checks = s.checks_passed + s.checks_failed
    value = 100.0 * s.checks_passed / checks if checks else None
    note = None if checks else "no quality checks ran in the window"
    limits = _limits(config.quality_pass_rate)
    return _metric(
        "quality_pass_rate",
        value,
        "%",
        limits,
        "higher",
        note,
        checks=checks,
        passed=s.checks_passed,
    )


def _failed(s: _Stats, config: Health) -> Metric:
    return _metric("failed_24h", s.failed_24h, "runs", _limits(config.failed_24h), "lower")


def _backfill(config: Health) -> Metric:
    return _metric(
        "backfill_queue", None, "requests", _limits(config.backfill_queue), "lower", BACKFILL_NOTE
    )


def _cost(s: _Stats, config: Health, *, budget: bool = False) -> Metric:
    """Compute time, in money with a price; against the budget for the project only."""
    detail = {
        "compute_seconds": s.seconds,
        "bytes_read": s.bytes_read,
        "bytes_written": s.bytes_written,
        "runs": s.finished,
    }
    price = config.price_per_compute_hour
    if price is None:
        return _metric("cost", s.seconds, "s", (None, None), "lower", None, **detail)
    money = s.seconds / 3600 * price
    limits: tuple[float | None, float | None] = (None, None)
    if budget and config.cost.budget is not None:
        limits = (config.cost.budget, config.cost.budget * config.cost.alert_percent / 100)
    return _metric("cost", money, config.currency, limits, "lower", None, **detail)
