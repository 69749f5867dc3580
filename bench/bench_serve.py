"""(j) scheduler overhead: 500 pipelines scheduled every minute, an hour of schedule.

weir's :class:`~weir.serve.scheduler.Scheduler` runs its real loop (``serve_forever``: the
tick, due-node planning, lock probes, the state store writes of every fire) on a clock that
jumps to each next fire time instead of sleeping, with the run function swapped for a no-op,
so what is measured is serve itself: 500 × 60 = 30 000 fires.

- CPU: the process CPU seconds the hour of schedule took, as a share of one core over the
  hour it stands for (target < 2 %). The baseline, measured in the same run, is the floor of
  any cron scheduler: one croniter per pipeline, stepped through the same hour, calling the
  same no-op.
- Jitter: per fire, how late the no-op was called after its fire time: the schedule time
  the loop woke at, less the fire time, plus the real time from that wake to the call (the
  planning and dispatch work before it; target p99 < 1 s).
"""

from __future__ import annotations

import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from report import Result

from weir.observe.record import RunRecord
from weir.serve.clock import FakeClock
from weir.serve.scheduler import Scheduler
from weir.spec import load_project

PIPELINES = 500
MINUTES = 60
CPU_TARGET = 0.02
JITTER_TARGET = 1.0
START = datetime(2026, 6, 1, 0, 0, 30, tzinfo=UTC)
CONTRACT = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "ping",
    "version": "1",
    "schema": [
        {
            "name": "ping",
            "properties": [{"name": "id", "physicalType": "int64", "primaryKey": True}],
        }
    ],
}


class _WakeClock(FakeClock):
    """A fake clock that notes the real time of each wake (the end of each ``sleep``)."""

    def __init__(self, start: datetime, until: datetime, stop: threading.Event):
        super().__init__(start)
        self.until = until
        self.stop = stop
        self.woke = time.perf_counter()

    scheduler: Scheduler | None = None

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        # a minute of real time lets a fire finish before the next: wait for it here, as the
        # jump to the next fire time would otherwise overtake a no-op fire still storing
        while self.scheduler is not None and self.scheduler.busy():
            time.sleep(0.001)
        super().sleep(seconds, stop)
        if self.now() >= self.until:
            self.stop.set()
        self.woke = time.perf_counter()


def project(root: Path, pipelines: int) -> Path:
    (root / "contracts").mkdir(parents=True)
    (root / "pipelines").mkdir()
    (root / "weir.yml").write_text("name: sched\nserve: {threads: 2, tick_seconds: 5}\n")
    (root / "contracts" / "ping.yml").write_text(yaml.safe_dump(CONTRACT))
    for i in range(pipelines):
        spec = {
            "name": f"p{i:03d}",
            "owner": "bench",
            "contract": "ping",
            "schedule": "* * * * *",
            "extract": {"source": "memory", "dataset": f"d{i}"},
            "load": {"table": f"t{i:03d}"},
        }
        (root / "pipelines" / f"p{i:03d}.yml").write_text(yaml.safe_dump(spec))
    return root


def run(scale: float, root: Path, say: Any) -> list[Result]:
    pipelines = max(20, round(PIPELINES * min(scale, 1.0)))
    minutes = MINUTES if scale >= 0.1 else 10
    say(f"(j) scheduler: {pipelines} pipelines every minute, {minutes} minutes of schedule")
    loaded = load_project(project(root / "p", pipelines))
    until = START + timedelta(minutes=minutes)

    stop = threading.Event()
    clock = _WakeClock(START, until, stop)
    lateness: list[float] = []
    lock = threading.Lock()

    def noop(_project: Any, names: list[str], **_kw: Any) -> list[RunRecord]:
        called, now = time.perf_counter(), clock.now()
        due = now.replace(second=0, microsecond=0)  # every schedule is on the minute
        late = (now - due).total_seconds() + (called - clock.woke)
        with lock:
            lateness.extend([late] * len(names))
        return [RunRecord(n, "bench", status="success") for n in names]

    scheduler = Scheduler(loaded, clock, run=noop)
    clock.scheduler = scheduler
    cpu0, wall0 = time.process_time(), time.perf_counter()
    scheduler.serve_forever(stop)
    scheduler.drain(None)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0

    floor = _floor(pipelines, minutes)
    hour = minutes * 60.0
    share = cpu / hour
    fires = len(lateness)
    p99 = statistics.quantiles(lateness, n=100)[98] if fires >= 100 else max(lateness)
    details = [
        f"{fires} fires of {pipelines} pipelines over {minutes} min of schedule "
        f"(expected {pipelines * minutes})",
        f"weir: {cpu:.2f} CPU s ({wall:.2f} s wall) = {share:.3%} of a core; "
        f"croniter floor: {floor:.2f} CPU s ({cpu / floor:.1f}× the floor)",
        f"jitter: median {statistics.median(lateness) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {max(lateness) * 1000:.1f} ms",
        "the run function is a no-op: the figure is the scheduler's own work, not runs'",
    ]
    return [
        Result(
            "(j) serve: CPU share of one core",
            f"{cpu:.2f} CPU s / {minutes} min",
            f"croniter floor {floor:.2f} s",
            share,
            f"{share:.3%}",
            f"< {CPU_TARGET:.0%}",
            share < CPU_TARGET and fires == pipelines * minutes,
            details,
        ),
        Result(
            "(j) serve: fire-time jitter p99",
            f"{p99 * 1000:.1f} ms",
            "-",
            p99,
            f"{p99:.3f} s",
            f"< {JITTER_TARGET:g} s",
            p99 < JITTER_TARGET,
        ),
    ]


def _floor(pipelines: int, minutes: int) -> float:
    """CPU seconds of the least a cron loop does: step one croniter per pipeline through the
    same minutes and call a no-op per fire."""
    from croniter import croniter

    calls = 0

    def noop(_name: str) -> None:
        nonlocal calls
        calls += 1

    cpu0 = time.process_time()
    iters = [croniter("* * * * *", START) for _ in range(pipelines)]
    nexts = [it.get_next(datetime) for it in iters]
    until = START + timedelta(minutes=minutes)
    for i, it in enumerate(iters):
        while nexts[i] <= until:
            noop(f"p{i:03d}")
            nexts[i] = it.get_next(datetime)
    return max(time.process_time() - cpu0, 1e-6)
