"""How a run's events look on the command line: progress on stderr (bars on a terminal,
plain lines when piped), a summary per node on stdout."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from weir.observe.events import (
    Event,
    NodeFinished,
    NodeProgress,
    NodeStage,
    NodeStarted,
    RunStarted,
)

if TYPE_CHECKING:
    from weir.commands.base import Output
    from weir.observe.record import RunRecord

_log = logging.getLogger("weir.cli")


class RunDisplay:
    """Shows a run's events as plain lines: progress on stderr (prefixed by node when
    several run; none with ``progress=False``), a summary per node on stdout."""

    def __init__(self, out: Output, *, progress: bool = True):
        self.out = out
        self.show_progress = progress
        self.prefix = False

    def __call__(self, event: Event) -> None:
        out = self.out
        if isinstance(event, RunStarted):
            self.prefix = len(event.nodes) > 1
        elif isinstance(event, NodeFinished):
            out.text(f"■ {event.node} ({event.kind})\n{summary(event.record)}")
        elif isinstance(event, NodeStage):
            _log.debug("%s (%s) entered stage %s", event.node, event.kind, event.stage)
        elif not self.show_progress:
            return
        elif isinstance(event, NodeStarted):
            out.progress(f"▶ {event.node} ({event.kind})")
        elif isinstance(event, NodeProgress):
            out.progress(f"[{event.node}] {event.message}" if self.prefix else event.message)


class LiveDisplay:
    """Shows a run's events on a terminal: a progress bar per running node (its stage,
    rows so far, rows/s, and an ETA when the total is known), lines of progress above them,
    and each node's summary once it finishes. A context manager: the bars are drawn
    while it is active."""

    def __init__(self, out: Output):
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        self.out = out
        self.bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            _counts_column(),
            console=out.console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.tasks: dict[str, Any] = {}
        self.shape: dict[str, tuple[str, int | None]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> LiveDisplay:
        self.bars.start()
        self.out.bars_shown = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()
        self.out.bars_shown = False

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._show(event)

    def _show(self, event: Event) -> None:
        out = self.out
        if isinstance(event, NodeStarted):
            self._bar(event.node, f"{event.node} ({event.kind})")
        elif isinstance(event, NodeStage) and event.node in self.tasks:
            self._bar(event.node, f"{event.node} · {event.stage}")
            _log.debug("%s (%s) entered stage %s", event.node, event.kind, event.stage)
        elif isinstance(event, NodeProgress):
            task = self.tasks.get(event.node)
            if task is None or event.done is None:
                out.progress(f"[{event.node}] {event.message}")
            elif self.shape.get(event.node) != (event.unit, event.total):
                self._bar(event.node, None, event.unit, event.total, event.done)
            else:
                self.bars.update(task, completed=event.done)
        elif isinstance(event, NodeFinished):
            task = self.tasks.pop(event.node, None)
            if task is not None:
                self.bars.remove_task(task)
                self.bars.refresh()  # before the summary, which redraws the bars below it
            out.text(f"■ {event.node} ({event.kind})\n{summary(event.record)}")

    def _bar(
        self,
        node: str,
        description: str | None,
        unit: str = "rows",
        total: int | None = None,
        done: int = 0,
    ) -> None:
        """A new bar for ``node`` (a new stage, or counts of another kind): the rate and
        ETA start over. ``description`` None: the one it had."""
        old = self.tasks.pop(node, None)
        if old is not None:
            if description is None:
                description = self.bars.tasks[self._index(old)].description
            self.bars.remove_task(old)
        self.shape[node] = (unit, total)
        self.tasks[node] = self.bars.add_task(
            description or node, total=total, completed=done, unit=unit
        )

    def _index(self, task: Any) -> int:
        return [t.id for t in self.bars.tasks].index(task)


def _counts_column() -> Any:
    """A rich column: "1,200 of 5,000 rows · 3,100 rows/s · ETA 0:00:01" (what is known)."""
    from datetime import timedelta

    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class Counts(ProgressColumn):
        def render(self, task: Task) -> Text:
            unit = str(task.fields.get("unit", "rows"))
            if not task.completed and not task.total:
                return Text("")
            parts = [
                f"{task.completed:,.0f} of {task.total:,.0f} {unit}"
                if task.total
                else f"{task.completed:,.0f} {unit}"
            ]
            if task.speed:
                parts.append(f"{task.speed:,.0f} {unit}/s")
            if task.total and task.time_remaining is not None:
                parts.append(f"ETA {timedelta(seconds=round(task.time_remaining))}")
            return Text(" · ".join(parts), style="cyan")

    return Counts()


def summary(r: RunRecord) -> str:
    """The few lines a person reads after each pipeline of `weir run`."""
    warnings = [f"    warning: {w}" for w in r.warnings[:5]]
    if len(r.warnings) > 5:
        warnings.append(f"    … {len(r.warnings) - 5} more warnings in the run record")
    if r.status == "failed":
        return "\n".join([f"  ✗ failed at {r.stage}: {r.error_message}", *warnings])
    if r.status == "skipped":
        return f"  – skipped: {r.error_message}"
    if r.kind != "pipeline":
        return "\n".join([_node_line(r), *warnings])
    if not r.changed:
        return "\n".join(
            [
                f"  = up to date: nothing new since {r.watermark_before or 'the start'} "
                f"(no table versions created, {r.duration_seconds:.1f}s)",
                *warnings,
            ]
        )

    def broken(severity: str) -> list[str]:
        return sorted({c.name for c in r.checks if not c.passed and c.severity == severity})

    errors, warns, noted = broken("error"), broken("warn"), broken("info")
    lines = [
        f"  ✓ {r.status}: extracted {r.rows_extracted:,} · loaded {r.rows_loaded:,} · "
        f"quarantined {r.rows_quarantined:,}"
        + (f" · superseded {r.rows_superseded:,}" if r.rows_superseded else "")
        + (f" · already ingested {r.rows_already_ingested:,}" if r.rows_already_ingested else ""),
        f"    checks {r.quality_checks_passed} passed / {r.quality_checks_failed} failed"
        + (f" · quarantining: {_names(errors)}" if errors else "")
        + (f" · flagging (warn): {_names(warns)}" if warns else "")
        + (f" · noted (info): {_names(noted)}" if noted else ""),
        f"    watermark {r.watermark_before or '∅'} → {r.watermark_after or '∅'} · {r.duration_seconds:.1f}s",
    ]
    return "\n".join(lines + warnings)


def _node_line(r: RunRecord) -> str:
    checks = f" · checks {r.quality_checks_passed} passed / {r.quality_checks_failed} failed"
    if r.kind == "dbt":
        by_status: dict[str, int] = {}
        for node in r.nodes:
            by_status[str(node.get("status"))] = by_status.get(str(node.get("status")), 0) + 1
        nodes = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "no nodes"
        return f"  ✓ {r.status}: dbt {nodes}{checks} · {r.duration_seconds:.1f}s"
    if not r.changed:
        return (
            f"  = up to date: sources and definition unchanged since {r.watermark_before or 'the start'}"
            f"{checks} · {r.duration_seconds:.1f}s"
        )
    return (
        f"  ✓ {r.status}: computed {r.rows_transformed:,} rows · wrote {r.rows_loaded:,}"
        f"{checks}\n    position {r.watermark_before or '∅'} → {r.watermark_after or '∅'}"
        f" · {r.duration_seconds:.1f}s"
    )


def _names(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", +{len(names) - limit} more" if len(names) > limit else "")
