"""``weir serve``: the scheduler (and, with it, the HTTP API)."""

from __future__ import annotations

import argparse
from datetime import datetime

from weir.commands.base import Command, Output, load
from weir.errors import UsageError


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--once",
        action="store_true",
        help="run every fire due now, wait for it, exit (for cron or a Kubernetes CronJob); "
        "exit 1 when a run failed",
    )
    p.add_argument("--host", default=None, help="the API's address (default: serve.host)")
    p.add_argument("--port", type=int, default=None, help="the API's port (default: serve.port)")
    p.add_argument(
        "--now",
        default=None,
        metavar="ISO",
        help="with --once: take this time (ISO 8601 with an offset) as now — for tests and "
        "replays of a schedule",
    )


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--now {text!r} is not an ISO 8601 time", hint="e.g. 2026-03-29T03:30:00+02:00"
        ) from None
    if when.tzinfo is None:
        raise UsageError(f"--now {text!r} has no UTC offset", hint="add one, e.g. +00:00")
    return when


def _serve(args: argparse.Namespace, out: Output) -> int:
    from weir.serve import process

    now = _when(args.now)
    if now is not None and not args.once:
        raise UsageError("--now goes with --once", hint="weir serve --once --now ISO")
    project = load(args, out)
    with out.run_observer() as show:
        if args.once:
            records = process.run_once(project, now=now, observers=[show])
            failed = [r for r in records if r.status == "failed"]
            out.text(
                f"\n{len(records)} node(s) ran or were skipped, {len(failed)} failed"
                if records
                else "nothing was due"
            )
            out.json({"runs": [r.as_dict() for r in records]})
            return 1 if failed else 0
        from weir.serve.api import app

        return process.serve(
            project,
            host=args.host,
            port=args.port,
            observers=[show],
            app_factory=app,
            ready=out.progress,
        )


COMMANDS: dict[str, Command] = {
    "serve": (
        "fire pipelines, models and dbt steps by their schedule (cron), until stopped; "
        "--once: what is due now",
        _serve_args,
        _serve,
    ),
}
