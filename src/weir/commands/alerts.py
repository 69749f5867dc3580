"""`weir alerts`."""

from __future__ import annotations

from weir.commands.base import Command

COMMANDS: dict[str, Command] = {}
