"""`weir alerts`: the incidents alerts opened, and how their deliveries went."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from weir.commands.base import Command, Output, load


def _alerts_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--open", action="store_true", help="only the incidents still open")
    p.add_argument("--limit", type=int, default=50, help="newest N incidents (default 50)")


def _alerts(args: argparse.Namespace, out: Output) -> int:
    from weir.observe.alerts import incidents

    project = load(args, out)
    found = incidents(project, open_only=args.open, limit=max(args.limit, 1))
    if not found:
        out.text("no open incidents" if args.open else "no incidents")
    for incident in found:
        out.text(_line(incident))
        if incident.get("first_step") and incident["status"] == "open":
            out.text(f"    first: {incident['first_step']}")
        for d in incident["deliveries"]:
            out.text(f"    {_delivery(d)}")
    counts = Counter(d["status"] for i in found for d in i["deliveries"])
    if counts["failed"] or counts["dropped"] or counts["queued"]:
        out.text(
            f"\ndeliveries: {counts['sent']} sent, {counts['queued']} queued, "
            f"{counts['failed']} failed, {counts['dropped']} dropped (rate limit)"
        )
    out.json({"incidents": found, "deliveries": dict(counts)})
    return 0


def _line(incident: dict[str, Any]) -> str:
    status = incident["status"]
    when = incident["opened_at"][:19].replace("T", " ")
    repeat = f" ×{incident['occurrences']}" if incident["occurrences"] > 1 else ""
    line = f"{incident['severity']} {status:<8} {when}  {incident['node']} {incident['kind']}"
    summary = (incident["message"] or "").partition("\n")[0]  # the error's first line
    line += f"{repeat}: {summary}"
    if status == "resolved" and incident.get("resolved_at"):
        line += f" — resolved {incident['resolved_at'][:19].replace('T', ' ')}"
    return line


def _delivery(d: dict[str, Any]) -> str:
    text = f"{d['event']:<8} → {d['channel']}: {d['status']}"
    if d["attempts"] > 1 or d["status"] in ("failed", "queued"):
        text += f" after {d['attempts']} attempt(s)"
    if d["status"] == "queued" and d["next_attempt_at"]:
        text += f", next at {d['next_attempt_at'][:19].replace('T', ' ')}"
    if d["last_error"]:
        text += f" ({d['last_error']})"
    return text


COMMANDS: dict[str, Command] = {
    "alerts": (
        "the incidents alerts opened (failures, SLA breaches, stale data) and their "
        "deliveries to channels; --open: only those still open",
        _alerts_args,
        _alerts,
    ),
}
