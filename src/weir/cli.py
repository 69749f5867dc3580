"""The ``weir`` command: a thin layer over the library.

Exit codes: 0 success, 1 a run failed, 2 configuration or usage error, 141 the output pipe
closed early (``weir status | head``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from weir import __version__
from weir.errors import WeirError

BROKEN_PIPE = 141
"""The exit code of a process whose output pipe closed early (128 + SIGPIPE, as shells report)."""


class Output:
    """Human text on stdout, progress on stderr; with --json only JSON on stdout.

    The JSON document is printed once, when the command has finished, with ``ok`` set from
    its exit code: every ``--json`` output has ``ok``, and ``ok`` is true exactly when the
    command exited 0."""

    def __init__(self, as_json: bool, quiet: bool = False):
        self.as_json = as_json
        self.quiet = quiet
        self.payload: dict[str, Any] = {}

    def progress(self, message: str) -> None:
        if not self.as_json and not self.quiet:
            print(f"  … {message}", file=sys.stderr, flush=True)

    def text(self, message: str = "") -> None:
        if not self.as_json:
            print(message, flush=True)

    def json(self, payload: dict[str, Any]) -> None:
        """The command's JSON result (printed by :meth:`finish`)."""
        self.payload.update(payload)

    def finish(self, code: int) -> None:
        if self.as_json:
            document = {**self.payload, "ok": code == 0}
            print(json.dumps(document, indent=2, default=str, sort_keys=True), flush=True)


def _common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """The options every command takes, before or after its name. Only the top-level parser
    sets defaults, so a subcommand's parser cannot reset a value given before the command."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    parser.add_argument(
        "--project", type=Path, default=default(Path(".")), help="project directory (default: .)"
    )
    parser.add_argument(
        "--target",
        default=default(None),
        metavar="NAME",
        help="the target of weir.yml to use (default: $WEIR_TARGET, else default_target)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print machine-readable JSON only",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="no progress lines on stderr (results and errors still print)",
    )


def build_parser() -> argparse.ArgumentParser:
    from weir.commands import COMMANDS

    parser = argparse.ArgumentParser(
        prog="weir",
        description="Declarative data pipelines into a Delta Lake medallion.",
        epilog="Exit codes: 0 success, 1 a run failed (status: a node failed or is stale), "
        "2 configuration or usage error, 130 interrupted, 141 output pipe closed.",
    )
    parser.add_argument("--version", action="version", version=f"weir {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, configure, _) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        _common(command)
        configure(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from weir.commands import COMMANDS

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else 2
    if not args.command:
        parser.print_help()
        return 2
    if args.command != "init":
        _pyarrow_without_pandas()
    out = Output(args.json, quiet=args.quiet)
    handler: Callable[[argparse.Namespace, Output], int] = COMMANDS[args.command][2]
    try:
        code = _handle(handler, args, out)
        out.finish(code)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `weir status | head`: the reader has what it wanted
        _drop_stdout()
        return BROKEN_PIPE
    except Exception as exc:  # a bug in weir, not a user mistake
        if os.environ.get("WEIR_DEBUG"):
            raise
        message = f"internal error: {type(exc).__name__}: {exc}"
        hint = "this is a bug in weir; re-run with WEIR_DEBUG=1 for the traceback and report it"
        print(f"{message}\n  hint: {hint}", file=sys.stderr)
        if out.as_json:
            out.payload = {"error": message, "where": None, "hint": hint, "kind": "InternalError"}
            with contextlib.suppress(BrokenPipeError):
                out.finish(1)
        return 1


def _handle(
    handler: Callable[[argparse.Namespace, Output], int], args: argparse.Namespace, out: Output
) -> int:
    try:
        return handler(args, out)
    except WeirError as exc:
        _report(out, exc)
        return exc.exit_code


def _pyarrow_without_pandas() -> None:
    """Spare this process pandas' import (about 0.9 s, as long as the rest of start-up).

    pyarrow imports pandas, when it is installed, the first time it builds a table, only to
    recognise DataFrames; weir never hands it one. Building one table while ``import pandas``
    fails settles that check for the process. pandas itself stays importable: pyarrow imports
    it again when asked to convert to pandas, and anything else may import it normally."""
    if "pandas" in sys.modules:
        return
    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        import pyarrow as pa

        pa.Table.from_arrays([pa.array([0])], names=["x"])
    finally:
        sys.meta_path.remove(blocker)


class _NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError("pandas is not for weir's pyarrow", name=fullname)


def _report(out: Output, exc: WeirError) -> None:
    """A user-facing error: on stderr, or with --json as the document (``ok`` false, and the
    error's ``error`` message, ``where``, ``hint`` and ``kind``, e.g. ConfigError)."""
    if out.as_json:
        out.payload = {
            "error": exc.message,
            "where": exc.where,
            "hint": exc.hint,
            "kind": type(exc).__name__,
        }
    else:
        print(f"error: {exc}", file=sys.stderr)


def entry() -> None:
    """The console script: ``main``, then a hard exit once output is flushed.

    delta-rs and pyarrow can abort the interpreter while it tears down their native threads
    (delta-io/delta-rs#2184: "terminate called without an active exception"), turning a
    successful run into exit code 134. Every table write has committed by now, so skipping
    interpreter teardown loses nothing."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = BROKEN_PIPE
    with contextlib.suppress(BrokenPipeError):
        sys.stderr.flush()
    os._exit(code)


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that flushing what is left fails no more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    entry()
