"""The scheduler of ``weir serve`` on a clock the tests move: fire times across daylight-saving
changes, fires with their downstream models, missed fires by catchup mode, overlaps.

Runs are real (memory source, DuckDB, Delta tables, the state store); only the clock is
moved."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from weir.errors import ConfigError
from weir.observe.events import NodeFinished, NodeStarted
from weir.serve.clock import FakeClock
from weir.serve.schedule import Schedule
from weir.serve.scheduler import Scheduler, describe
from weir.sources import memory
from weir.spec import load_project
from weir.state.sqlite import StateStore
from weirtest.modelkit import events_pipeline, events_project, push

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 6, 1, 10, 1, tzinfo=UTC)
ROWS = [(1, dt.date(2026, 6, 1), "a", 5, dt.datetime(2026, 6, 1, 9))]

DAILY = """
/* weir
materialized: table
*/
SELECT grp, count(*) AS n FROM silver.events GROUP BY grp
"""


def _local(fires: list[datetime]) -> list[str]:
    return [f.astimezone(BERLIN).isoformat() for f in fires]


# ---------------------------------------------------------------- fire times
def test_a_daily_fire_in_the_skipped_hour_fires_once_an_hour_later() -> None:
    s = Schedule.of("n", "30 2 * * *", "Europe/Berlin")
    fires = s.between(datetime(2026, 3, 27, 12, tzinfo=UTC), datetime(2026, 3, 30, 12, tzinfo=UTC))
    assert _local(fires) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:30:00+02:00",  # 02:30 does not exist that night
        "2026-03-30T02:30:00+02:00",
    ]


def test_a_daily_fire_in_the_repeated_hour_fires_once() -> None:
    s = Schedule.of("n", "30 2 * * *", "Europe/Berlin")
    fires = s.between(
        datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 26, 12, tzinfo=UTC)
    )
    assert _local(fires) == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    # asked from inside the repeated hour's second pass, the next fire is the next day's
    second_pass = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET
    assert _local([s.next_after(second_pass)]) == ["2026-10-26T02:30:00+01:00"]


def test_hourly_fires_over_a_year_are_increasing_and_each_wall_hour_once() -> None:
    s = Schedule.of("n", "0 * * * *", "Europe/Berlin")
    start = datetime(2025, 12, 31, 23, tzinfo=UTC)  # midnight of 2026 in Berlin
    fires = s.between(start, start + timedelta(days=365))
    assert all(a < b for a, b in itertools.pairwise(fires))
    # 365 × 24 wall hours, less the one that does not exist (March); the wall hour that
    # happens twice (October) fires once
    assert len(fires) == 365 * 24 - 1
    assert len({f.astimezone(BERLIN).replace(tzinfo=None) for f in fires}) == len(fires)


def test_utc_schedules_ignore_daylight_saving() -> None:
    s = Schedule.of("n", "30 2 * * *", "UTC")
    fires = s.between(datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    assert [f.hour for f in fires] == [2, 2, 2] and [f.minute for f in fires] == [30] * 3


# ---------------------------------------------------------------- config
def test_an_unknown_time_zone_is_a_config_error_with_its_line(tmp_path: Path) -> None:
    events_project(tmp_path, {})
    (tmp_path / "weir.yml").write_text("name: test\ntimezone: Europe/Berln\n")
    with pytest.raises(ConfigError) as err:
        load_project(tmp_path)
    text = str(err.value)
    assert "weir.yml:2" in text and "Europe/Berln" in text and "Europe/Berlin" in text


def test_a_model_schedule_that_is_not_cron_is_a_config_error(tmp_path: Path) -> None:
    events_project(
        tmp_path,
        {"mrt_daily": "/* weir\nmaterialized: table\nschedule: every day\n*/\nSELECT 1 AS x"},
    )
    with pytest.raises(ConfigError) as err:
        load_project(tmp_path)
    assert "mrt_daily" in str(err.value) and "not a cron expression" in str(err.value)


# ---------------------------------------------------------------- fires
def _project(root: Path, *, catchup: str = "latest", cron: str = "*/10 * * * *") -> Path:
    events_project(
        root,
        {"mrt_daily": DAILY},
        pipelines={"events": events_pipeline(schedule=cron)},
    )
    (root / "weir.yml").write_text(f"name: test\nthreads: 2\nserve:\n  catchup: {catchup}\n")
    push(ROWS)
    return root


def _runs(root: Path, node: str) -> list[dict[str, Any]]:
    return StateStore(root / ".weir" / "state.db").runs(node)


def test_a_fire_runs_the_node_and_its_downstream_models(tmp_path: Path) -> None:
    root = _project(tmp_path)
    scheduler = Scheduler(load_project(root), FakeClock(T0))
    assert scheduler.next_fires() == {"events": datetime(2026, 6, 1, 10, 10, tzinfo=UTC)}
    assert scheduler.run_due(T0 + timedelta(minutes=5)) == []  # not due before 10:10
    records = scheduler.run_due(datetime(2026, 6, 1, 10, 10, tzinfo=UTC))
    assert {r.pipeline_name: r.status for r in records} == {
        "events": "success",
        "mrt_daily": "success",
    }
    assert [r["status"] for r in _runs(root, "mrt_daily")] == ["success"]
    # the same time again: that fire is done
    assert scheduler.run_due(datetime(2026, 6, 1, 10, 10, tzinfo=UTC)) == []
    assert describe(scheduler) == [
        {
            "node": "events",
            "cron": "*/10 * * * *",
            "timezone": "UTC",
            "next_fire": "2026-06-01T10:20:00+00:00",
            "running": False,
        }
    ]


def test_nodes_due_together_share_their_downstream_run(tmp_path: Path) -> None:
    both = """
    /* weir
    materialized: table
    */
    SELECT grp FROM silver.events UNION ALL SELECT grp FROM silver.events2
    """
    events_project(
        tmp_path,
        {"mrt_both": both},
        pipelines={
            "events": events_pipeline(schedule="0 * * * *"),
            "events2": events_pipeline(
                name="events2",
                schedule="0 * * * *",
                extract={"source": "memory", "dataset": "events2"},
            ),
        },
    )
    from weir.sources import memory

    memory.register("events2")
    push(ROWS)
    push(ROWS, "events2")
    scheduler = Scheduler(load_project(tmp_path), FakeClock(T0))
    records = scheduler.run_due(datetime(2026, 6, 1, 11, tzinfo=UTC))
    assert sorted(r.pipeline_name for r in records) == ["events", "events2", "mrt_both"]
    assert len(_runs(tmp_path, "mrt_both")) == 1


@pytest.mark.parametrize(("catchup", "runs"), [("latest", 1), ("none", 0), ("all", 3)])
def test_fires_missed_while_serve_was_down(tmp_path: Path, catchup: str, runs: int) -> None:
    root = _project(tmp_path, catchup=catchup)
    Scheduler(load_project(root), FakeClock(T0))  # serve starts at 10:01, then goes down
    back = T0 + timedelta(minutes=35)  # 10:10, 10:20 and 10:30 were missed
    scheduler = Scheduler(load_project(root), FakeClock(back))
    records = []
    for _ in range(5):  # catchup all runs its fires one after another
        records += scheduler.run_due(back)
    assert [r.pipeline_name for r in records if r.pipeline_name == "events"] == ["events"] * runs
    assert len(_runs(root, "events")) == runs
    # after the catchup, the schedule goes on from the missed fires: 10:40 is next
    assert scheduler.next_fires()["events"] == datetime(2026, 6, 1, 10, 40, tzinfo=UTC)


def test_a_changed_schedule_counts_from_the_start(tmp_path: Path) -> None:
    root = _project(tmp_path)
    Scheduler(load_project(root), FakeClock(T0))
    _project(tmp_path, cron="*/15 * * * *")
    back = T0 + timedelta(hours=2)
    scheduler = Scheduler(load_project(root), FakeClock(back))
    assert scheduler.run_due(back) == []
    assert scheduler.next_fires()["events"] == datetime(2026, 6, 1, 12, 15, tzinfo=UTC)


def test_a_node_still_running_is_not_started_again_and_the_skip_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path, cron="* * * * *")
    monkeypatch.setenv("WEIR_PAUSE", "silver.before_commit:2")
    scheduler = Scheduler(load_project(root), FakeClock(T0))
    first = datetime(2026, 6, 1, 10, 2, tzinfo=UTC)
    assert scheduler.run_due(first, wait=False) == []  # started, in flight
    deadline = time.monotonic() + 30
    while "events" not in scheduler.busy() and time.monotonic() < deadline:
        time.sleep(0.05)
    skipped = scheduler.run_due(first + timedelta(minutes=1), wait=False)
    assert [(r.pipeline_name, r.status, r.stage) for r in skipped] == [
        ("events", "skipped", "overlap")
    ]
    assert "previous fire is running" in (skipped[0].error_message or "")
    assert scheduler.drain(60)
    statuses = sorted(r["status"] for r in _runs(root, "events"))
    assert statuses == ["skipped", "success"]
    # the skipped fire is not made up later
    monkeypatch.delenv("WEIR_PAUSE")
    assert scheduler.run_due(first + timedelta(minutes=1, seconds=30)) == []


def test_tickers_hear_every_look_at_the_clock(tmp_path: Path) -> None:
    root = _project(tmp_path)
    heard: list[datetime] = []
    scheduler = Scheduler(load_project(root), FakeClock(T0), tickers=[heard.append])
    scheduler.run_due(T0 + timedelta(seconds=5))
    scheduler.run_due(T0 + timedelta(seconds=10))
    assert heard == [T0 + timedelta(seconds=5), T0 + timedelta(seconds=10)]


def test_serve_forever_on_a_fake_clock_fires_each_time(tmp_path: Path) -> None:
    root = _project(tmp_path, cron="*/10 * * * *")
    clock = FakeClock(T0)
    stop = threading.Event()
    heard: list[datetime] = []

    def until_eleven(now: datetime) -> None:
        heard.append(now)
        if now >= datetime(2026, 6, 1, 11, 0, 30, tzinfo=UTC):
            stop.set()

    scheduler = Scheduler(load_project(root), clock, tickers=[until_eleven])
    # the fake clock jumps to each fire; wait for the run in flight before moving on
    original = clock.sleep

    def patient(seconds: float, stop_event: threading.Event) -> None:
        while scheduler.busy():
            time.sleep(0.02)
        original(seconds, stop_event)

    clock.sleep = patient  # type: ignore[method-assign]
    scheduler.serve_forever(stop)
    assert scheduler.drain(60)
    fired = [r["started_at"] for r in _runs(root, "events")]
    assert len(fired) == 6  # 10:10 … 11:00


def test_fires_share_serve_threads_running_independent_nodes_in_parallel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four independent pipelines due at once under ``serve.threads: 2`` (weir.yml's
    ``threads: 1``): two run at a time, never more."""
    cron = "*/10 * * * *"
    others = {
        f"events_{i}": events_pipeline(
            name=f"events_{i}", schedule=cron, extract={"source": "memory", "dataset": f"ev{i}"}
        )
        for i in range(3)
    }
    events_project(tmp_path, {}, pipelines={"events": events_pipeline(schedule=cron), **others})
    (tmp_path / "weir.yml").write_text("name: test\nthreads: 1\nserve: {threads: 2}\n")
    push(ROWS)
    for i in range(3):
        memory.register(f"ev{i}")
        push(ROWS, f"ev{i}")
    monkeypatch.setenv("WEIR_PAUSE", "silver.before_commit:0.4")
    lock = threading.Lock()
    running: set[str] = set()
    most = 0

    def watch(event: object) -> None:
        nonlocal most
        with lock:
            if isinstance(event, NodeStarted):
                running.add(event.node)
                most = max(most, len(running))
            elif isinstance(event, NodeFinished):
                running.discard(event.node)

    scheduler = Scheduler(load_project(tmp_path), FakeClock(T0), observers=[watch])
    records = scheduler.run_due(datetime(2026, 6, 1, 10, 10, tzinfo=UTC))
    assert sorted(r.status for r in records) == ["success"] * 4
    assert most == 2
