"""Commands about one lake table or a pipeline's batches: history, batches, repair."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from weir.commands.base import Command, Output, load
from weir.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from weir.lake.table import Table
    from weir.spec import Project


def _history_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "table",
        help="table: PIPELINE (silver), or bronze.NAME / silver.NAME / quarantine.NAME / gold.MODEL",
    )
    p.add_argument("--limit", type=int, default=20, help="newest N versions (default 20)")


def _history(args: argparse.Namespace, out: Output) -> int:
    from weir.lake.changes import REWRITE

    project = load(args, out)
    table, qualified = _lake_table(project, args.table)
    layer, _, name = qualified.partition(".")
    dt = table.dt
    assert dt is not None  # _lake_table checked that it exists
    entries = []
    for info in dt.history(args.limit):
        metrics = info.get("operationMetrics", {})
        if REWRITE in info:  # a change batch applied by rewriting the table
            metrics = json.loads(info[REWRITE])
        entries.append(
            {
                "version": info.get("version"),
                "timestamp": datetime.fromtimestamp(info["timestamp"] / 1000, UTC).isoformat(
                    timespec="seconds"
                ),
                "operation": info.get("operation"),
                "run_id": info.get("weir.run_id"),
                "batch": info.get("weir.batch"),
                "rows_added": metrics.get(
                    "num_added_rows", metrics.get("num_target_rows_inserted")
                ),
                "rows_updated": metrics.get("num_target_rows_updated"),
            }
        )
    out.text(f"{layer}.{name} ({table.uri})")
    for e in entries:
        out.text(
            f"  v{e['version']:<4} {e['timestamp']}  {e['operation']:<8} batch {e['batch'] or '-':<4} "
            f"run {e['run_id'] or '-':<14} +{e['rows_added'] or 0} ~{e['rows_updated'] or 0}"
        )
    out.json({"table": f"{layer}.{name}", "uri": table.uri, "versions": entries})
    return 0


# ---------------------------------------------------------------- batches
def _batches_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "words",
        nargs="+",
        metavar="PIPELINE | reject PIPELINE BATCH",
        help="PIPELINE: list its batches (pending / loaded / rejected); "
        "reject PIPELINE BATCH: move a pending batch whole to quarantine",
    )
    p.add_argument("--reason", help="why the batch is rejected (required with reject)")


def _batches(args: argparse.Namespace, out: Output) -> int:
    project = load(args, out)
    words = list(args.words)
    if len(words) == 1:
        return _list_batches(project, project.pipeline(words[0]), out)
    if words[0] != "reject" or len(words) != 3 or not words[2].isdigit():
        raise UsageError(
            "expected `weir batches PIPELINE` or `weir batches reject PIPELINE BATCH --reason …`"
        )
    if not args.reason:
        raise UsageError("reject needs --reason", hint="say why the batch is rejected")
    from weir.commands.display import summary
    from weir.run.batches import RejectRun

    run = RejectRun(
        project, project.pipeline(words[1]), int(words[2]), args.reason, progress=out.progress
    )
    run.check()
    record = run.execute()
    out.text(f"■ {record.pipeline_name} (reject batch {words[2]})\n{summary(record)}")
    out.json({"runs": [record.as_dict()]})
    return 1 if record.status == "failed" else 0


def _list_batches(project: Project, pipeline: Any, out: Output) -> int:
    from weir.run.batches import list_batches

    batches = list_batches(project, pipeline)
    out.text(f"batches of {pipeline.name} (bronze → silver):")
    for b in batches:
        note = f"  {b.reason}" if b.reason else ""
        if b.status == "pending":
            note = "  not in silver yet: the next run loads it first"
        out.text(
            f"  {b.number:>5}  {b.status:<8} {b.rows if b.rows is not None else '?':>10} rows  "
            f"{b.ingested_at or '':<25} run {b.run_id or '-'}{note}"
        )
    if not batches:
        out.text("  none yet")
    out.json({"pipeline": pipeline.name, "batches": [b.as_dict() for b in batches]})
    return 0


# ---------------------------------------------------------------- repair
def _repair_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "table",
        help="table: PIPELINE (silver), or bronze.NAME / silver.NAME / quarantine.NAME / gold.MODEL",
    )
    p.add_argument(
        "--apply",
        action="store_true",
        help="commit the repair (default: a dry run that only lists what it would drop)",
    )


def _repair(args: argparse.Namespace, out: Output) -> int:
    project = load(args, out)
    table, name = _lake_table(project, args.table)
    found = table.repair(apply=args.apply)
    rows = "an unknown number of" if found.rows is None else f"{found.rows:,}"
    result = {"table": name, "uri": table.uri, "applied": found.applied, "files": found.files}
    result |= {"rows": found.rows, "version": found.version}
    if not found.files:
        out.text(f"{name}: every data file the Delta log references is on disk; nothing to repair")
    else:
        verb = "dropped" if found.applied else "would drop"
        out.text(f"{name}: {verb} {len(found.files)} missing data files holding {rows} rows:")
        for path in found.files:
            out.text(f"  {path}")
        out.text(
            f"warning: those rows leave {name}"
            + (
                " (bronze can rebuild silver)"
                if name.startswith(("silver.", "quarantine."))
                else ""
            )
        )
        out.text(
            f"committed as version {found.version}"
            if found.applied
            else "dry run: nothing changed; run again with --apply to commit it"
        )
    out.json(result)
    return 0


def _lake_table(project: Project, text: str) -> tuple[Table, str]:
    """The table a TABLE argument names: ``PIPELINE`` (its silver table) or ``layer.NAME``
    (the same rule as `weir history`'s argument)."""
    from weir import layout
    from weir.lake.table import Table

    layer, _, name = text.rpartition(".")
    layer = layer or "silver"
    if layer not in layout.LAYERS:
        raise UsageError(
            f"unknown layer {layer!r}",
            hint="use bronze.NAME, silver.NAME, quarantine.NAME or gold.MODEL",
        )
    table = Table(layout.table_uri(project.lake, layer, name), label=layer)
    if not table.exists():
        raise ConfigError(
            f"table {layer}.{name} does not exist yet",
            where=table.uri,
            hint=f"run what writes it first (`weir run +{name}`)",
        )
    return table, f"{layer}.{name}"


COMMANDS: dict[str, Command] = {
    "batches": (
        "a pipeline's batches between bronze and silver; `batches reject` moves a stuck one "
        "to quarantine",
        _batches_args,
        _batches,
    ),
    "history": (
        "versions of a Delta table with the runs that wrote them",
        _history_args,
        _history,
    ),
    "repair": (
        "drop a table's references to data files missing from disk (dry run unless --apply)",
        _repair_args,
        _repair,
    ),
}
