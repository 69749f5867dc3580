"""One run per pipeline at a time: an advisory file lock in the project's state folder."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from weir.errors import LockedError


@contextmanager
def pipeline_lock(state_dir: Path, pipeline: str, *, wait: bool = False) -> Iterator[None]:
    path = state_dir / "locks" / f"{pipeline}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise LockedError(
                f"pipeline {pipeline!r} is already running (pid {holder})",
                hint="wait for it to finish, or pass --wait to queue behind it",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def holder(state_dir: Path, pipeline: str) -> str | None:
    """Who holds ``pipeline``'s lock right now (a pid), None when nobody does. A probe for
    schedulers: the lock itself is still what keeps two runs apart."""
    path = state_dir / "locks" / f"{pipeline}.lock"
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
