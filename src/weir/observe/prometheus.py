"""Prometheus metrics of a project, computed from its state store at each scrape.

No global state: every :func:`exposition` builds a fresh ``CollectorRegistry`` holding one
collector that reads the store (one grouped scan of ``runs``, a look at ``incidents``) and
the health view (:mod:`weir.observe.vitals`). Counters are all-time totals of the stored
runs, so ``rate()`` works across restarts of whoever serves them.

Labels are node names and fixed words only (never a value from the data, a message or a
secret): ``pipeline`` (the node's name), ``tier`` (a pipeline's ``tier``; ``""`` for models
and dbt steps), ``layer`` (``silver`` for pipelines, ``gold`` for models, ``dbt`` for dbt
steps), ``status``, ``severity``, ``metric``. Only the project's nodes are exported; runs and
incidents of nodes it no longer has are left out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from weir.observe.vitals import NodeVitals, ProjectHealth, project_health

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from weir.spec import Project

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The content type of :func:`exposition`'s bytes (Prometheus text format)."""

BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
"""Upper bounds (seconds) of the run duration histogram; ``+Inf`` follows."""
STATUSES = ("success", "partial", "failed", "skipped", "running")
_FINISHED = ("success", "partial", "failed")
_LEVEL = {"ok": 0, "warn": 1, "alert": 2}
_NODE = ["pipeline", "tier", "layer"]


def exposition(project: Project, *, now: datetime | None = None) -> bytes:
    """Every metric of ``project`` in the Prometheus text format, as of ``now``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(project, now=now))
    return generate_latest(registry)


class StoreCollector(Collector):
    """The metric families of one project, read from its state store when collected."""

    def __init__(self, project: Project, *, now: datetime | None = None):
        self.project = project
        self.now = now

    def collect(self) -> Iterator[Metric]:
        from weir.state.sqlite import StateStore

        health = project_health(self.project, now=self.now or datetime.now(UTC))
        labels = {n.name: _labels(n) for n in health.nodes}
        with closing(StateStore(self.project.root / self.project.spec.state).connect()) as con:
            totals = _totals(con, set(labels))
            yield from _run_families(totals, labels)
            yield _last_success(con, labels)
            yield _alerts_open(con, set(labels))
        yield from _health_families(health, labels)


def _labels(node: NodeVitals) -> list[str]:
    return [node.name, "" if node.tier is None else str(node.tier), node.layer]


def _totals(con: sqlite3.Connection, names: set[str]) -> dict[tuple[str, str], sqlite3.Row]:
    """Per (node, status): runs, rows, checks, bytes, and the duration histogram's counts."""
    buckets = ", ".join(
        f"total(duration_seconds <= {b!r}) AS le_{i}" for i, b in enumerate(BUCKETS)
    )
    sql = (
        "SELECT pipeline_name, status, count(*) AS runs, total(rows_extracted) AS extracted, "
        "total(rows_loaded) AS loaded, total(rows_rejected) AS quarantined, "
        "total(quality_checks_passed) AS passed, total(quality_checks_failed) AS failed, "
        "total(duration_seconds) AS seconds, "
        "total(json_extract(detail, '$.bytes_read')) AS bytes_read, "
        "total(json_extract(detail, '$.bytes_written')) AS bytes_written, "
        f"{buckets} FROM runs GROUP BY pipeline_name, status"
    )
    return {
        (r["pipeline_name"], r["status"]): r
        for r in con.execute(sql)
        if r["pipeline_name"] in names
    }


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


_SUMS = (
    ("weir_rows_extracted_total", "extracted", "Rows extracted from sources, all stored runs."),
    ("weir_rows_loaded_total", "loaded", "Rows loaded into the target tables, all stored runs."),
    (
        "weir_rows_quarantined_total",
        "quarantined",
        "Rows put in quarantine (rows_rejected), all stored runs.",
    ),
    ("weir_checks_passed_total", "passed", "Quality checks that passed, all stored runs."),
    ("weir_checks_failed_total", "failed", "Quality checks that failed, all stored runs."),
    (
        "weir_bytes_read_total",
        "bytes_read",
        "Bytes read from sources (files: their size; others: the staged Arrow data).",
    ),
    ("weir_bytes_written_total", "bytes_written", "Bytes of Delta data files the runs added."),
    ("weir_compute_seconds_total", "seconds", "Run time of all stored runs, in seconds."),
)


def _run_families(
    totals: dict[tuple[str, str], sqlite3.Row], labels: dict[str, list[str]]
) -> Iterator[Metric]:
    runs = _gauge(
        "weir_runs_total", "Stored runs by status (grows like a counter).", [*_NODE, "status"]
    )
    for (name, status), row in sorted(totals.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        runs.add_metric([*labels[name], str(status)], row["runs"])
    yield runs
    for metric, column, doc in _SUMS:
        family = _gauge(metric, doc, _NODE)
        for name, node_labels in labels.items():
            family.add_metric(node_labels, _sum(totals, name, column, STATUSES))
        yield family
    histogram = HistogramMetricFamily(
        "weir_run_duration_seconds", "Duration of finished runs (stored).", labels=_NODE
    )
    for name, node_labels in labels.items():
        count = _sum(totals, name, "runs", _FINISHED)
        cumulative = [
            (repr(b), _sum(totals, name, f"le_{i}", _FINISHED)) for i, b in enumerate(BUCKETS)
        ]
        histogram.add_metric(
            node_labels,
            buckets=[*cumulative, ("+Inf", count)],
            sum_value=_sum(totals, name, "seconds", _FINISHED),
        )
    yield histogram


def _sum(
    totals: dict[tuple[str, str], sqlite3.Row], name: str, column: str, statuses: tuple[str, ...]
) -> float:
    return float(sum(r[column] or 0 for (n, s), r in totals.items() if n == name and s in statuses))


def _last_success(con: sqlite3.Connection, labels: dict[str, list[str]]) -> Metric:
    """When each node's newest successful (or partial) run completed (Unix seconds)."""
    family = _gauge(
        "weir_last_success_timestamp_seconds",
        "When the node's newest successful (or partial) run completed.",
        _NODE,
    )
    sql = (
        "SELECT completed_at FROM runs WHERE pipeline_name = ? "
        "AND status IN ('success', 'partial') ORDER BY started_at DESC LIMIT 1"
    )
    for name, node_labels in labels.items():
        row = con.execute(sql, [name]).fetchone()
        if row is not None and row["completed_at"]:
            family.add_metric(node_labels, datetime.fromisoformat(row["completed_at"]).timestamp())
    return family


def _alerts_open(con: sqlite3.Connection, names: set[str]) -> Metric:
    family = _gauge("weir_alerts_open", "Open alert incidents.", ["pipeline", "severity"])
    sql = (
        "SELECT node, severity, count(*) AS n FROM incidents WHERE status = 'open' "
        "GROUP BY node, severity ORDER BY node, severity"
    )
    for row in con.execute(sql):
        if row["node"] in names:
            family.add_metric([row["node"], row["severity"]], row["n"])
    return family


def _health_families(health: ProjectHealth, labels: dict[str, list[str]]) -> Iterator[Metric]:
    """The health view: each metric's value, target, alert threshold and status."""
    names = [*_NODE, "metric", "unit"]
    value = _gauge("weir_health_value", "A health metric's value (see the unit label).", names)
    target = _gauge("weir_health_target", "A health metric's target.", names)
    alert = _gauge("weir_health_alert_threshold", "A health metric's alert threshold.", names)
    status = _gauge(
        "weir_health_status", "A health metric's status: 0 ok, 1 warn, 2 alert.", [*_NODE, "metric"]
    )
    freshness = _gauge(
        "weir_freshness_seconds", "Seconds since the last load with new rows.", _NODE
    )
    rows: list[tuple[list[str], Any]] = [
        (labels[n.name], m) for n in health.nodes for m in n.metrics
    ]
    rows += [(["", "", "project"], m) for m in health.metrics]
    for node_labels, m in rows:
        key = [*node_labels, m.name, m.unit]
        if m.value is not None:
            value.add_metric(key, m.value)
        if m.target is not None and m.alert is not None:
            target.add_metric(key, m.target)
            alert.add_metric(key, m.alert)
        if m.status is not None:
            status.add_metric([*node_labels, m.name], _LEVEL[m.status])
        if m.name == "freshness" and m.value is not None:
            freshness.add_metric(node_labels, m.value * 3600)
    yield from (value, target, alert, status, freshness)
