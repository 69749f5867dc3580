"""The CLI commands: each one parses nothing and prints; it calls the library and reports."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weir.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from weir.cli import Output
    from weir.lake.table import Table
    from weir.observe.health import NodeHealth
    from weir.observe.record import RunRecord
    from weir.run import api
    from weir.spec import Project


def _project(args: argparse.Namespace) -> Project:
    from weir.quality.validate import check_project
    from weir.spec import load_project

    project = load_project(Path(args.project))
    check_project(project)
    return project


# ---------------------------------------------------------------- init
def _init_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="directory to create the project in")
    p.add_argument("--force", action="store_true", help="write into a non-empty directory")


def _init(args: argparse.Namespace, out: Output) -> int:
    from weir.scaffold import scaffold

    written = scaffold(args.dir, force=args.force)
    out.text(f"created a weir project in {args.dir}:")
    for path in written:
        out.text(f"  {path}")
    out.text(f"\nnext: weir run --project {args.dir}")
    out.json({"project": str(args.dir), "files": [str(p) for p in written]})
    return 0


# ---------------------------------------------------------------- validate
def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail when a node lacks an environment variable it needs (default: list them)",
    )


def _validate(args: argparse.Namespace, out: Output) -> int:
    from weir.transform.conventions import check_conventions

    project = _project(args)
    if args.strict:
        project.require_env(sorted(project.missing_env))
    conventions = project.spec.conventions
    findings = check_conventions(
        project.models, disable=conventions.disable, prefixes=conventions.prefixes
    )
    out.text(
        f"{project.root}: ok — {len(project.pipelines)} pipelines, "
        f"{len(project.contracts)} contracts, {len(project.models)} models, "
        f"{len(project.dbt_steps)} dbt steps"
        + (f", {len(findings)} convention warnings" if findings else "")
    )
    for pipeline in project.pipelines.values():
        out.text(
            f"  {pipeline.name}: {pipeline.spec.extract['source']} → bronze → silver "
            f"({pipeline.spec.load.strategy}), contract {pipeline.contract.id}"
        )
    for model in project.models.values():
        reads = ", ".join(model.depends_on) or "nothing"
        out.text(f"  {model.name}: {reads} → {model.table} ({model.spec.materialized})")
    for step in project.dbt_steps.values():
        out.text(f"  {step.name}: dbt project {step.spec.dbt.project_dir}")
    for f in findings:
        out.text(f"  warning [{f.rule}] {f.path}: {f.message}\n    hint: {f.hint}")
    for warning in project.warnings:
        out.text(f"  warning: {warning}")
    for name, lacking in sorted(project.missing_env.items()):
        out.text(f"  warning: {name} cannot run here: {'; '.join(lacking)}")
    out.json(
        {
            "ok": True,
            "name": project.spec.name,
            "pipelines": sorted(project.pipelines),
            "contracts": sorted(project.contracts),
            "models": sorted(project.models),
            "dbt_steps": sorted(project.dbt_steps),
            "warnings": [f.as_dict() for f in findings],
            "missing_env": project.missing_env,
            "config_warnings": project.warnings,
        }
    )
    return 0


# ---------------------------------------------------------------- run
def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "nodes",
        nargs="*",
        metavar="NODE",
        help="pipelines, models or dbt steps to run, as selectors (default: all)",
    )
    p.add_argument(
        "-s",
        "--select",
        action="append",
        default=[],
        metavar="SELECTOR",
        help="name, tag:TAG, +NAME (with upstream), NAME+ (with downstream), 2+NAME / NAME+1 "
        "(that many levels); repeatable",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="SELECTOR",
        help="leave out what this selects (same syntax); repeatable",
    )
    p.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild: pipelines replay all of bronze into new silver and quarantine tables "
        "with today's definition; incremental and partition-swap models recompute in full",
    )
    p.add_argument(
        "--threads",
        type=_threads,
        default=None,
        help="independent nodes run in parallel, up to this many (default: weir.yml threads)",
    )
    p.add_argument(
        "--wait", action="store_true", help="wait for a running instance instead of refusing"
    )


def _threads(text: str) -> int:
    from weir.spec.project import MAX_THREADS

    if not text.isdigit() or not 1 <= int(text) <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_THREADS}, not {text!r}")
    return int(text)


class _RunDisplay:
    """Shows a run's events: progress on stderr (prefixed by node when several run), a
    summary per node on stdout."""

    def __init__(self, out: Output):
        self.out = out
        self.prefix = False

    def __call__(self, event: api.Event) -> None:
        from weir.run import api

        out = self.out
        if isinstance(event, api.RunStarted):
            self.prefix = len(event.nodes) > 1
        elif isinstance(event, api.NodeStarted):
            out.progress(f"▶ {event.node} ({event.kind})")
        elif isinstance(event, api.NodeProgress):
            out.progress(f"[{event.node}] {event.message}" if self.prefix else event.message)
        elif isinstance(event, api.NodeFinished):
            out.text(f"■ {event.node} ({event.kind})\n{summary(event.record)}")


def _run(args: argparse.Namespace, out: Output) -> int:
    from weir.run import api

    project = _project(args)
    records = api.run(
        project,
        [*args.nodes, *args.select],
        exclude=args.exclude,
        observers=[_RunDisplay(out)],
        wait=args.wait,
        full_refresh=args.full_refresh,
        threads=args.threads,
    )
    failed = [r for r in records if r.status == "failed"]
    skipped = [r for r in records if r.status == "skipped"]
    changed = [r for r in records if r.changed]
    if not failed and not skipped:
        out.text(
            "\n"
            + (
                f"done: {len(changed)} of {len(records)} nodes changed their tables"
                if changed
                else "done: everything was up to date; no table changed"
            )
        )
    else:
        out.text(
            f"\n{len(failed)} of {len(records)} nodes failed"
            + (
                f", {len(skipped)} skipped because an upstream node did not succeed"
                if skipped
                else ""
            )
        )
    out.json({"runs": [r.as_dict() for r in records]})
    return 1 if failed or skipped else 0


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


# ---------------------------------------------------------------- status
def _status_args(p: argparse.ArgumentParser) -> None:
    from weir.observe.health import FAIL_ON

    p.add_argument(
        "--fail-on",
        choices=[*FAIL_ON, "none"],
        default="stale",
        help="exit 1 when a node's last run failed (failed), that or a pipeline is past its "
        "freshness SLA (stale, the default), any of those or a node never ran (never); "
        "none: always exit 0",
    )


def _status(args: argparse.Namespace, out: Output) -> int:
    from weir.observe.health import health

    nodes = health(_project(args))
    failing = [n.name for n in nodes if args.fail_on != "none" and n.failing(args.fail_on)]
    for n in nodes:
        out.text(
            f"{n.name:<16} {n.kind:<8} {n.status:<8} {n.last_run or 'never':<26} "
            f"{_freshness(n)}   {_runtime(n)}"
        )
    if failing:
        out.text(f"\nfailing (--fail-on {args.fail_on}): {', '.join(failing)}")
    out.json({"ok": not failing, "failing": failing, "nodes": [n.as_dict() for n in nodes]})
    return 1 if failing else 0


def _freshness(n: NodeHealth) -> str:
    if n.status == "never":
        return "no runs yet"
    if n.age_hours is None:
        return "no data loaded yet"
    text = f"data loaded {n.age_hours:.1f}h ago"
    if n.freshness_sla_hours is not None:
        text += f" (SLA {n.freshness_sla_hours:g}h: {'STALE' if n.stale else 'fresh'})"
    return text


def _runtime(n: NodeHealth) -> str:
    if n.duration_seconds is None:
        return ""
    text = f"took {n.duration_seconds:.1f}s"
    return text + (f" (SLA {n.runtime_sla_minutes} min)" if n.runtime_sla_minutes else "")


# ---------------------------------------------------------------- history
def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a gold model (its file name in models/, without .sql)")


def _show_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument(
        "--limit", type=_positive, default=20, help="rows to show (default 20, at most 10000)"
    )


def _positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to 10000, not {text!r}")
    return int(text)


def _model(project: Project, name: str) -> Any:
    from weir.hints import did_you_mean

    if name not in project.models:
        raise UsageError(
            f"no model named {name!r}",
            hint=did_you_mean(name, project.models) or "models are the .sql files in models/",
        )
    return project.models[name]


def _compile(args: argparse.Namespace, out: Output) -> int:
    from weir.run.model import compiled_sql

    model = _model(_project(args), args.model)
    sql = compiled_sql(model, pretty=True)
    out.text(sql)
    out.json({"model": model.name, "sql": sql, "reads": list(model.depends_on)})
    return 0


def _show(args: argparse.Namespace, out: Output) -> int:
    from weir.run.model import ModelRun

    project = _project(args)
    model = _model(project, args.model)
    rows = ModelRun(project, model, progress=out.progress).preview(args.limit)
    out.text(_grid(rows.column_names, rows.to_pylist()))
    out.text(f"({rows.num_rows} rows shown, at most {args.limit}; nothing was written)")
    out.json({"model": model.name, "columns": rows.column_names, "rows": rows.to_pylist()})
    return 0


def _grid(columns: list[str], rows: list[dict[str, Any]], width: int = 30) -> str:
    """Rows as aligned text columns, each value cut at ``width`` characters."""

    def cell(value: Any) -> str:
        text = "NULL" if value is None else str(value).replace("\n", " ")
        return text if len(text) <= width else text[: width - 1] + "…"

    table = [columns, *([cell(r[c]) for c in columns] for r in rows)]
    sizes = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(n) for v, n in zip(line, sizes, strict=True)) for line in table]
    lines.insert(1, "  ".join("-" * n for n in sizes))
    return "\n".join(line.rstrip() for line in lines)


def _history_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "table",
        help="table: PIPELINE (silver), or bronze.NAME / silver.NAME / quarantine.NAME / gold.MODEL",
    )
    p.add_argument("--limit", type=int, default=20, help="newest N versions (default 20)")


def _history(args: argparse.Namespace, out: Output) -> int:
    project = _project(args)
    table, qualified = _lake_table(project, args.table)
    layer, _, name = qualified.partition(".")
    dt = table.dt
    assert dt is not None  # _lake_table checked that it exists
    entries = []
    for info in dt.history(args.limit):
        metrics = info.get("operationMetrics", {})
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


# ---------------------------------------------------------------- verify
def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pipeline", help="pipeline to run twice")


def _verify(args: argparse.Namespace, out: Output) -> int:
    from weir.run.verify import verify

    project = _project(args)
    report = verify(project, project.pipeline(args.pipeline), progress=out.progress)
    out.text(report.render())
    out.json(report.as_dict())
    return 0 if report.ok else 1


# ---------------------------------------------------------------- schema diff
def _schema_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action", choices=["diff"], help="diff: contract vs pending source data vs tables"
    )
    p.add_argument("pipeline", help="pipeline whose contract to compare")


def _schema(args: argparse.Namespace, out: Output) -> int:
    from weir.run.verify import schema_diff

    project = _project(args)
    sections = schema_diff(project, project.pipeline(args.pipeline))
    breaking = False
    for title, diff in sections:
        out.text(diff.render(title) if not diff.empty else f"{title}\n    no differences")
        breaking = breaking or diff.breaking
    out.json(
        {
            "breaking": breaking,
            "sections": [
                {"title": t, "added": d.added, "removed": d.removed, "changed": d.changed}
                for t, d in sections
            ],
        }
    )
    return 1 if breaking else 0


# ---------------------------------------------------------------- lineage
def _lineage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "target",
        nargs="?",
        metavar="TABLE[.COLUMN]",
        help="gold.MODEL (or any table) for its upstream and downstream; "
        "gold.MODEL.COLUMN or silver.TABLE.COLUMN for the column's chain back to the source",
    )
    p.add_argument(
        "--format",
        choices=["text", "mermaid", "json"],
        default="text",
        help="text tree (default), a Mermaid flowchart, or JSON",
    )


def _lineage(args: argparse.Namespace, out: Output) -> int:
    from weir.cli import Output
    from weir.transform.lineage import project_lineage
    from weir.transform.lineage_view import render

    lineage = project_lineage(_project(args))
    result = render(lineage, args.target, "json" if out.as_json else args.format)
    if isinstance(result, dict):
        if out.as_json:
            out.json(result)
        else:  # --format json: the same document, printed here
            alone = Output(as_json=True)
            alone.json(result)
            alone.finish(0)
        return 0
    out.text(result)
    for note in lineage.notes:
        out.progress(note)
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
    project = _project(args)
    words = list(args.words)
    if len(words) == 1:
        return _list_batches(project, project.pipeline(words[0]), out)
    if words[0] != "reject" or len(words) != 3 or not words[2].isdigit():
        raise UsageError(
            "expected `weir batches PIPELINE` or `weir batches reject PIPELINE BATCH --reason …`"
        )
    if not args.reason:
        raise UsageError("reject needs --reason", hint="say why the batch is rejected")
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
    project = _project(args)
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
    from weir.lake.table import Table

    layer, _, name = text.rpartition(".")
    layer = layer or "silver"
    if layer not in ("bronze", "silver", "quarantine", "gold"):
        raise UsageError(
            f"unknown layer {layer!r}",
            hint="use bronze.NAME, silver.NAME, quarantine.NAME or gold.MODEL",
        )
    table = Table(f"{project.lake}/{layer}/{name}", label=layer)
    if not table.exists():
        raise ConfigError(
            f"table {layer}.{name} does not exist yet",
            where=table.uri,
            hint=f"run what writes it first (`weir run +{name}`)",
        )
    return table, f"{layer}.{name}"


def _none(p: argparse.ArgumentParser) -> None:
    return None


Command = tuple[
    str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace, "Output"], int]
]
COMMANDS: dict[str, Command] = {
    "init": (
        "scaffold a new project with one working pipeline and its contract",
        _init_args,
        _init,
    ),
    "validate": (
        "validate weir.yml, pipelines and contracts without touching data",
        _validate_args,
        _validate,
    ),
    "run": (
        "run pipelines (source → bronze → silver), gold models and dbt steps in dependency order",
        _run_args,
        _run,
    ),
    "status": (
        "last run of every node, with freshness against its SLA; exits 1 when one failed or "
        "is stale (see --fail-on)",
        _status_args,
        _status,
    ),
    "batches": (
        "a pipeline's batches between bronze and silver; `batches reject` moves a stuck one "
        "to quarantine",
        _batches_args,
        _batches,
    ),
    "compile": ("print the SQL a model runs (after weir's rewrites)", _model_args, _compile),
    "show": (
        "preview a model's result from the current sources; writes nothing",
        _show_args,
        _show,
    ),
    "history": ("versions of a Delta table with the runs that wrote them", _history_args, _history),
    "verify": (
        "run a pipeline twice and prove the second run changes nothing",
        _verify_args,
        _verify,
    ),
    "schema": (
        "schema tools: `schema diff PIPELINE` compares contract, source and tables",
        _schema_args,
        _schema,
    ),
    "lineage": (
        "table and column lineage: source → bronze → silver → gold → dbt, from config alone",
        _lineage_args,
        _lineage,
    ),
    "repair": (
        "drop a table's references to data files missing from disk (dry run unless --apply)",
        _repair_args,
        _repair,
    ),
}


# ---------------------------------------------------------------- forget
def _forget_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "selector",
        nargs="+",
        metavar="SELECTOR",
        help="[PIPELINE] COLUMN=VALUE …: a PII column and its value (hashed with the salt; "
        "every pipeline with that column, or only PIPELINE), or PIPELINE and a value per "
        "natural-key column; a VALUE of - is read from standard input",
    )
    p.add_argument("--reason", required=True, help="why (a request's reference); kept in the audit")
    p.add_argument(
        "--apply",
        action="store_true",
        help="delete and remove the files (default: a dry run that only reports)",
    )
    p.add_argument("--wait", action="store_true", help="wait for running nodes instead of refusing")


def _forget(args: argparse.Namespace, out: Output) -> int:
    import sys

    from weir.forget.forget import forget
    from weir.forget.subject import Request

    project = _project(args)
    request = Request.parse(args.selector, lambda: sys.stdin.readline().rstrip("\r\n"))
    outcome = forget(
        project, request, args.reason, apply=args.apply, wait=args.wait, progress=out.progress
    )
    mode = "" if outcome.applied else " — dry run, nothing changed"
    out.text(f"forget {outcome.subject.describe()}{mode}")
    verb = "removed" if outcome.applied else "to remove"
    for t in outcome.tables:
        if t.rows or t.files or t.note:
            line = f"  {t.table:<28} {t.rows:>6,} rows · {t.files} files {verb}"
            out.text(line + (f"  ({t.note})" if t.note else ""))
    for u in outcome.unlocated:
        out.text(f"  {u.name:<28} not located ({u.kind}): {u.note}")
    records = outcome.records
    if any(records.values()):
        out.text(
            f"  run records: {records.get('runs.jsonl', 0)} in the JSON lines, "
            f"{records.get('state.db', 0)} in the state store"
            + (" redacted" if outcome.applied else " to redact")
        )
    if outcome.scratch:
        out.text(f"  {outcome.scratch} files left in .weir/ by interrupted runs {verb}")
    for warning in outcome.warnings:
        out.text(f"  warning: {warning}")
    if not outcome.found:
        out.text("nothing to forget: no table, file or run record holds the subject")
    if outcome.applied:
        out.text(f"audit {outcome.audit_id}: recorded in the state store and .weir/audit.jsonl")
    elif outcome.found:
        out.text("add --apply to forget it")
    out.json(outcome.as_dict())
    return 0


COMMANDS["forget"] = (
    "remove a data subject (a PII value, or a pipeline's key) from every table and file "
    "that holds it; a dry run unless --apply",
    _forget_args,
    _forget,
)
