"""``weir run`` and ``weir status``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from weir.commands.base import Command, Output, load, target_line

if TYPE_CHECKING:
    from weir.observe.health import NodeHealth


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


def _run(args: argparse.Namespace, out: Output) -> int:
    from weir.run import api

    project = load(args, out)
    with out.run_observer() as show:
        records = api.run(
            project,
            [*args.nodes, *args.select],
            exclude=args.exclude,
            observers=[show],
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

    project = load(args, out)
    nodes = health(project)
    failing = [n.name for n in nodes if args.fail_on != "none" and n.failing(args.fail_on)]
    if project.target:
        out.text(target_line(project))
    for n in nodes:
        out.text(
            f"{n.name:<16} {n.kind:<8} {n.status:<8} {n.last_run or 'never':<26} "
            f"{_freshness(n)}   {_runtime(n)}"
        )
    if failing:
        out.text(f"\nfailing (--fail-on {args.fail_on}): {', '.join(failing)}")
    out.json(
        {
            "ok": not failing,
            "target": project.target,
            "failing": failing,
            "nodes": [n.as_dict() for n in nodes],
        }
    )
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


COMMANDS: dict[str, Command] = {
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
}
