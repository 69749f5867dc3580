"""The eight health metrics (weir.observe.vitals, `weir health`): every value against the
arithmetic done by hand on a seeded run history, statuses at their boundaries, overrides
from weir.yml, and the bytes a real run records."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from weir.errors import ConfigError, UsageError
from weir.observe.record import RunRecord, Status
from weir.observe.vitals import BACKFILL_NOTE, ProjectHealth, iso, project_health
from weir.spec import load_project
from weir.state.sqlite import StateStore
from weirtest.modelkit import (
    DAILY,
    EVENTS_CONTRACT,
    at,
    day,
    events_csv,
    events_pipeline,
    events_project,
    push,
    run_ok,
)
from weirtest.projects import SALT

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def _project(root: Path, health: str = "", *, sla_minutes: int = 5, sla_hours: int = 24) -> Path:
    contract = copy.deepcopy(EVENTS_CONTRACT)
    contract["slaProperties"] = [{"property": "freshness", "value": sla_hours, "unit": "h"}]
    pipeline = events_pipeline(sla_minutes=sla_minutes, tier=1)
    events_project(
        root, {"daily": DAILY}, pipelines={"events": pipeline}, contracts={"events": contract}
    )
    (root / "weir.yml").write_text("name: test\nthreads: 2\n" + health)
    return root


def _seed(
    root: Path,
    ago: timedelta,
    status: Status = "success",
    *,
    node: str = "events",
    seconds: float = 60.0,
    extracted: int = 0,
    loaded: int = 0,
    checks: tuple[int, int] = (0, 0),
    read: int = 0,
    written: int = 0,
) -> None:
    started = NOW - ago
    record = RunRecord(
        pipeline_name=node,
        run_id=uuid.uuid4().hex[:12],
        started_at=iso(started),
        completed_at=iso(started + timedelta(seconds=seconds)),
        status=status,
        stage="done",
        rows_extracted=extracted,
        rows_loaded=loaded,
        rows_rejected=extracted - loaded,
        rows_quarantined=extracted - loaded,
        quality_checks_passed=checks[0],
        quality_checks_failed=checks[1],
        duration_seconds=seconds,
        kind="model" if node == "daily" else "pipeline",
        bytes_read=read,
        bytes_written=written,
    )
    StateStore(root / ".weir" / "state.db").save(record)


def _history(root: Path) -> None:
    """Eleven runs of ``events``, two of ``daily``; the arithmetic in the tests below."""
    _seed(root, 10 * D, extracted=1000, loaded=1000, seconds=9999)  # before the window
    _seed(
        root, 6 * D, extracted=100, loaded=100, seconds=300, checks=(4, 0), read=1000, written=5000
    )
    _seed(root, 5 * D, extracted=120, loaded=120, seconds=360, checks=(4, 0))
    _seed(root, 4 * D, "partial", extracted=110, loaded=100, seconds=420, checks=(3, 1))
    _seed(root, 3 * D, "failed", seconds=60)
    _seed(root, 2 * D, seconds=30)  # found nothing new: not a load
    _seed(root, 30 * H, extracted=80, loaded=80, seconds=240, checks=(4, 0))
    _seed(root, 20 * H, "failed", seconds=90)
    _seed(
        root, 3 * H, extracted=150, loaded=150, seconds=300, checks=(4, 0), read=3000, written=7000
    )
    _seed(root, 1 * H, "skipped", seconds=0)  # an overlap skip: not a finished run
    _seed(root, -1 * H, extracted=5, loaded=5, seconds=5)  # after "now": left out
    _seed(root, 2 * D, node="daily", seconds=10, checks=(1, 0))
    _seed(root, 1 * D, node="daily", seconds=20, checks=(1, 0))


def _health(root: Path, **kwargs: Any) -> ProjectHealth:
    return project_health(load_project(root), now=NOW, **kwargs)


def _value(health: ProjectHealth, node: str, metric: str) -> tuple[Any, Any]:
    m = health.node(node).metric(metric)
    assert m is not None, (node, metric)
    return m.value, m.status


def test_every_metric_of_a_pipeline_matches_the_arithmetic(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "health:\n  price_per_compute_hour: 2.0\n")
    _history(root)
    health = _health(root)
    events = health.node("events")
    assert (events.kind, events.tier, events.layer) == ("pipeline", 1, "silver")

    # finished in the window: the 8 runs from 6 days to 3 hours ago (not the one 10 days
    # ago, the skip, or the one after now); successful: 6d, 5d, 2d, 30h, 3h = 5 (partial is
    # not a success) → 5 / 8 = 62.5 % < 95 → alert
    assert _value(health, "events", "success_rate") == (62.5, "alert")
    # (300 + 360 + 420 + 60 + 30 + 240 + 90 + 300) / 8 = 1800 / 8 = 225 s; SLA 5 min = 300 s,
    # alert past 80 % = 240 s → ok
    runtime = events.metric("runtime")
    assert runtime is not None
    assert (runtime.value, runtime.target, runtime.alert, runtime.status) == (225.0, 300, 240, "ok")
    # last load with new rows: 3 h ago, completed 300 s later → 3 - 300/3600 h; SLA 24 h
    freshness = events.metric("freshness")
    assert freshness is not None and freshness.status == "ok" and freshness.target == 24
    assert freshness.value == pytest.approx(3 - 300 / 3600)
    # loads newest first: 150 (3h), 80 (30h), 100 (4d partial), 120 (5d), 100 (6d), 1000 (10d);
    # average of the 5 before the last = 1400 / 5 = 280; |150 - 280| / 280 = 46.43 % → warn
    volume = events.metric("volume_variance")
    assert volume is not None and volume.status == "warn"
    assert volume.value == pytest.approx(abs(150 - 280) / 280 * 100)
    assert volume.detail == {"rows_loaded": 150, "average_rows": 280.0, "compared_runs": 5}
    # checks: passed 4 + 4 + 3 + 4 + 4 = 19, failed 1 → 19 / 20 = 95 %: not below 95 → warn
    assert _value(health, "events", "quality_pass_rate") == (95.0, "warn")
    # failed since now - 24 h: the one 20 h ago (the one 3 days ago is older) → alert
    assert _value(health, "events", "failed_24h") == (1, "alert")
    backfill = events.metric("backfill_queue")
    assert backfill is not None and (backfill.value, backfill.status) == (None, None)
    assert backfill.note == BACKFILL_NOTE
    # 1800 compute seconds at 2.0 an hour = 1.0; bytes of the two runs that recorded them
    cost = events.metric("cost")
    assert cost is not None and (cost.value, cost.unit, cost.status) == (1.0, "USD", None)
    assert cost.detail == {
        "compute_seconds": 1800.0,
        "bytes_read": 4000,
        "bytes_written": 12000,
        "runs": 8,
    }


def test_models_get_the_metrics_that_apply_and_the_project_sums_its_nodes(
    tmp_path: Path,
) -> None:
    budget = "health:\n  price_per_compute_hour: 2.0\n  cost: {budget: 1.0}\n"
    root = _project(tmp_path / "p", budget)
    _history(root)
    health = _health(root)
    daily = health.node("daily")
    assert (daily.kind, daily.tier, daily.layer) == ("model", None, "gold")
    assert [m.name for m in daily.metrics] == [
        "success_rate",
        "runtime",
        "quality_pass_rate",
        "failed_24h",
        "cost",
    ]
    assert _value(health, "daily", "success_rate") == (100.0, "ok")
    assert _value(health, "daily", "runtime") == (15.0, None)  # (10 + 20) / 2; no SLA
    assert _value(health, "daily", "quality_pass_rate") == (100.0, "ok")

    project = {m.name: m for m in health.metrics}
    # finished 8 + 2 = 10, successful 5 + 2 = 7 → 70 %
    assert (project["success_rate"].value, project["success_rate"].status) == (70.0, "alert")
    # checks (19 + 2) / (20 + 2)
    assert project["quality_pass_rate"].value == pytest.approx(21 / 22 * 100)
    assert project["quality_pass_rate"].status == "warn"
    assert (project["failed_24h"].value, project["failed_24h"].status) == (1, "alert")
    # (1800 + 30) s at 2.0 an hour = 1.0167: past the budget 1.0, not past 110 % of it
    assert project["cost"].value == pytest.approx(1830 / 3600 * 2.0)
    assert (project["cost"].target, project["cost"].alert) == (1.0, pytest.approx(1.1))
    assert project["cost"].status == "warn"
    assert health.status == "alert"
    assert "events.failed_24h" in health.alerts() and "project.success_rate" in health.alerts()


def test_one_node_alone(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    _history(root)
    health = _health(root, nodes=["daily"])
    assert [n.name for n in health.nodes] == ["daily"]
    # the project line covers the nodes shown: daily's 2 runs, 30 compute seconds (no price)
    cost = health.metric("cost")
    assert cost is not None and (cost.value, cost.unit) == (30.0, "s")


@pytest.mark.parametrize(
    ("succeeded", "failed", "value", "status"),
    [(20, 0, 100.0, "ok"), (99, 1, 99.0, "ok"), (19, 1, 95.0, "warn"), (18, 2, 90.0, "alert")],
)
def test_success_rate_boundaries(
    tmp_path: Path, succeeded: int, failed: int, value: float, status: str
) -> None:
    root = _project(tmp_path / "p")
    for i in range(succeeded + failed):
        _seed(root, (i + 1) * timedelta(minutes=30), "success" if i >= failed else "failed")
    assert _value(_health(root), "events", "success_rate") == (value, status)


@pytest.mark.parametrize(
    ("health", "seconds", "status"),
    [
        ("", 240.0, "ok"),  # exactly 80 % of the 300 s SLA: not past the alert threshold
        ("", 241.0, "alert"),  # the seeds' defaults have no warn band (alert 80 % < target)
        ("health:\n  runtime: {target: 80, alert: 100}\n", 240.0, "ok"),
        ("health:\n  runtime: {target: 80, alert: 100}\n", 300.0, "warn"),
        ("health:\n  runtime: {target: 80, alert: 100}\n", 301.0, "alert"),
    ],
)
def test_runtime_boundaries_and_override(
    tmp_path: Path, health: str, seconds: float, status: str
) -> None:
    root = _project(tmp_path / "p", health)
    _seed(root, 2 * H, seconds=seconds)
    assert _value(_health(root), "events", "runtime") == (seconds, status)


@pytest.mark.parametrize(
    ("age", "status"), [(24 * H, "ok"), (24 * H + timedelta(minutes=6), "alert")]
)
def test_freshness_boundary(tmp_path: Path, age: timedelta, status: str) -> None:
    root = _project(tmp_path / "p")
    _seed(root, age, extracted=1, loaded=1, seconds=0)  # completed ``age`` before now
    value, got = _value(_health(root), "events", "freshness")
    assert value == pytest.approx(age.total_seconds() / 3600) and got == status


@pytest.mark.parametrize(
    ("last", "status"), [(120, "ok"), (150, "warn"), (151, "alert"), (80, "ok")]
)
def test_volume_variance_boundaries(tmp_path: Path, last: int, status: str) -> None:
    root = _project(tmp_path / "p")
    for i, rows in enumerate([90, 110, 100, 100, 95, 105, 100]):  # average 700 / 7 = 100
        _seed(root, (10 - i) * H, extracted=rows, loaded=rows)
    _seed(root, 1 * H, extracted=last, loaded=last)
    _seed(root, 50 * D, extracted=10_000, loaded=10_000)  # the 8th before: not compared
    value, got = _value(_health(root), "events", "volume_variance")
    assert value == pytest.approx(abs(last - 100) / 100 * 100) and got == status


def test_overrides_from_weir_yml(tmp_path: Path) -> None:
    health = "health:\n  window_days: 30\n  success_rate: {alert: 60}\n  volume_runs: 2\n"
    root = _project(tmp_path / "p", health)
    _history(root)
    result = _health(root)
    # 30 days take in the run 10 days ago: 6 of 9 succeeded = 66.7 %, above the alert
    # threshold 60 but below the default target 99 that the block left as it was → warn
    value, status = _value(result, "events", "success_rate")
    assert value == pytest.approx(6 / 9 * 100) and status == "warn"
    m = result.node("events").metric("success_rate")
    assert m is not None and (m.target, m.alert) == (99, 60)
    # volume against the 2 loads before the last: |150 - (80 + 100) / 2| / 90
    value, _ = _value(result, "events", "volume_variance")
    assert value == pytest.approx(abs(150 - 90) / 90 * 100)
    assert result.window_days == 30


def test_no_data_is_no_status(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    health = _health(root)
    events = health.node("events")
    assert all(m.status is None for m in events.metrics if m.name != "failed_24h")
    assert _value(health, "events", "failed_24h") == (0, "ok")
    assert health.status == "ok"


def test_a_bad_health_value_is_a_config_error_with_file_and_line(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "health:\n  window_days: 7\n  success_rate:\n    alert: high\n")
    with pytest.raises(ConfigError) as info:
        load_project(root)
    line = (root / "weir.yml").read_text().splitlines().index("    alert: high") + 1
    assert f"weir.yml:{line}: health.success_rate.alert: must be a valid number" in str(info.value)
    (root / "weir.yml").write_text("name: test\nhealth:\n  succes_rate: {alert: 90}\n")
    with pytest.raises(ConfigError) as info:
        load_project(root)
    assert "weir.yml:3: health.succes_rate: unknown field" in str(info.value)
    assert info.value.hint == "see docs/health.md"  # the block's own page
    (root / "weir.yml").write_text("name: test\nhealth:\n  cost: {budget: 5}\n")
    with pytest.raises(ConfigError) as info:
        load_project(root)
    assert "weir.yml:2: health: cost.budget needs price_per_compute_hour" in str(info.value)


def test_an_unknown_node_is_a_usage_error_with_a_suggestion(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    with pytest.raises(UsageError) as info:
        _health(root, nodes=["evnets"])
    assert "'evnets'" in str(info.value) and "did you mean 'events'?" in str(info.value)


def _weir(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "WEIR_PII_SALT": SALT}
    return subprocess.run(
        [sys.executable, "-m", "weir.cli", *args, "--project", str(root)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_weir_health_json_table_and_fail_on(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    # recent runs, so the real clock of the command sees them: 3 successes, 1 failure
    real_now = datetime.now(UTC)
    runs: list[tuple[int, Status]] = [
        (40, "success"),
        (30, "success"),
        (20, "failed"),
        (10, "success"),
    ]
    for minutes, status in runs:
        _seed(root, NOW - real_now + timedelta(minutes=minutes), status)
    done = _weir(root, "health", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # nothing but the JSON document
    events = next(n for n in document["nodes"] if n["name"] == "events")
    assert events["metrics"]["success_rate"]["value"] == 75.0  # 3 of 4
    assert events["metrics"]["failed_24h"]["value"] == 1
    assert document["ok"] is True and "events.failed_24h" in document["alerts"]
    assert document["project"]["backfill_queue"]["note"] == BACKFILL_NOTE

    table = _weir(root, "health", "events")
    assert table.returncode == 0, table.stderr
    assert "■ events (pipeline, tier 1): alert" in table.stdout
    assert "success rate" in table.stdout and "75.0 %" in table.stdout
    assert "■ daily" not in table.stdout
    assert "in alert: events.success_rate, events.failed_24h" in table.stdout

    failing = _weir(root, "health", "--fail-on", "alert")
    assert failing.returncode == 1 and "Traceback" not in failing.stderr
    unknown = _weir(root, "health", "evnets")
    assert unknown.returncode == 2 and "did you mean 'events'?" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_a_files_run_records_the_bytes_it_read_and_wrote(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {}, source="files")
    data = root / "data" / "a.csv"
    data.write_text(events_csv([(1, day(1), "a", 3, at(1)), (2, day(1), "b", 4, at(1))]))
    record = run_ok(root)["events"]
    assert record.bytes_read == data.stat().st_size
    # the data files the run added to bronze and silver (quarantine got none), by their size
    lake = root / "lake"
    files = [
        p for layer in ("bronze", "silver") for p in (lake / layer / "events").glob("*.parquet")
    ]
    assert files and record.bytes_written == sum(p.stat().st_size for p in files)
    [stored] = StateStore(root / ".weir" / "state.db").runs("events")
    assert (stored["bytes_read"], stored["bytes_written"]) == (
        record.bytes_read,
        record.bytes_written,
    )
    again = run_ok(root)["events"]  # nothing new: nothing read, nothing written
    assert (again.bytes_read, again.bytes_written) == (0, 0)


def test_other_sources_record_the_bytes_they_delivered(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {})  # the memory source
    rows = [(i, day(1), "a", i, at(1)) for i in range(1, 1001)]
    push(rows)
    first = run_ok(root)["events"]
    push(rows + [(i, day(2), "b", i, at(2)) for i in range(1001, 2001)])
    second = run_ok(root)["events"]
    # the staged Arrow data: more rows delivered, more bytes (truncate-reload reads it all)
    assert 0 < first.bytes_read < second.bytes_read
    assert second.bytes_read > 2000 * 8  # at least the two int64 columns of 2000 rows
