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
