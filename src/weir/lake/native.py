"""Rust panics that delta-rs prints on stderr while it fails: kept from the user.

When a write fails half-way (disk full, a file-size limit), delta-rs returns an error —
which weir turns into a LakeError — but one of its tokio workers also panics
(object_store's buffered writer is written to after it was shut down) and Rust's panic
hook prints the panic, with a backtrace under ``RUST_BACKTRACE``, straight to file
descriptor 2. The process is unharmed; the user would just read a backtrace after weir's
own message. :func:`quiet_panics` sends file descriptor 2 through a pipe for as long as a
delta-rs call runs; a thread forwards every line to the real stderr at once, except Rust
panic blocks. Calls may overlap (threads): the first one in installs the pipe, the last one
out restores stderr. ``WEIR_DEBUG=1`` leaves stderr alone.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_PANIC = re.compile(rb"^thread '[^']*'( \(\d+\))? panicked at ")


class PanicFilter:
    """Decides line by line what reaches stderr: everything but Rust panic blocks (the
    blank line before ``thread '…' panicked at …``, the message, ``stack backtrace:``, its
    frames and notes). A blank line is held until the next line shows what it belongs to."""

    def __init__(self) -> None:
        self.state = "text"
        self.skipped = 0
        self.held = False
        self.panics = 0

    def feed(self, line: bytes) -> bytes:
        """What to write for ``line`` (without its newline): nothing, or lines with newlines."""
        if self.state == "text" and not line and not self.held:
            self.held = True
            return b""
        held, self.held = self.held, False
        if not self._keep(line):
            return b""
        return (b"\n" if held else b"") + line + b"\n"

    def flush(self) -> bytes:
        held, self.held = self.held, False
        return b"\n" if held else b""

    def _keep(self, line: bytes) -> bool:
        if self.state == "message":
            self.skipped += 1
            if line.startswith(b"stack backtrace:"):
                self.state = "backtrace"
            elif line.startswith(b"note: ") or self.skipped > 50:
                self.state = "text"
            return False
        if self.state == "backtrace":
            if line.startswith(b"note: "):
                self.state = "text"
                return False
            if line[:1].isspace():
                return False
            self.state = "text"
        if _PANIC.match(line):
            self.state, self.skipped = "message", 0
            self.panics += 1
            return False
        return True


class _Pipe:
    """File descriptor 2 replaced by a pipe whose lines a thread filters and forwards."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self.real = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self.filter = PanicFilter()
        self.thread = threading.Thread(
            target=self._forward, args=(read,), name="weir-stderr", daemon=True
        )
        self.thread.start()

    def _forward(self, read: int) -> None:
        pending = b""
        with os.fdopen(read, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                *lines, pending = (pending + chunk).split(b"\n")
                kept = b"".join(self.filter.feed(line) for line in lines)
                if kept:
                    os.write(self.real, kept)
        rest = self.filter.flush() + (self.filter.feed(pending)[:-1] if pending else b"")
        if rest:
            os.write(self.real, rest)

    def close(self) -> None:
        sys.stderr.flush()
        os.dup2(self.real, 2)  # the pipe's last writer closes: the thread drains and ends
        self.thread.join(timeout=10)
        if not self.thread.is_alive():  # a child process may still hold the pipe open
            os.close(self.real)


_lock = threading.Lock()
_users = 0
_pipe: _Pipe | None = None


@contextmanager
def quiet_panics() -> Iterator[None]:
    """Run a delta-rs call with Rust panic blocks kept off stderr."""
    if os.environ.get("WEIR_DEBUG") or not _enter():
        yield
        return
    try:
        yield
    finally:
        _leave()


def _enter() -> bool:
    global _users, _pipe
    with _lock:
        if _pipe is None:
            try:
                _pipe = _Pipe()
            except OSError:  # no stderr to guard (closed, or not a file descriptor)
                return False
        _users += 1
        return True


def _leave() -> None:
    global _users, _pipe
    with _lock:
        _users -= 1
        if _users == 0 and _pipe is not None:
            _pipe.close()
            _pipe = None
