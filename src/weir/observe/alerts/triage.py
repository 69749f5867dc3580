"""What to do first about a failed run: the seeds' failure triage, from the error message
and the stage it failed at. One line, put at the top of the alert."""

from __future__ import annotations

import re

_BY_ERROR: tuple[tuple[str, str], ...] = (
    (
        r"environment variable|is not set",
        "export the missing environment variables, then re-run",
    ),
    (
        r"permission|denied|forbidden|unauthori[sz]ed|\b40[13]\b|token|expired|credential",
        "check the credentials the node uses and whether they expired",
    ),
    (
        r"time[d ]?out|connect|unreachable|refused|name resolution|\b5\d\d\b|temporar",
        "check that the source is reachable (network, credentials); a transient error "
        "clears on the next run",
    ),
    (
        r"drift|schema",
        "the source's schema changed: compare it with `weir schema diff {node}`, then "
        "update the contract (and backfill if needed)",
    ),
    (
        r"quarantin|quality|check",
        "investigate the source data: the failing checks are in the run record "
        "(`weir status`), the rejected rows in the quarantine table",
    ),
    (r"memory|\boom\b", "raise duckdb_memory_limit in weir.yml, or load in smaller batches"),
    (r"lock", "another run holds the node's lock: wait for it, or find the stuck process"),
    (r"duplicate|unique", "look for duplicate keys in the source and check the natural key"),
)

_BY_STAGE: dict[str, str] = {
    "start": "read the error: the node failed before its first stage (configuration, secrets)",
    "position": "check the source is reachable and the stored position (`weir status`)",
    "extract": "check the source: is it reachable, and did its data change shape?",
    "bronze": "check the lake's storage (space, permissions), then re-run",
    "silver": "check the lake's storage (space, permissions), then re-run",
    "transform": "check the transform's SQL against the columns it reads",
    "read": "check that the tables the model reads exist and have the columns it uses",
    "gold": "check the lake's storage (space, permissions), then re-run",
    "checks": "the model's checks failed: look at its rows and the checks in the run record",
    "build": "read dbt's log for the model that failed",
}


def first_step(node: str, stage: str, error: str | None) -> str:
    """The first thing to do about ``node`` failing at ``stage`` with ``error``: weir's
    own hint when the error has one (``…\n  hint: …``), else the triage's advice for the
    kind of error or, failing that, for the stage."""
    first, _, hint = (error or "").partition("\n  hint: ")
    if hint.strip():
        return hint.strip()
    text = first.lower()
    for pattern, advice in _BY_ERROR:
        if re.search(pattern, text):
            return advice.format(node=node)
    advice = _BY_STAGE.get(stage, "read the error and fix its cause")
    return f"{advice}; re-running `weir run {node}` is safe (runs are idempotent)"
