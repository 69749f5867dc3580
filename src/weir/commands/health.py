"""``weir health`` (the eight health metrics per node and for the project) and ``weir metrics``
(the same and the run totals in the Prometheus text format)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from weir.commands.base import Command, Output, load, target_line
from weir.errors import UsageError

if TYPE_CHECKING:
    from weir.observe.vitals import Metric

_LABELS = {
    "success_rate": "success rate",
    "runtime": "avg runtime",
    "freshness": "freshness",
    "volume_variance": "volume variance",
    "quality_pass_rate": "quality pass rate",
    "failed_24h": "failed in 24h",
    "backfill_queue": "backfill queue",
    "cost": "cost",
}


# ---------------------------------------------------------------- health
def _health_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "nodes", nargs="*", metavar="NODE", help="pipelines, models or dbt steps (default: all)"
    )
    p.add_argument(
        "--fail-on",
        choices=["alert", "none"],
        default="none",
        help="alert: exit 1 when any metric is in alert; none (the default): always exit 0",
    )


def _health(args: argparse.Namespace, out: Output) -> int:
    from weir.observe.vitals import project_health

    project = load(args, out)
    health = project_health(project, nodes=args.nodes)
    if project.target:
        out.text(target_line(project))
    for node in health.nodes:
        tier = f", tier {node.tier}" if node.tier is not None else ""
        out.text(f"■ {node.name} ({node.kind}{tier}): {node.status or 'n/a'}")
        for metric in node.metrics:
            out.text(_line(metric))
    out.text(
        f"■ project ({len(health.nodes)} nodes, last {health.window_days} days): "
        f"{health.status or 'n/a'}"
    )
    for metric in health.metrics:
        out.text(_line(metric))
    alerts = health.alerts()
    if alerts:
        out.text(f"\nin alert: {', '.join(alerts)}")
    out.json(health.as_dict())
    return 1 if args.fail_on == "alert" and alerts else 0


def _line(m: Metric) -> str:
    value = "n/a" if m.value is None else _amount(m.value, m.unit)
    bounds = ""
    if m.target is not None and m.alert is not None:
        good, bad = ("≥", "<") if m.better == "higher" else ("≤", ">")
        bounds = f"target {good}{_amount(m.target, m.unit)}, alert {bad}{_amount(m.alert, m.unit)}"
    mark = {"ok": "✓", "warn": "–", "alert": "✗"}.get(m.status or "", " ")
    text = f"  {mark} {_LABELS[m.name]:<18} {value:>14}   {bounds:<34} {m.status or 'n/a'}"
    extra = _extra(m)
    return text.rstrip() + (f"  ({extra})" if extra else "")


def _extra(m: Metric) -> str:
    if m.name == "cost":
        d = m.detail
        return (
            f"{d['compute_seconds']:.1f} compute s, {_bytes(d['bytes_read'])} read, "
            f"{_bytes(d['bytes_written'])} written"
        )
    return m.note or ""


def _amount(value: float, unit: str) -> str:
    if unit in ("runs", "requests"):
        return f"{value:g} {unit}"
    if unit == "s":
        return f"{value / 60:.1f} min" if value >= 600 else f"{value:.1f} s"
    if unit in ("%", "h"):
        return f"{value:.1f} {unit}"
    return f"{value:,.2f} {unit}"  # a currency


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover - the loop returns


# ---------------------------------------------------------------- metrics
def _metrics_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--textfile",
        type=Path,
        metavar="PATH",
        help="write to PATH (atomically: a temporary file renamed into place) for "
        "node_exporter's textfile collector, instead of printing to stdout",
    )


def _metrics(args: argparse.Namespace, out: Output) -> int:
    from weir.observe.prometheus import exposition

    if out.as_json and args.textfile is None:
        raise UsageError(
            "weir metrics prints the Prometheus text format, not JSON",
            hint="leave out --json (or add --textfile PATH); `weir health --json` has the "
            "health metrics as JSON",
        )
    data = exposition(load(args, out))
    if args.textfile is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    _write_atomically(args.textfile, data)
    out.text(f"wrote {len(data):,} bytes of metrics to {args.textfile}")
    out.json({"textfile": str(args.textfile), "bytes": len(data)})
    return 0


def _write_atomically(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a temporary file in the same directory and a rename:
    a collector reading the file sees the old content or the new, never half of it."""
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(
            f"--textfile {path}: the directory {folder} does not exist",
            hint="point --textfile into node_exporter's --collector.textfile.directory",
        )
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UsageError(
            f"--textfile {path}: cannot write in {folder}: {exc.strerror}",
            hint="run weir as a user that may write there",
        ) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


COMMANDS: dict[str, Command] = {
    "health": (
        "health metrics per node and for the project: success rate, runtime and freshness "
        "against SLA, volume variance, quality, failed runs, backfills, cost",
        _health_args,
        _health,
    ),
    "metrics": (
        "Prometheus metrics of the project from its run history: stdout, or --textfile PATH "
        "for node_exporter",
        _metrics_args,
        _metrics,
    ),
}
