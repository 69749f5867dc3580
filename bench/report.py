"""Benchmark results and how they are printed: one final table, plus per-benchmark details."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Say = Callable[[str], None]


@dataclass
class Result:
    """One line of the final table. ``figure`` is the ratio or rate compared to ``target``."""

    benchmark: str
    weir: str
    baseline: str
    figure: float
    figure_text: str
    target: str
    met: bool
    details: list[str] = field(default_factory=list)
    """Lines printed under the benchmark: sizes, stage breakdowns, notes."""


def seconds(value: float) -> str:
    return f"{value:.2f} s"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def stage_table(stages: list[tuple[str, float, int]], total: float) -> list[str]:
    """Stage lines: self seconds, share of ``total``, calls."""
    rows = [
        [label, f"{spent:8.2f} s", f"{100 * spent / total:5.1f} %", str(calls)]
        for label, spent, calls in stages
        if spent >= 0.005
    ]
    return table(rows, ["stage", "self time", "share", "calls"]).splitlines()


GROUPS = (
    ("extract + stage", ("source:", "stage:")),
    ("bronze write", ("bronze:",)),
    ("transform + checks", ("transform:", "checks:", "silver: key/partition counts", "DuckDB:")),
    ("silver select + load", ("silver:",)),
)


def grouped(stages: list[tuple[str, float, int]]) -> str:
    """The four stages the brief names, plus what is left (run overhead)."""
    sums = dict.fromkeys([g for g, _ in GROUPS] + ["other"], 0.0)
    for label, spent, _ in stages:
        group = next((g for g, prefixes in GROUPS if label.startswith(prefixes)), "other")
        sums[group] += spent
    return " | ".join(f"{g} {v:.2f} s" for g, v in sums.items())


def missing(names: list[str]) -> list[str]:
    """A detail line when the probe could not find some of weir's functions."""
    return [f"probe: not in this weir, not timed: {', '.join(names)}"] if names else []


def final(results: list[Result]) -> str:
    rows = [
        [r.benchmark, r.weir, r.baseline, r.figure_text, r.target, "yes" if r.met else "NO"]
        for r in results
    ]
    return table(rows, ["benchmark", "weir", "baseline", "ratio/figure", "target", "met?"])


def machine() -> list[str]:
    import deltalake
    import duckdb
    import psutil
    import pyarrow

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    ram = psutil.virtual_memory().total / 2**30
    return [
        f"machine: {psutil.cpu_count()} CPUs ({cpu}), {ram:.1f} GiB RAM, {platform.platform()}",
        f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, "
        f"deltalake {deltalake.__version__}, pyarrow {pyarrow.__version__}",
    ]


def last_merge(path: Path) -> dict[str, Any]:
    """The operation metrics of the newest MERGE among a Delta table's last five commits."""
    from deltalake import DeltaTable

    for info in DeltaTable(str(path)).history(5):
        if info.get("operation") == "MERGE":
            return dict(info.get("operationMetrics") or {})
    return {}
