"""(k) health: the eight health metrics of a project from a state store of 100k runs.

50 pipelines with 2,000 hourly runs each (about 83 days; 5 % failed, 3 % partial) are bulk
inserted into a real state store. Timed (median of 5): ``project_health()`` (target ≤ 1 s),
the same on a copy of the store without its indexes on ``runs`` (the baseline: what the
indexes buy), ``StateStore.last_runs()`` (what ``weir status`` reads), and a whole
Prometheus ``exposition()`` (all-time totals: one grouped scan of every run).
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import statistics
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from report import Result, Say, seconds

TARGET = 1.0
PIPELINES = 50
CONTRACT = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "events",
    "version": "1.0.0",
    "slaProperties": [{"property": "freshness", "value": 24, "unit": "h"}],
    "schema": [
        {
            "name": "events",
            "properties": [{"name": "event_id", "physicalType": "int64", "primaryKey": True}],
        }
    ],
}


def run(scale: float, root: Path, say: Say, runs: int = 100_000) -> Result:
    from weir.observe.prometheus import exposition
    from weir.observe.vitals import project_health
    from weir.spec import load_project
    from weir.state.sqlite import StateStore

    total = max(1000, round(runs * scale))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    _project(root)
    store = root / ".weir" / "state.db"
    started = time.perf_counter()
    _seed(store, total, now)
    say(
        f"(k) seeded {total:,} runs of {PIPELINES} pipelines in {time.perf_counter() - started:.1f} s"
    )
    project = load_project(root)
    bare = root / "bare"
    shutil.copytree(root, bare, ignore=shutil.ignore_patterns("bare"))
    with closing(sqlite3.connect(bare / ".weir" / "state.db")) as con:
        for index in ("runs_by_pipeline", "runs_by_start", "runs_by_status"):
            con.execute(f"DROP INDEX {index}")
    plain = load_project(bare)

    health = _median(lambda: project_health(project, now=now))
    unindexed = _median(lambda: project_health(plain, now=now))
    last_runs = _median(lambda: StateStore(store).last_runs())
    scrape = _median(lambda: exposition(project, now=now))
    result = project_health(project, now=now)
    alerts = len(result.alerts())
    return Result(
        "(k) health, 100k runs",
        seconds(health),
        seconds(unindexed),
        unindexed / health,
        f"{health:.3f} s ({unindexed / health:.1f}x faster than without indexes)",
        f"<= {TARGET:g} s",
        health <= TARGET,
        [
            f"{total:,} runs, {PIPELINES} pipelines, window 7 days; {alerts} metrics in alert",
            f"project_health(): {health:.3f} s; without the runs indexes: {unindexed:.3f} s",
            f"StateStore.last_runs() (weir status): {last_runs:.3f} s",
            f"exposition() (Prometheus, all-time totals + health): {scrape:.3f} s",
        ],
    )


def _median(work: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _project(root: Path) -> None:
    (root / "contracts").mkdir(parents=True, exist_ok=True)
    (root / "pipelines").mkdir(exist_ok=True)
    (root / "weir.yml").write_text("name: bench-health\n")
    (root / "contracts" / "events.yml").write_text(yaml.safe_dump(CONTRACT, sort_keys=False))
    for i in range(PIPELINES):
        spec = {
            "name": f"p{i:02d}",
            "owner": "bench",
            "contract": "events",
            "sla_minutes": 30,
            "tier": 1 + i % 3,
            "extract": {"source": "memory", "dataset": f"p{i:02d}"},
            "load": {"strategy": "append"},
        }
        (root / "pipelines" / f"p{i:02d}.yml").write_text(yaml.safe_dump(spec, sort_keys=False))


def _seed(store: Path, total: int, now: datetime) -> None:
    """``total`` runs, hourly per pipeline back from ``now``, in one transaction."""
    from weir.state.sqlite import StateStore

    StateStore(store)  # created and migrated: the indexes exist
    rng = random.Random(7)
    per = total // PIPELINES
    rows = []
    for i in range(PIPELINES):
        for n in range(per):
            start = now - timedelta(hours=n, minutes=i)
            status = rng.choices(["success", "failed", "partial"], [92, 5, 3])[0]
            rows_in = 0 if status == "failed" else rng.randint(900, 1100)
            duration = rng.uniform(30, 600)
            detail = {"kind": "pipeline", "bytes_read": rows_in * 80, "bytes_written": rows_in * 40}
            rows.append(
                (
                    f"p{i:02d}",
                    f"r{i:02d}{n:06d}",
                    _iso(start),
                    _iso(start + timedelta(seconds=duration)),
                    status,
                    "done",
                    rows_in,
                    rows_in,
                    rows_in - (5 if status == "partial" else 0),
                    5 if status == "partial" else 0,
                    4 - (status == "partial"),
                    int(status == "partial"),
                    duration,
                    "boom" if status == "failed" else None,
                    None,
                    None,
                    json.dumps(detail),
                )
            )
    with closing(sqlite3.connect(store)) as con, con:
        con.executemany(f"INSERT INTO runs VALUES ({', '.join('?' * 17)})", rows)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds")
