"""The CLI commands: each one calls the library and reports; :mod:`weir.cli` parses.

Every command module keeps its commands in a ``COMMANDS`` dict (name → help text, the
function adding its arguments, the handler); this one lists them all, in the order
``weir --help`` shows them. Nothing here imports an engine: handlers import what they use.
"""

from __future__ import annotations

from weir.commands import alerts, health, infer, models, project, run, serve, tables
from weir.commands.base import Command

_ORDER = (
    "init",
    "infer",
    "validate",
    "run",
    "status",
    "batches",
    "compile",
    "show",
    "history",
    "verify",
    "schema",
    "lineage",
    "repair",
    "forget",
    "serve",
    "health",
    "metrics",
    "alerts",
)
_ALL: dict[str, Command] = {
    **project.COMMANDS,
    **infer.COMMANDS,
    **run.COMMANDS,
    **models.COMMANDS,
    **tables.COMMANDS,
    **serve.COMMANDS,
    **health.COMMANDS,
    **alerts.COMMANDS,
}
COMMANDS: dict[str, Command] = {name: _ALL[name] for name in _ORDER} | _ALL
