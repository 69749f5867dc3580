"""What every command shares: :class:`Output` (where text, progress, logs and JSON go) and
loading the project.

Streams: results on stdout (or, with ``--json``, one JSON document there at the end);
progress, warnings and errors on stderr. On a terminal both are coloured (unless
``NO_COLOR`` is set or ``--no-color`` given) and ``weir run`` draws progress bars; piped,
they are plain lines. With ``--log-format json`` stderr carries only NDJSON: one object a
line, for each run event, log record, progress line and error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

    from weir.errors import WeirError
    from weir.observe.events import Observer
    from weir.observe.ndjson import NdjsonEvents
    from weir.spec import Project

Command = tuple[
    str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace, "Output"], int]
]
"""A command: its help text, the function adding its arguments, its handler."""


def load(args: argparse.Namespace, out: Output) -> Project:
    """The project ``--project`` names, with the target ``--target`` (or the environment)
    chooses; its checks validated (what their kinds need, the model columns they name).
    From here on, ``out`` scrubs the project's secrets from everything it prints."""
    from weir.quality.validate import check_project
    from weir.spec import load_project

    project = load_project(Path(args.project), target=args.target)
    out.hide(project.secrets)
    check_project(project)
    return project


def _wants_color(stream: TextIO, environ: Mapping[str, str], no_color: bool) -> bool:
    """Colour on ``stream``: a terminal, and neither ``NO_COLOR`` (https://no-color.org)
    nor ``--no-color``."""
    return not no_color and not environ.get("NO_COLOR") and _isatty(stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


class Output:
    """Human text on stdout, progress on stderr; with --json only JSON on stdout.

    The JSON document is printed once, when the command has finished, with ``ok`` set from
    its exit code: every ``--json`` output has ``ok``, and ``ok`` is true exactly when the
    command exited 0."""

    def __init__(
        self,
        as_json: bool = False,
        quiet: bool = False,
        *,
        log_format: str = "text",
        color: bool = False,
        live: bool = False,
    ):
        self.as_json = as_json
        self.quiet = quiet
        self.log_format = log_format
        self.color = color
        """Colour on the terminal (stdout and stderr both are one)."""
        self.live = live
        """Progress bars on the terminal (both streams are one; not --json, -q or JSON logs)."""
        self.payload: dict[str, Any] = {}
        self._consoles: dict[str, Console] = {}
        self._events: NdjsonEvents | None = None
        self.bars_shown = False
        """True while progress bars are drawn: text goes above them, through :attr:`console`."""
        self.scrub: Callable[[str], str] = str
        """Applied to every line and value printed (:meth:`hide` sets it)."""

    def hide(self, secrets: frozenset[str]) -> None:
        """Print nothing of ``secrets`` from now on (a loaded project's credentials, salt,
        values from the environment): errors, results, JSON, progress and logs alike."""
        from weir.observe.record import Scrubber

        self.scrub = Scrubber(secrets)

    @classmethod
    def of(cls, args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> Output:
        """The output the global options ask for, on this process's streams."""
        terminal = _isatty(sys.stdout) and _isatty(sys.stderr)
        log_format = str(getattr(args, "log_format", "text"))
        color = terminal and _wants_color(sys.stdout, environ, bool(args.no_color))
        live = terminal and not (args.json or args.quiet or log_format == "json")
        return cls(args.json, quiet=args.quiet, log_format=log_format, color=color, live=live)

    # ---------------------------------------------------------------- the streams
    @property
    def console(self) -> Console:
        """stderr on the terminal, through rich (imported only when colour or bars need it)."""
        return self._rich("stderr")

    def _rich(self, stream: str) -> Console:
        if stream not in self._consoles:
            from rich.console import Console

            self._consoles[stream] = Console(
                file=sys.stderr if stream == "stderr" else sys.stdout,
                no_color=not self.color,
                highlight=False,
                soft_wrap=True,
            )
        return self._consoles[stream]

    def progress(self, message: str) -> None:
        """A line of progress on stderr (not with --json or -q)."""
        message = self.scrub(message)
        if self.log_format == "json":
            self.event({"event": "progress", "message": message})
        elif not self.as_json and not self.quiet:
            self._stderr(f"  … {message}", "dim")

    def text(self, message: str = "") -> None:
        """Result text on stdout (not with --json)."""
        if self.as_json:
            return
        message = self.scrub(message)
        if self.color or self.bars_shown:
            console = self.console if self.bars_shown else self._rich("stdout")
            for line in message.split("\n"):
                console.print(_text(line, _style(line) if self.color else None))
        else:
            print(message, flush=True)

    def error(self, exc: WeirError) -> None:
        """A user-facing error: on stderr, or with --json as the document (``ok`` false,
        and the error's ``error`` message, ``where``, ``hint`` and ``kind``)."""
        scrub = self.scrub
        document = {
            "error": scrub(exc.message),
            "where": scrub(exc.where) if exc.where else exc.where,
            "hint": scrub(exc.hint) if exc.hint else exc.hint,
            "kind": type(exc).__name__,
        }
        if self.as_json:
            self.payload = document
        if self.log_format == "json":
            self.event({"event": "error", **document})
        elif not self.as_json:
            self._stderr(scrub(f"error: {exc}"), "red")

    def log(self, record: logging.LogRecord) -> None:
        """A log record (the process's one logging handler sends them here)."""
        message = self.scrub(record.getMessage())
        if self.log_format == "json":
            level = record.levelname.lower()
            self.event({"event": "log", "level": level, "logger": record.name, "message": message})
            return
        level = record.levelname.lower()
        style = {"warning": "yellow", "error": "red", "critical": "red"}.get(level, "dim")
        self._stderr(f"{level}: {message}", style)

    def event(self, data: dict[str, Any]) -> None:
        """One NDJSON line on stderr (``--log-format json``)."""
        from weir.observe.ndjson import NdjsonEvents

        if self._events is None:
            self._events = NdjsonEvents(sys.stderr)
        self._events.write(data)

    def _stderr(self, line: str, style: str) -> None:
        if self.color or self.bars_shown:
            self.console.print(_text(line, style if self.color else None))
        else:
            print(line, file=sys.stderr, flush=True)

    # ---------------------------------------------------------------- runs
    @contextmanager
    def run_observer(self) -> Iterator[Observer]:
        """The observer that shows a run's events: NDJSON lines (``--log-format json``),
        progress bars (a terminal) or plain lines, and each node's summary on stdout."""
        from weir.commands.display import LiveDisplay, RunDisplay

        if self.log_format == "json":
            from weir.observe.ndjson import NdjsonEvents

            events = self._events = NdjsonEvents(sys.stderr)
            plain = RunDisplay(self, progress=False)

            def both(event: Any) -> None:
                events(event)
                plain(event)

            yield both
        elif self.live:
            with LiveDisplay(self) as live:
                yield live
        else:
            yield RunDisplay(self)

    # ---------------------------------------------------------------- --json
    def json(self, payload: dict[str, Any]) -> None:
        """The command's JSON result (printed by :meth:`finish`)."""
        self.payload.update(payload)

    def finish(self, code: int) -> None:
        if self.as_json:
            document = {**self.payload, "ok": code == 0}
            text = json.dumps(document, indent=2, default=str, sort_keys=True)
            print(self.scrub(text), flush=True)


def _text(line: str, style: str | None) -> Any:
    """A rich Text: styled itself, so the style stays off the progress bars drawn below it."""
    from rich.text import Text

    return Text(line, style=style or "")


def _style(line: str) -> str | None:
    """The colour of a line of result text, from how it starts."""
    text = line.lstrip()
    for start, style in (
        ("■", "bold"),
        ("✓", "green"),
        ("✗", "bold red"),
        ("–", "yellow"),
        ("=", "cyan"),
        ("warning", "yellow"),
        ("hint:", "dim"),
    ):
        if text.startswith(start):
            return style
    return None


class LogHandler(logging.Handler):
    """The process's one logging handler: every record to :meth:`Output.log`."""

    def __init__(self, out: Output):
        super().__init__()
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.out.log(record)
        except BrokenPipeError:
            raise
        except Exception:
            self.handleError(record)


@contextmanager
def logging_to(out: Output, *, verbose: bool) -> Iterator[None]:
    """While active, log records go to ``out``: warnings and errors (errors only with -q),
    and with ``verbose`` weir's debug records and other libraries' info. Restores the
    root logger afterwards (tests call the CLI in one process)."""
    root, weir = logging.getLogger(), logging.getLogger("weir")
    saved = (root.level, weir.level)
    handler = LogHandler(out)
    if verbose:
        root.setLevel(logging.INFO)
        weir.setLevel(logging.DEBUG)
    else:
        level = logging.ERROR if out.quiet else logging.WARNING
        root.setLevel(level)
        weir.setLevel(level)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        weir.setLevel(saved[1])


def target_line(project: Project) -> str:
    """``target: prod (lake …, state …)``, secrets scrubbed (a lake URI may hold one)."""
    from weir.observe.record import Scrubber

    where = f"lake {project.lake}, state {project.spec.state}"
    return f"target: {project.target} ({Scrubber(project.secrets)(where)})"
