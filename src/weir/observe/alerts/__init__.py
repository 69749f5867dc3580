"""Alerts: incidents opened and resolved from run events and a watch of SLAs, delivered to
channels with a queue, a rate limit and back-off (docs/alerts.md).

Two entry points::

    alerting = Alerting(project)     # an Observer, and a Ticker for weir serve
    alerting(event)                  # hears NodeStarted / NodeStage / NodeFinished
    alerting.tick(now)               # runtime SLAs of running nodes, freshness, retries
    incidents(project, open_only=True)   # what `weir alerts` and GET /api/alerts show

An incident starts with one alert (status ``open``), is silent while it goes on (a failed
run adds to ``occurrences``), and ends with one ``resolved`` alert: for a failure, when a
run of the node succeeds; for ``sla_breach``, when a run finishes within its SLA; for
``sla_warning``, when the run that raised it finishes within its SLA (past it, the warning
makes way for the breach without an alert of its own); for ``stale``, when the data is
fresh again. Alerting never fails a run: a problem of its own is a logged warning.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from weir.observe.alerts import watch
from weir.observe.alerts.dispatch import Dispatcher, iso
from weir.observe.alerts.incidents import Incident, connected, listing, new_incident
from weir.observe.alerts.incidents import open_or_repeat as _open_or_repeat
from weir.observe.alerts.incidents import resolve as _resolve
from weir.observe.alerts.routing import Node, configured, node
from weir.observe.alerts.severity import severity
from weir.observe.alerts.triage import first_step
from weir.observe.events import Event, NodeFinished, NodeStage, NodeStarted
from weir.observe.record import RunRecord, Scrubber
from weir.spec.alerts import AlertKind

if TYPE_CHECKING:
    from weir.spec import Project

__all__ = ["Alerting", "configured", "incidents"]

log = logging.getLogger("weir.alerts")

RUN_DELIVERY_TIMEOUT = 5.0
"""The most a run waits for one channel when it alerts its own failure; what is not
delivered by then stays queued for the next tick or run."""


class Alerting:
    """The alerts of ``project``'s runs: an Observer of run events and a ticker.

    ``clock``: what "now" is when an event is heard (tests pass a fake one; ticks are given
    their time). Thread-safe: fires run in worker threads while the loop ticks."""

    def __init__(self, project: Project, *, clock: Callable[[], datetime] | None = None):
        from weir.state.sqlite import StateStore

        self.project = project
        self.store = StateStore(project.root / project.spec.state)
        self.dispatch = Dispatcher(project, self.store)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.scrub = Scrubber(project.secrets)
        self._running: dict[str, watch.Running] = {}
        self._lock = threading.Lock()

    # the observer ----------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        try:
            self._hear(event)
        except Exception as exc:  # alerting must never fail a run
            what = type(event).__name__
            log.warning("alerting could not handle %s: %s", what, self.scrub(str(exc)))

    def _hear(self, event: Event) -> None:
        if isinstance(event, NodeStarted):
            with self._lock:
                self._running[event.node] = watch.Running(event.run_id, self.clock())
        elif isinstance(event, NodeStage):
            with self._lock:
                running = self._running.get(event.node)
                if running is not None and running.run_id == event.run_id:
                    running.stage = event.stage
        elif isinstance(event, NodeFinished):
            with self._lock:
                running = self._running.get(event.node)
                if running is not None and running.run_id == event.record.run_id:
                    del self._running[event.node]
                else:
                    running = None
            if event.record.status != "skipped":
                self._finished(event.node, event.record, running)
                self.dispatch.deliver_due(self.clock(), timeout=RUN_DELIVERY_TIMEOUT)

    def _finished(self, name: str, record: RunRecord, running: watch.Running | None) -> None:
        about = node(self.project, name)
        if about is None:
            return
        now = self.clock()
        if record.status == "failed":
            error = self.scrub(record.error_message or "no error message")
            message = f"{name} failed at stage {record.stage}: {error}"
            self._open(about, "failure", now, message, record.run_id, record.stage, error)
        else:
            how = f"run {record.run_id} ended {record.status}"
            self._close(about, "failure", now, how)
        if about.sla_minutes is not None:
            self._runtime_finished(about, about.sla_minutes, record, running, now)

    def _runtime_finished(
        self,
        about: Node,
        sla_minutes: int,
        record: RunRecord,
        running: watch.Running | None,
        now: datetime,
    ) -> None:
        """A finished run against its runtime SLA, measured as the ticks did (from when
        this observer heard it start), else by the record's duration. A failed run's
        failure is its alert: it neither resolves nor opens an SLA incident."""
        seconds = record.duration_seconds
        if running is not None:
            seconds = (now - running.started).total_seconds()
        if record.status == "failed":
            self._close(about, "sla_warning", now, f"run {record.run_id} failed", quiet=True)
            return
        if seconds <= sla_minutes * 60:
            took = f"run {record.run_id} took {seconds / 60:.1f} min"
            self._close(about, "sla_warning", now, took)
            self._close(about, "sla_breach", now, took)
            return
        self._close(about, "sla_warning", now, "escalated to sla_breach", quiet=True)
        text = watch.runtime_message(seconds, sla_minutes, record.stage, "sla_breach")
        text = f"{about.name} {text.replace('has run', 'ran', 1)}"
        self._open(about, "sla_breach", now, text, record.run_id, record.stage)

    # the ticker ------------------------------------------------------------------------

    def tick(self, now: datetime) -> None:
        """Runtime SLAs of the running nodes, freshness SLAs of the pipelines, and the
        deliveries due at ``now``. A failure is logged, never raised (the schedule goes on)."""
        for step in (self._runtime, self._freshness, self.dispatch.deliver_due):
            try:
                step(now)
            except Exception as exc:
                what = step.__name__.strip("_")
                log.warning("alerting could not %s: %s", what, self.scrub(str(exc)))

    def _runtime(self, now: datetime) -> None:
        warn_at = self.project.spec.alerts.warn_at
        crossed: list[tuple[Node, AlertKind, str, watch.Running]] = []
        with self._lock:
            for name, run in self._running.items():
                about = node(self.project, name)
                if about is None or about.sla_minutes is None:
                    continue
                elapsed = (now - run.started).total_seconds()
                level = watch.runtime_level(elapsed, about.sla_minutes, warn_at)
                if level == "ok" or level == run.level or run.level == "sla_breach":
                    continue
                run.level = level  # each level is alerted once per run
                text = watch.runtime_message(elapsed, about.sla_minutes, run.stage, level)
                crossed.append((about, level, f"{name} {text}", run))
        for about, kind, text, run in crossed:
            if kind == "sla_breach":
                self._close(about, "sla_warning", now, "escalated to sla_breach", quiet=True)
            self._open(about, kind, now, text, run.run_id, run.stage)

    def _freshness(self, now: datetime) -> None:
        stale, fresh = watch.stale_pipelines(self.project, now)
        for health in stale:
            about = node(self.project, health.name)
            if about is not None:
                text = f"{health.name}: {watch.stale_message(health)}"
                self._open(about, "stale", now, text, None, None)
        for name in fresh:
            about = node(self.project, name)
            if about is not None:
                self._close(about, "stale", now, "a run loaded new rows")

    # incidents -------------------------------------------------------------------------

    def _open(
        self,
        about: Node,
        kind: AlertKind,
        now: datetime,
        message: str,
        run_id: str | None,
        stage: str | None,
        error: str | None = None,
    ) -> None:
        if kind == "failure":
            step = first_step(about.name, stage or "start", error)
        else:
            step = watch.STALE_FIRST_STEP if kind == "stale" else watch.RUNTIME_FIRST_STEP
        incident = new_incident(
            about.name,
            kind,
            severity(self.project.spec.alerts, kind, about.tier),
            iso(now),
            self.scrub(message),
            run_id=run_id,
            node_kind=about.kind,
            tier=about.tier,
            stage=stage,
            error=error,
            first_step=step,
        )
        with connected(self.store) as con:
            incident, opened = _open_or_repeat(con, incident)
        if opened:
            log.info("alert %s: %s", incident.severity, incident.message)
            self.dispatch.enqueue(incident, "opened", about.channels, now)

    def _close(
        self, about: Node, kind: AlertKind, now: datetime, how: str, *, quiet: bool = False
    ) -> None:
        with connected(self.store) as con:
            incident: Incident | None = _resolve(con, about.name, kind, iso(now), resolution=how)
        if incident is not None and not quiet:
            self.dispatch.enqueue(incident, "resolved", about.channels, now)


def incidents(
    project: Project, *, open_only: bool = False, limit: int = 50
) -> list[dict[str, Any]]:
    """The project's incidents, newest first, as JSON values: the incident's fields
    (``incident_id``, ``node``, ``kind``, ``severity``, ``status``, ``opened_at``,
    ``last_seen_at``, ``resolved_at``, ``occurrences``, ``run_id``, ``message``, ``stage``,
    ``error``, ``first_step``, ``tier``, ``node_kind``, ``resolution``) and ``deliveries``:
    per channel and event, ``status`` (queued, sent, failed, dropped), ``attempts``,
    ``next_attempt_at``, ``sent_at`` and ``last_error``."""
    from weir.state.sqlite import StateStore

    store = StateStore(project.root / project.spec.state)
    with connected(store) as con:
        return listing(con, open_only=open_only, limit=limit)
