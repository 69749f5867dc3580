"""Fault injection for crash-safety tests.

``WEIR_FAULT=<point>[@<n>]`` makes the process SIGKILL itself the ``n``-th time (default 1st)
it reaches ``point``. Points are named ``<table>.<moment>``, e.g. ``bronze.before_commit``,
``silver.after_commit``, ``bronze.write`` (inside a streaming write, after one batch),
``source.before_committed`` (after a batch's commits, before the source's ``committed`` hook:
a CDC slot not yet advanced), ``cdc.read`` (inside a CDC change read, after one batch),
``reconcile.before_commit`` and ``reconcile.after_commit`` around a delete reconciliation's
commit (weir/lake/reconcile.py).

``WEIR_PAUSE=<point>:<seconds>`` makes the process sleep there instead, each time it reaches
it: a slow run, for tests of what happens while a run goes on (schedule overlaps, a SIGTERM
mid-run, runtime SLAs).
Without the variables every call is two dictionary lookups and nothing else.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator

import pyarrow as pa

_hits: Counter[str] = Counter()


def point(name: str) -> None:
    pause = os.environ.get("WEIR_PAUSE")
    if pause:
        where, _, seconds = pause.partition(":")
        if where == name:
            time.sleep(float(seconds or 1))
    spec = os.environ.get("WEIR_FAULT")
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    _hits[name] += 1
    if _hits[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def guard(name: str, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Pass batches through, calling ``point(name)`` after each one (kills mid-write)."""
    for batch in batches:
        yield batch
        point(name)
