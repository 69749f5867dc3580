"""Commands about the project as a whole: init, validate, verify, schema diff, lineage,
forget."""

from __future__ import annotations

import argparse
from pathlib import Path

from weir.commands.base import Command, Output, load, target_line


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

    project = load(args, out)
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
    if project.target:
        out.text(f"  {target_line(project)}")
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
            "target": project.target,
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


# ---------------------------------------------------------------- verify
def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pipeline", help="pipeline to run twice")


def _verify(args: argparse.Namespace, out: Output) -> int:
    from weir.run.verify import verify

    project = load(args, out)
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

    project = load(args, out)
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
        "table",  # not "target": that is the global --target
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
    from weir.run.dbt import dbt_graph
    from weir.transform.lineage import project_lineage
    from weir.transform.lineage_view import render

    lineage = project_lineage(load(args, out), dbt=dbt_graph)
    result = render(lineage, args.table, "json" if out.as_json else args.format)
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

    project = load(args, out)
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
    "forget": (
        "remove a data subject (a PII value, or a pipeline's key) from every table and file "
        "that holds it; a dry run unless --apply",
        _forget_args,
        _forget,
    ),
}
