"""One dbt command in a process of its own: ``python -m weir.run.dbt_child RESULT ARGS…``.

dbt keeps process-wide state (flags, event loggers, dbt-duckdb's open DuckDB file); some of
its commands (``deps``, ``clean``, ``init``) move the process into the project folder, and a
Python model may do anything to its process. Run in weir's process, that would reach every
other thread (the working directory first of all); here it stays in this child, which ends
when the command does.

What dbt returns is written to RESULT as JSON: ``success``, and the exception it reports, if
any: ``message``, ``type`` and the node it names (``unique_id``, ``path``). ``missing``: dbt
is not installed. This module imports nothing from weir, so the child starts with dbt only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def run(args: list[str]) -> dict[str, Any]:
    try:
        from dbt.cli.main import dbtRunner
    except ImportError as exc:
        return {"success": False, "missing": str(exc)}
    result = dbtRunner().invoke(args)
    outcome: dict[str, Any] = {"success": bool(result.success)}
    error = result.exception
    if error is not None:
        node = getattr(error, "node", None)
        outcome["error"] = {
            "message": str(error).strip(),
            "type": type(error).__name__,
            "unique_id": getattr(node, "unique_id", None),
            "path": getattr(node, "original_file_path", None),
        }
    return outcome


def main(argv: list[str]) -> int:
    result, args = Path(argv[0]), argv[1:]
    outcome = run(args)
    result.write_text(json.dumps(outcome, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
