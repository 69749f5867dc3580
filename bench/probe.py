"""Where a weir run spends its time, measured from outside: weir's own functions are wrapped
with timers for the duration of a benchmark (nothing in ``src/`` is edited).

Each wrapped call is a *frame*; a frame's self time excludes the frames it calls. Every
thread keeps its own stack of frames, so the self times of the run's thread add up to the
wall time of ``PipelineRun.execute``, and those of the bronze writer (which runs beside the
silver transform, on a thread of its own) overlap them instead of being subtracted from
whichever frame the other thread had open. Source generators
are timed per ``next()``, which separates reading the source from writing the staging file.
``on_event`` (optional) sees every enter/exit with a wall-clock time, for memory timelines.
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from weir.lake.table import Table

Label = str | Callable[[tuple[Any, ...]], str]
Event = Callable[[float, str, str], None]


def _table(verb: str) -> Label:
    return lambda args: f"{args[0].label}: {verb}"


# ("module:Class" or "module", attribute, label): what is timed and the stage it counts for.
# weir is being developed: a target that no longer exists is skipped and listed in `missing`.
TARGETS: list[tuple[str, str, Label]] = [
    ("weir.run.pipeline:PipelineRun", "execute", "run: lock, record, other"),
    ("weir.run.pipeline:PipelineRun", "_run", "run: position, staging clean-up"),
    ("weir.run.pipeline:PipelineRun", "_schema", "schema + drift probe"),
    ("weir.run.pipeline:PipelineRun", "_persist", "run record + state store"),
    ("weir.run.pipeline", "stage", "stage: write Arrow IPC"),
    ("weir.sources.memory:MemoryExtraction", "batches", "source: memory batches"),
    ("weir.sources.files:FilesExtraction", "batches", "source: read + parse files"),
    ("weir.sources.rest:RestExtraction", "batches", "source: REST paging"),
    ("weir.sources.rest.fetch:Fetcher", "_attempt", "source: HTTP GET"),
    ("weir.sources.rest.parse:PageParser", "parse", "source: JSON → Arrow"),
    ("weir.sources.sql.source:SqlExtraction", "batches", "source: SQL read"),
    ("weir.sources.sql.cdc:CdcExtraction", "batches", "source: slot peek + pgoutput"),
    ("weir.lake.table:Table", "write", _table("write (delta-rs)")),
    ("weir.lake.table:Table", "position", "bronze: read position"),
    ("weir.lake.table:Table", "merge", _table("merge prepare")),
    ("weir.lake.table:Table", "execute", _table("merge execute (delta-rs)")),
    ("weir.lake.table:Table", "mark", _table("mark batch applied")),
    ("weir.run.pipeline:PipelineRun", "_silver", "transform: flagged scan (DuckDB)"),
    ("weir.run.pipeline:PipelineRun", "_checks", "checks: counts + samples (DuckDB)"),
    ("weir.run.pipeline:PipelineRun", "_load_silver", "silver: key/partition counts (DuckDB)"),
    ("weir.engine.duckdb_engine", "fetch_table", "DuckDB: select → Arrow (quarantine, overlap)"),
    ("weir.engine.duckdb_engine", "fetch_reader", "silver: select, stream setup (DuckDB)"),
    ("weir.engine.duckdb:RowCounter", "_batches", "silver: select, streamed (DuckDB)"),
    ("weir.engine.duckdb_engine", "load", "silver: load (other)"),
]


def _resolve(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    owner: Any = importlib.import_module(module_name)
    return getattr(owner, attr, None) if attr else owner


class Probe:
    """Install with ``with Probe() as probe:``; read ``probe.stages()`` afterwards."""

    def __init__(self, on_event: Event | None = None):
        self.on_event = on_event
        self.self_time: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._local = threading.local()
        self._lock = threading.Lock()  # the totals are shared by the threads
        self._undo: list[tuple[Any, str, Any]] = []
        self.missing: list[str] = []

    def __enter__(self) -> Probe:
        for path, attr, label in TARGETS:
            owner = _resolve(path)
            original = getattr(owner, "__dict__", {}).get(attr) if owner is not None else None
            if original is None:
                self.missing.append(f"{path}.{attr}")
                continue
            wrapper = self._generator if attr in ("batches", "_batches") else self._function
            setattr(owner, attr, wrapper(original, label))
            self._undo.append((owner, attr, original))
        opened = Table.__dict__.get("dt")
        if isinstance(opened, property) and opened.fget is not None:
            timed = self._function(opened.fget, "delta: open table (log replay)")
            Table.dt = property(timed)  # type: ignore[method-assign,assignment]
            self._undo.append((Table, "dt", opened))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo.clear()

    def stages(self) -> list[tuple[str, float, int]]:
        """(label, self seconds, calls), largest first."""
        rows = [(k, v, self.calls[k]) for k, v in self.self_time.items()]
        return sorted(rows, key=lambda r: -r[1])

    # frames ---------------------------------------------------------------------------------

    def _stack(self) -> list[list[Any]]:
        """This thread's open frames: [label, start, seconds spent in the frames it called]."""
        stack: list[list[Any]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def _enter(self, label: str) -> None:
        now = time.perf_counter()
        self._stack().append([label, now, 0.0])
        with self._lock:
            self.calls[label] += 1
        if self.on_event is not None:
            self.on_event(time.time(), "enter", label)

    def _exit(self) -> None:
        stack = self._stack()
        label, start, children = stack.pop()
        spent = time.perf_counter() - start
        with self._lock:
            self.self_time[label] += spent - children
        if stack:
            stack[-1][2] += spent
        if self.on_event is not None:
            self.on_event(time.time(), "exit", label)

    def _function(self, original: Callable[..., Any], label: Label) -> Callable[..., Any]:
        probe = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            probe._enter(label(args) if callable(label) else label)
            try:
                return original(*args, **kwargs)
            finally:
                probe._exit()

        return timed

    def _generator(self, original: Callable[..., Any], label: Label) -> Callable[..., Any]:
        probe = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            name = label(args) if callable(label) else label
            probe._enter(name)
            try:
                inner = original(*args, **kwargs)
            finally:
                probe._exit()
            while True:
                probe._enter(name)
                try:
                    item = next(inner)
                except StopIteration:
                    return
                finally:
                    probe._exit()
                yield item

        return timed
