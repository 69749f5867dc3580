"""Prometheus metrics (weir.observe.prometheus, `weir metrics`): the exposition parsed back with
prometheus_client's own parser, checked against the seeded run history."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from test_health_metrics import NOW, D, H, _history, _project, _seed
from weir.observe.prometheus import CONTENT_TYPE, exposition
from weir.spec import load_project
from weir.state.sqlite import StateStore
from weirtest.projects import SALT

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


EVENTS = {"pipeline": "events", "tier": "1", "layer": "silver"}
DAILY = {"pipeline": "daily", "tier": "", "layer": "gold"}


def _incident(root: Path, node: str, severity: str, status: str, kind: str = "failure") -> None:
    StateStore(root / ".weir" / "state.db")  # migrated: the incidents table exists
    with closing(sqlite3.connect(root / ".weir" / "state.db")) as con, con:
        con.execute(
            "INSERT INTO incidents (incident_id, node, kind, severity, status, opened_at, "
            "last_seen_at) VALUES (?, ?, ?, ?, ?, '2025-03-10T00:00:00.000+00:00', "
            "'2025-03-10T00:00:00.000+00:00')",
            [f"{node}-{severity}-{status}-{os.urandom(4).hex()}", node, kind, severity, status],
        )


def test_exposition_matches_the_seeded_history(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    _history(root)
    # at most one open incident per node and kind (the store's unique index)
    seeded = [
        ("P1", "open", "failure"),
        ("P1", "open", "stale"),
        ("P3", "open", "sla_warning"),
        ("P1", "resolved", "failure"),
    ]
    for severity, status, kind in seeded:
        _incident(root, "events", severity, status, kind)
    _incident(root, "gone", "P0", "open")  # not a node of the project: left out
    samples = _samples(exposition(load_project(root), now=NOW).decode())

    # runs by status, all stored runs (11 of events: 8 success incl. the ones outside the
    # window and after now, 1 partial, 2 failed, 1 skipped)
    assert _get(samples, "weir_runs_total", **EVENTS, status="success") == 7
    assert _get(samples, "weir_runs_total", **EVENTS, status="partial") == 1
    assert _get(samples, "weir_runs_total", **EVENTS, status="failed") == 2
    assert _get(samples, "weir_runs_total", **EVENTS, status="skipped") == 1
    assert _get(samples, "weir_runs_total", **DAILY, status="success") == 2
    # rows: extracted 1000 + 100 + 120 + 110 + 80 + 150 + 5, loaded the same but 10 of the
    # partial run, which went to quarantine
    assert _get(samples, "weir_rows_extracted_total", **EVENTS) == 1565
    assert _get(samples, "weir_rows_loaded_total", **EVENTS) == 1555
    assert _get(samples, "weir_rows_quarantined_total", **EVENTS) == 10
    assert _get(samples, "weir_checks_passed_total", **EVENTS) == 19
    assert _get(samples, "weir_checks_failed_total", **EVENTS) == 1
    assert _get(samples, "weir_bytes_written_total", **EVENTS) == 12000
    # durations of the 10 finished runs: 9999, 300, 360, 420, 60, 30, 240, 90, 300, 5
    assert _get(samples, "weir_run_duration_seconds_count", **EVENTS) == 10
    assert _get(samples, "weir_run_duration_seconds_sum", **EVENTS) == 9999 + 1800 + 5
    assert _get(samples, "weir_run_duration_seconds_bucket", **EVENTS, le="5.0") == 1
    assert _get(samples, "weir_run_duration_seconds_bucket", **EVENTS, le="60.0") == 3
    assert _get(samples, "weir_run_duration_seconds_bucket", **EVENTS, le="300.0") == 7
    assert _get(samples, "weir_run_duration_seconds_bucket", **EVENTS, le="7200.0") == 9
    assert _get(samples, "weir_run_duration_seconds_bucket", **EVENTS, le="+Inf") == 10
    # the newest successful run is the one after "now" (all stored runs count here):
    # started 1 h after NOW, completed 5 s later
    last = (NOW + H).timestamp() + 5
    assert _get(samples, "weir_last_success_timestamp_seconds", **EVENTS) == last
    # freshness as of NOW: the load 3 h ago completed after 300 s
    assert _get(samples, "weir_freshness_seconds", **EVENTS) == pytest.approx(3 * 3600 - 300)
    assert _get(samples, "weir_alerts_open", pipeline="events", severity="P1") == 2
    assert _get(samples, "weir_alerts_open", pipeline="events", severity="P3") == 1
    assert not any(dict(labels).get("pipeline") == "gone" for _, labels in samples)

    # the health view's values, thresholds and status (0 ok, 1 warn, 2 alert)
    rate = {**EVENTS, "metric": "success_rate"}
    assert _get(samples, "weir_health_value", **rate, unit="%") == 62.5
    assert _get(samples, "weir_health_target", **rate, unit="%") == 99
    assert _get(samples, "weir_health_alert_threshold", **rate, unit="%") == 95
    assert _get(samples, "weir_health_status", **rate) == 2
    volume = {**EVENTS, "metric": "volume_variance"}
    assert _get(samples, "weir_health_status", **volume) == 1
    assert _get(samples, "weir_health_status", **EVENTS, metric="runtime") == 0
    project = {"pipeline": "", "tier": "", "layer": "project", "metric": "success_rate"}
    assert _get(samples, "weir_health_value", **project, unit="%") == 70.0
    # no status without data: the backfill queue has none
    assert (
        ("weir_health_status", frozenset({**EVENTS, "metric": "backfill_queue"}.items()))
    ) not in samples


def test_each_call_is_fresh(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    _seed(root, 2 * H)
    project = load_project(root)
    before = _samples(exposition(project, now=NOW).decode())
    _seed(root, 1 * H, "failed")
    after = _samples(exposition(project, now=NOW).decode())
    assert _get(before, "weir_runs_total", **EVENTS, status="success") == 1
    assert ("weir_runs_total", frozenset({**EVENTS, "status": "failed"}.items())) not in before
    assert _get(after, "weir_runs_total", **EVENTS, status="failed") == 1
    assert CONTENT_TYPE.startswith("text/plain")


def test_labels_hold_node_names_only(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    _seed(root, 1 * D, "failed")  # its error message would be no label
    names = {"pipeline", "tier", "layer", "status", "le", "metric", "unit", "severity"}
    samples = _samples(exposition(load_project(root), now=NOW).decode())
    assert {k for _, labels in samples for k, _ in labels} <= names
    assert {v for _, labels in samples for k, v in labels if k == "pipeline"} <= {
        "events",
        "daily",
        "",
    }


def test_weir_metrics_textfile_is_written_whole(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    _history(root)
    out = tmp_path / "textfile" / "weir.prom"
    out.parent.mkdir()
    environ = {**os.environ, "WEIR_PII_SALT": SALT}
    cli = [sys.executable, "-m", "weir.cli", "metrics", "--project", str(root)]
    done = subprocess.run(
        [*cli, "--textfile", str(out)], env=environ, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["weir.prom"]  # no temporary left
    samples = _samples(out.read_text())
    assert _get(samples, "weir_runs_total", **EVENTS, status="failed") == 2
    assert _get(samples, "weir_checks_passed_total", **DAILY) == 2

    printed = subprocess.run(cli, env=environ, capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr
    assert _get(_samples(printed.stdout), "weir_runs_total", **EVENTS, status="partial") == 1

    missing = subprocess.run(
        [*cli, "--textfile", str(tmp_path / "nowhere" / "weir.prom")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
