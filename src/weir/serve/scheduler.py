"""The scheduler of ``weir serve``: fires each node by its ``schedule``, with its downstream
models, through the run API — the same graph, locks and records as ``weir run``.

Each loop iteration looks at the clock once:

1. every ticker (the SLA and freshness watch) hears ``now``;
2. each scheduled node whose next fire time has come is due; a node due several times
   since the last look (a slow iteration) fires once;
3. the due nodes that are free fire together, in one run of them and their downstream
   nodes (``node+``), so a model two of them feed runs once; nodes of an earlier fire still
   running are left out of it;
4. a due node still running from its previous fire (here, or in another process holding
   its lock) is not started again: the skip is recorded as a run with status ``skipped``
   and stage ``overlap``.

At most ``serve.threads`` nodes run at once, across fires: a fire takes as many of the
free threads as it has nodes (at least one, waiting for one when none is free) and runs
its independent nodes in parallel on them, as ``weir run --threads`` does. A node's last fire time is stored (state store table
``schedule_fires``) when its fire has finished, so a serve killed during a run fires it
again on restart (runs are idempotent and crash-safe: the re-run completes the work).

Fires missed while serve was down (between the stored last fire and the start) follow
``serve.catchup``: ``latest`` fires once, ``none`` not at all, ``all`` once per missed fire,
one after another (at most :data:`weir.spec.serve.MAX_CATCHUP`). A node new to the schedule,
or whose cron changed, counts from the start: nothing is missed.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from weir.observe.events import NodeFinished, Observer, notify
from weir.observe.record import RunRecord
from weir.run import dag
from weir.run.lock import holder
from weir.serve.clock import Clock
from weir.serve.schedule import Schedule
from weir.spec.serve import MAX_CATCHUP

if TYPE_CHECKING:
    from weir.spec import Project

log = logging.getLogger(__name__)

Ticker = Callable[[datetime], None]
RunFunction = Callable[..., list[RunRecord]]
"""What a fire calls: :func:`weir.run.api.run`'s signature (benchmarks swap in a no-op)."""


def schedules(project: Project) -> dict[str, Schedule]:
    """Every node of ``project`` that has a ``schedule``, by name."""
    zone = project.spec.timezone
    found: dict[str, str | None] = {}
    found |= {n: p.spec.schedule for n, p in project.pipelines.items()}
    found |= {n: m.spec.schedule for n, m in project.models.items()}
    found |= {n: d.spec.schedule for n, d in project.dbt_steps.items()}
    return {n: Schedule.of(n, cron, zone) for n, cron in sorted(found.items()) if cron}


@dataclass
class _Node:
    schedule: Schedule
    last: datetime
    """The latest fire time handled (fired or skipped)."""
    owed: int = 0
    """Fires still to run one after another (catchup: all)."""
    pending: datetime | None = None
    """The fire time of the run in flight, saved as ``last`` when it ends."""
    _next: tuple[datetime, datetime] | None = None
    """(``last``, the fire time after it): croniter is slow to build, so it is asked once
    per fire, not at every tick."""

    def upcoming(self) -> datetime:
        """The first fire time after ``last``."""
        if self._next is None or self._next[0] != self.last:
            self._next = (self.last, self.schedule.next_after(self.last))
        return self._next[1]


@dataclass
class _Fire:
    nodes: set[str]
    """Every node the fire runs (the due ones and their downstream)."""
    due: dict[str, datetime]
    """The due nodes and the fire time each one fires for."""
    future: Future[list[RunRecord]] | None = None
    records: list[RunRecord] = field(default_factory=list)


class Scheduler:
    def __init__(
        self,
        project: Project,
        clock: Clock,
        *,
        observers: Sequence[Observer] = (),
        tickers: Sequence[Ticker] = (),
        threads: int | None = None,
        run: RunFunction | None = None,
    ):
        from weir.state.sqlite import StateStore

        self.project = project
        self.clock = clock
        self.observers = tuple(observers)
        self.tickers = list(tickers)
        self.threads = threads or project.spec.serve.threads or project.spec.threads
        if run is None:
            from weir.run.api import run as run_api

            run = run_api
        self._run = run
        self._graph = dag.graph(project)
        self._store = StateStore(project.root / project.spec.state)
        self._lock = threading.Lock()
        self._fires: list[_Fire] = []
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="weir-fire")
        self._free = self.threads
        """Threads no fire holds (guarded by ``_room``)."""
        self._room = threading.Condition()
        self.started = clock.now()
        self.nodes = self._load(schedules(project))

    # the plan ---------------------------------------------------------------------------

    def _load(self, found: dict[str, Schedule]) -> dict[str, _Node]:
        """Each scheduled node with its last fire, and the fires it missed while serve was
        down turned into what ``serve.catchup`` owes."""
        stored = self._store.last_fires()
        policy = self.project.spec.serve.catchup
        nodes: dict[str, _Node] = {}
        for name, schedule in found.items():
            last_iso, cron = stored.get(name, (None, None))
            if last_iso is None or cron != schedule.cron:
                nodes[name] = _Node(schedule, self.started)
                continue
            last = datetime.fromisoformat(last_iso)
            missed = schedule.between(last, self.started)
            node = _Node(schedule, missed[-1] if missed else last)
            if missed and policy == "latest":
                node.owed = 1
            elif missed and policy == "all":
                node.owed = min(len(missed), MAX_CATCHUP)
            nodes[name] = node
            if missed:
                log.info(
                    "%s missed %d fire(s) while serve was down (catchup: %s)",
                    name,
                    len(missed),
                    policy,
                )
        # a node owing a catch-up keeps its stored last fire until that fire has run: a serve
        # killed during it owes it again
        self._save({n: (s.last, s.schedule.cron) for n, s in nodes.items() if not s.owed})
        return nodes

    def next_fires(self) -> dict[str, datetime]:
        """Each scheduled node's next fire time."""
        with self._lock:
            return {n: s.upcoming() for n, s in self.nodes.items()}

    def busy(self) -> set[str]:
        """The nodes of the fires in flight."""
        with self._lock:
            return {n for f in self._fires for n in f.nodes}

    # the loop ---------------------------------------------------------------------------

    def run_due(self, now: datetime, *, wait: bool = True) -> list[RunRecord]:
        """Tick the tickers, start the fires due at ``now``; ``wait``: until they end, and
        return their records (skips included), as ``weir serve --once`` does."""
        for tick in self.tickers:
            try:
                tick(now)
            except Exception:  # a watch must not stop the schedule
                log.exception("a scheduler ticker failed")
        skipped, fire = self._plan(now)
        if fire is not None:
            fire.future = self._pool.submit(self._execute, fire)
        if not wait:
            return skipped
        records = list(skipped)
        if fire is not None and fire.future is not None:
            records += fire.future.result()
        return records

    def serve_forever(self, stop: threading.Event) -> None:
        """Run fires as they come due until ``stop`` is set (in-flight fires go on: see
        :meth:`drain`)."""
        tick = self.project.spec.serve.tick_seconds
        while not stop.is_set():
            now = self.clock.now()
            self.run_due(now, wait=False)
            upcoming = self.next_fires().values()
            wake = min(upcoming, default=None)
            delay = tick if wake is None else min(tick, (wake - now).total_seconds())
            self.clock.sleep(max(delay, 0.01), stop)

    def drain(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds for the fires in flight; True when none is left."""
        with self._lock:
            futures = [f.future for f in self._fires if f.future is not None]
        from concurrent.futures import wait

        _, pending = wait(futures, timeout=timeout)
        if not pending:
            self._pool.shutdown(wait=True)
        return not pending

    # one fire ---------------------------------------------------------------------------

    def _plan(self, now: datetime) -> tuple[list[RunRecord], _Fire | None]:
        skipped: list[RunRecord] = []
        with self._lock:
            busy = {n for f in self._fires for n in f.nodes}
            due: dict[str, datetime] = {}
            for name, node in self.nodes.items():
                come = node.upcoming() <= now
                if node.pending is not None:  # its own fire is in flight
                    if come:
                        fires = node.schedule.between(node.last, now)
                        skipped.append(self._skip(name, fires[-1], "its previous fire is running"))
                        node.last = fires[-1]
                    continue
                if node.owed == 0 and not come:
                    continue
                fires = node.schedule.between(node.last, now) if come else []
                when = fires[-1] if fires else node.last
                other = holder(self.project.state_dir, name)
                if name in busy or other is not None:
                    why = "it is still running" if name in busy else f"pid {other} is running it"
                    skipped.append(self._skip(name, when, why))
                    node.last, node.owed = when, 0
                    continue
                node.owed = max(node.owed - 1, 0)
                due[name] = when
                node.pending = node.last = when  # stored only when the fire ends
            if not due:
                fire = None
            else:
                wanted = dag.select(self._graph, [f"{n}+" for n in due])
                group = {n for n in wanted if n not in busy or n in due}
                fire = _Fire(group, due)
                self._fires.append(fire)
        for record in skipped:
            notify(self.observers, NodeFinished(record.pipeline_name, record.kind, record))
        if skipped:
            self._persist(skipped)
        return skipped, fire

    def _execute(self, fire: _Fire) -> list[RunRecord]:
        names = [n for n in dag.order(self._graph) if n in fire.nodes]
        with self._room:
            self._room.wait_for(lambda: self._free > 0)
            held = min(self._free, len(names))
            self._free -= held
        try:
            fire.records = self._run(self.project, names, observers=self.observers, threads=held)
        except Exception as exc:  # a config or usage error: record it, keep scheduling
            log.error("fire of %s failed before any node ran: %s", ", ".join(fire.due), exc)
            fire.records = [self._failed(n, str(exc)) for n in fire.due]
        finally:
            with self._room:
                self._free += held
                self._room.notify_all()
            with self._lock:
                self._fires.remove(fire)
                saved = {}
                for name, when in fire.due.items():
                    node = self.nodes[name]
                    node.pending = None
                    node.last = max(node.last, when)
                    saved[name] = (node.last, node.schedule.cron)
            self._save(saved)
        return fire.records

    def _skip(self, node: str, when: datetime, why: str) -> RunRecord:
        record = RunRecord(node, uuid.uuid4().hex[:12], kind=self._graph[node].kind)
        record.stage = "overlap"
        record.finish("skipped", f"not started for its {when.isoformat()} fire: {why}")
        log.warning("%s: %s", node, record.error_message)
        return record

    def _failed(self, node: str, message: str) -> RunRecord:
        record = RunRecord(node, uuid.uuid4().hex[:12], kind=self._graph[node].kind)
        record.finish("failed", message)
        return record

    def _persist(self, records: list[RunRecord]) -> None:
        from weir.observe.observers import persist
        from weir.observe.record import Scrubber

        scrub = Scrubber(self.project.secrets)
        for record in records:
            persist(self.project, record, scrub)

    def _save(self, last: dict[str, tuple[datetime, str]]) -> None:
        self._store.save_fires({n: (t.isoformat(), cron) for n, (t, cron) in last.items()})


def describe(scheduler: Scheduler) -> list[dict[str, Any]]:
    """The schedule as JSON-ready rows: node, cron, time zone, next fire, running."""
    busy = scheduler.busy()
    return [
        {
            "node": name,
            "cron": scheduler.nodes[name].schedule.cron,
            "timezone": scheduler.project.spec.timezone,
            "next_fire": when.isoformat(),
            "running": name in busy,
        }
        for name, when in sorted(scheduler.next_fires().items())
    ]
