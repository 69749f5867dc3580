"""The ``weir`` command: a thin layer over the library.

Exit codes: 0 success, 1 a run failed, 2 configuration or usage error, 141 the output pipe
closed early (``weir status | head``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from weir import __version__
from weir.commands import COMMANDS
from weir.commands.base import Output, logging_to
from weir.errors import WeirError

BROKEN_PIPE = 141
"""The exit code of a process whose output pipe closed early (128 + SIGPIPE, as shells report)."""


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
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="debug logging on stderr",
    )
    parser.add_argument(
        "--no-color",
        action="store_true",
        default=default(False),
        help="no colour on a terminal (as when NO_COLOR is set)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=default("text"),
        help="json: stderr carries NDJSON only, one object a line per run event, log record "
        "and error, for orchestrators (default: text)",
    )


def build_parser() -> argparse.ArgumentParser:
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
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else 2
    if not args.command:
        parser.print_help()
        return 2
    if args.command != "init":
        _lean_pyarrow()
    out = Output.of(args)
    handler: Callable[[argparse.Namespace, Output], int] = COMMANDS[args.command][2]
    try:
        with logging_to(out, verbose=args.verbose):
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
        message = out.scrub(f"internal error: {type(exc).__name__}: {exc}")
        hint = "this is a bug in weir; re-run with WEIR_DEBUG=1 for the traceback and report it"
        document = {"error": message, "where": None, "hint": hint, "kind": "InternalError"}
        with contextlib.suppress(BrokenPipeError):
            if out.log_format == "json":
                out.event({"event": "error", **document})
            else:
                print(f"{message}\n  hint: {hint}", file=sys.stderr)
            if out.as_json:
                out.payload = document
                out.finish(1)
        return 1


def _handle(
    handler: Callable[[argparse.Namespace, Output], int], args: argparse.Namespace, out: Output
) -> int:
    try:
        return handler(args, out)
    except WeirError as exc:
        out.error(exc)
        return exc.exit_code


def _lean_pyarrow() -> None:
    """Spare this process pyarrow's optional imports of numpy and pandas, which weir never
    uses: pandas costs about 0.9 s, numpy about 0.085 s of a 0.6 s no-op run.

    pyarrow imports numpy, when it is installed, as it is imported itself; it imports pandas
    the first time it builds a table, only to recognise DataFrames. Importing pyarrow while
    ``import numpy`` fails, and building one table while ``import pandas`` fails, settles both
    for the process: pyarrow then works without them (``to_numpy()`` and ``to_pandas()`` are
    the only calls that would need them, and weir makes neither; dbt runs in its own process).
    Nothing happens when pyarrow is already imported (a program that calls ``main``)."""
    if "pyarrow" in sys.modules:
        return
    blocker = _Without(("numpy", "pandas"))
    sys.meta_path.insert(0, blocker)
    try:
        import pyarrow as pa

        pa.Table.from_arrays([pa.array([0])], names=["x"])
    finally:
        sys.meta_path.remove(blocker)


class _Without(importlib.abc.MetaPathFinder):
    """Import fails for these top-level packages (and theirs) while this finder is first."""

    def __init__(self, names: tuple[str, ...]):
        self.names = names

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"{fullname} is not for weir's pyarrow", name=fullname)


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
