"""``weir serve`` as a real process: ``--once`` with a moved clock, the bind-address rule, and
signals mid-run — SIGTERM (a graceful stop, and one whose grace runs out) and SIGKILL —
followed by a restart whose tables equal a clean run's.

The project is the files-source ``events`` pipeline, scheduled every five minutes; a run is
held inside its silver commit with ``WEIR_PAUSE`` so the signal lands while it runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from weir.state.sqlite import StateStore
from weirtest.modelkit import events_csv, events_pipeline, events_project
from weirtest.projects import SALT, lake_content, weir_run

pytestmark = pytest.mark.slow

CRON = "*/5 * * * *"
ROWS = [
    (1, dt.date(2026, 6, 1), "a", 5, dt.datetime(2026, 6, 1, 9)),
    (2, dt.date(2026, 6, 1), "b", 7, dt.datetime(2026, 6, 1, 9, 30)),
    (3, dt.date(2026, 6, 2), "a", 1, dt.datetime(2026, 6, 2, 8)),
]
DAILY = """
/* weir
materialized: table
*/
SELECT grp, count(*) AS n, sum(amount) AS total FROM silver.events GROUP BY grp
"""


def scheduled_project(root: Path, serve: str = "") -> Path:
    events_project(
        root,
        {"daily": DAILY},
        source="files",
        pipelines={"events": events_pipeline("files", schedule=CRON)},
    )
    (root / "weir.yml").write_text(f"name: test\nthreads: 2\n{serve}")
    (root / "data" / "events.csv").write_text(events_csv(ROWS))
    return root


def environ(**extra: str) -> dict[str, str]:
    env = {**os.environ, "WEIR_PII_SALT": SALT, **extra}
    for name in ("WEIR_FAULT", "WEIR_PAUSE", "WEIR_SERVE_TOKEN"):
        if name not in extra:
            env.pop(name, None)
    return env


def serve(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weir.cli", "serve", *args, "--project", str(root)],
        env=environ(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def start_serve(root: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "weir.cli", "serve", "--port", "0", "--project", str(root)],
        env=environ(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def owe_a_fire(root: Path) -> None:
    """As if serve last fired ``events`` an hour ago: the next start owes one catch-up fire."""
    store = StateStore(root / ".weir" / "state.db")
    last = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    store.save_fires({"events": (last.isoformat(), CRON)})


def api_address(proc: subprocess.Popen[str]) -> str:
    """The API's base URL, from serve's ready line on stderr."""
    assert proc.stderr is not None
    for line in proc.stderr:
        found = re.search(r"API on (http://127\.0\.0\.1:\d+/api)", line)
        if found:
            return found.group(1)
    pytest.fail(f"serve exited {proc.wait()} without its ready line")


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Until ``path`` exists (the run reached that far), failing if serve exits first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"serve exited {proc.returncode} before {path.name}: {err}")
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout}s"
        time.sleep(0.1)


def clean_lake(tmp_path: Path) -> dict[str, Any]:
    root = scheduled_project(tmp_path / "clean")
    done = weir_run(root)
    assert done.returncode == 0, done.stderr
    return {"events": lake_content(root, "events"), "daily": gold_rows(root)}


def gold_rows(root: Path) -> list[tuple[Any, ...]]:
    from deltalake import DeltaTable

    data = DeltaTable(str(root / "lake" / "gold" / "daily")).to_pyarrow_table()
    return sorted(tuple(r.values()) for r in data.to_pylist())


def content(root: Path) -> dict[str, Any]:
    return {"events": lake_content(root, "events"), "daily": gold_rows(root)}


def statuses(root: Path) -> list[tuple[str, str, str]]:
    runs = StateStore(root / ".weir" / "state.db").runs(limit=100)
    return sorted((r["pipeline_name"], r["status"], r["stage"]) for r in runs)


# ---------------------------------------------------------------- --once
def test_once_registers_then_fires_what_is_due_with_its_downstream(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    first = serve(root, "--once", "--now", "2026-06-01T10:01:00+00:00", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["runs"] == []  # a new schedule owes nothing
    assert StateStore(root / ".weir" / "state.db").last_fires() == {
        "events": ("2026-06-01T10:01:00+00:00", CRON)
    }

    second = serve(root, "--once", "--now", "2026-06-01T10:05:30+00:00", "--json")
    assert second.returncode == 0, second.stderr
    runs = json.loads(second.stdout)["runs"]
    assert [(r["pipeline_name"], r["status"]) for r in runs] == [
        ("events", "success"),
        ("daily", "success"),
    ]
    assert StateStore(root / ".weir" / "state.db").last_fires()["events"][0] == (
        "2026-06-01T10:05:00+00:00"
    )
    again = serve(root, "--once", "--now", "2026-06-01T10:06:00+00:00")
    assert again.returncode == 0 and "nothing was due" in again.stdout + again.stderr


def test_once_exits_1_when_a_fired_run_fails(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    assert serve(root, "--once", "--now", "2026-06-01T10:01:00+00:00").returncode == 0
    (root / "data" / "events.csv").write_text("event_id,day\nnot-a-number,2026-13-45\n")
    done = serve(root, "--once", "--now", "2026-06-01T10:05:00+00:00", "--json")
    assert done.returncode == 1, done.stderr
    runs = json.loads(done.stdout)["runs"]
    assert runs[0]["pipeline_name"] == "events" and runs[0]["status"] == "failed"
    assert "Traceback" not in done.stderr


def test_bad_now_and_now_without_once_are_usage_errors(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    for args, message in [
        (("--once", "--now", "yesterday"), "not an ISO 8601 time"),
        (("--once", "--now", "2026-06-01T10:00:00"), "has no UTC offset"),
        (("--now", "2026-06-01T10:00:00+00:00"), "--now goes with --once"),
    ]:
        done = serve(root, *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_binding_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    done = serve(root, "--host", "0.0.0.0")
    assert done.returncode == 2, done.stderr
    assert "WEIR_SERVE_TOKEN" in done.stderr and "not a loopback address" in done.stderr
    short = serve(root, "--host", "0.0.0.0", WEIR_SERVE_TOKEN="short")
    assert short.returncode == 2 and "shorter than 16" in short.stderr
    assert "short" not in short.stderr.replace("shorter", "")  # the value is not echoed


# ---------------------------------------------------------------- signals mid-run
def test_sigterm_lets_the_running_node_finish_and_exits_0(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p", "serve: {grace_seconds: 120}\n")
    owe_a_fire(root)
    proc = start_serve(root, WEIR_PAUSE="silver.before_commit:3")
    base = api_address(proc)
    wait_for(root / "lake" / "bronze" / "events" / "_delta_log", proc)
    with urllib.request.urlopen(f"{base}/nodes", timeout=30) as response:
        nodes = {n["name"]: n for n in json.load(response)["nodes"]}
    assert nodes["events"]["running"] is True and nodes["events"]["schedule"] == CRON
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "SIGTERM" in err
    assert content(root) == clean_lake(tmp_path)
    assert [(n, s) for n, s, _ in statuses(root)] == [("daily", "success"), ("events", "success")]
    # the fire was completed, so it is not owed again
    again = serve(root, "--once")
    assert again.returncode == 0 and "nothing was due" in again.stdout + again.stderr


@pytest.mark.parametrize("how", ["sigterm-past-grace", "sigkill"])
def test_a_serve_stopped_mid_run_completes_the_fire_on_restart(tmp_path: Path, how: str) -> None:
    root = scheduled_project(tmp_path / "p", "serve: {grace_seconds: 0.5}\n")
    owe_a_fire(root)
    proc = start_serve(root, WEIR_PAUSE="silver.before_commit:60")
    wait_for(root / "lake" / "bronze" / "events" / "_delta_log", proc)
    time.sleep(0.5)  # well inside the 60 s pause before silver's commit
    proc.send_signal(signal.SIGTERM if how == "sigterm-past-grace" else signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (1 if how == "sigterm-past-grace" else -signal.SIGKILL), err
    assert lake_content(root, "events")["silver"] == []  # stopped before silver's commit
    # the interrupted fire is still owed: the restart runs it, and the lake is a clean run's
    again = serve(root, "--once", "--json")
    assert again.returncode == 0, again.stderr
    fired = [(r["pipeline_name"], r["status"]) for r in json.loads(again.stdout)["runs"]]
    assert fired == [("events", "success"), ("daily", "success")]
    assert content(root) == clean_lake(tmp_path)


# ---------------------------------------------------------------- alerts from fires
def test_fires_alert_a_failure_once_and_its_resolution_once(tmp_path: Path) -> None:
    from weirtest.receiver import Webhook

    with Webhook() as hook:
        channels = f"error_handling: {{alert_channels: ['{hook.url}']}}\n"
        root = scheduled_project(tmp_path / "p", channels)
        assert serve(root, "--once", "--now", "2026-06-01T10:01:00+00:00").returncode == 0
        good = (root / "data" / "events.csv").read_text()
        (root / "data" / "events.csv").write_text("event_id,day\nnot-a-number,2026-13-45\n")
        for minute in ("05", "10"):
            done = serve(root, "--once", "--now", f"2026-06-01T10:{minute}:00+00:00")
            assert done.returncode == 1, done.stderr
        (opened,) = hook.wait(1)
        assert opened["event"] == "opened" and opened["node"] == "events"
        assert opened["kind"] == "failure" and opened["severity"] == "P2"  # tier 2 by default
        (root / "data" / "events.csv").write_text(good)
        assert serve(root, "--once", "--now", "2026-06-01T10:15:00+00:00").returncode == 0
        resolved = hook.wait(2)[1]
    assert resolved["event"] == "resolved" and resolved["incident_id"] == opened["incident_id"]
    assert len(hook.posts) == 2
    listed = subprocess.run(
        [sys.executable, "-m", "weir.cli", "alerts", "--project", str(root), "--json"],
        env=environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    (incident,) = json.loads(listed.stdout)["incidents"]
    assert incident["status"] == "resolved" and incident["occurrences"] == 2
