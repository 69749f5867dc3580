"""The benchmarks keep working: a tiny-scale run finishes and prints its table.

Nothing here looks at the figures — speed is measured by `make bench`, not by tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_smoke_run_prints_every_benchmark() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--scale", "0.01"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = done.stdout[done.stdout.rindex("benchmark ") :]
    names = ("(a) merge", "(b) REST", "(c) quality scan", "(d) peak RSS", "(e) incremental")
    names += (
        "(f) `weir --help`",
        "(f) no-op `weir run`",
        "(g) sql full extract",
        "(h) sql incremental",
        "(i) cdc",
        "(j) serve: CPU share",
        "(j) serve: fire-time jitter",
        "(k) health",
    )
    for name in names:
        assert name in table


def test_the_probe_keeps_a_stack_per_thread() -> None:
    """A frame of another thread (the bronze writer) is not a child of the frame this
    thread has open: the outer frame keeps its own time."""
    import threading
    import time

    sys.path.insert(0, str(ROOT / "bench"))
    from probe import Probe

    probe = Probe()
    inner = probe._function(lambda: time.sleep(0.3), "inner")

    def outer() -> None:
        beside = threading.Thread(target=inner)
        beside.start()
        time.sleep(0.3)
        beside.join()

    probe._function(outer, "outer")()
    times = dict((label, seconds) for label, seconds, _ in probe.stages())
    assert times["inner"] >= 0.29
    assert times["outer"] >= 0.29  # a shared stack took the inner 0.3 s off it (about 0)
