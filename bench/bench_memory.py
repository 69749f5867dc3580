"""(d) Peak RSS of a ``weir run`` subprocess ingesting a >1 GB CSV into bronze + silver (append).

The CSV is generated chunk by chunk. The child is ``bench/weir_traced.py run --project …``:
weir's own CLI entry point with stage markers. Its resident set (plus any children's) is
sampled with psutil every 50 ms; the kernel's own peak (``VmHWM``, which the child reads at
exit) is reported next to it, and the larger of the two is the figure. Each sample is
attributed to the innermost stage running at that moment, which tells where the memory goes.

The figure is for a project with weir's defaults. A second run of the same file with
``duckdb_memory_limit: 1GB`` in ``weir.yml`` (the one memory setting a project has) shows how
much of the peak that setting governs.

A second figure is the initial load of a 1M-row CSV (about 104 MB, the size of the loads
compared with dlt in issue 8), three times, target <= 600 MB. Its baseline is the peak of a
no-op ``weir run`` of the same project afterwards (the interpreter, weir's imports, the table
opens): what any run costs before it holds a row.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import data
import projects
import psutil
from report import Result, Say, grouped, table

NAME = "orders_csv"
TARGET_MB = 1500
SMALL_TARGET_MB = 600
SMALL_ROWS = 1_000_000
HERE = Path(__file__).resolve().parent
OUTSIDE = "outside any timed stage (start-up, imports, exit)"
VARIANT = "duckdb_memory_limit: 1GB"

Stages = list[tuple[str, float, int]]


@dataclass
class Measured:
    peak_mb: float
    kernel_mb: float
    polled_mb: float
    samples: int
    wall: float
    record: dict[str, object]
    stages: Stages
    peaks: dict[str, int]


def run(scale: float, root: Path, say: Say) -> list[Result]:
    return [_large(scale, root, say), small(scale, root, say)]


def small(scale: float, root: Path, say: Say, repeats: int = 3) -> Result:
    """Peak RSS of the initial load of a 1M-row CSV (fewer rows below scale 1)."""
    rows = max(20_000, int(SMALL_ROWS * min(scale, 1.0)))
    csv = root / "small" / "orders.csv"
    data.csv_file(csv, 200, chunk=rows)  # one chunk: the header alone is shorter
    mb = csv.stat().st_size / 1e6
    say(f"(d) 1M-row load: {rows:,} rows, {mb:,.0f} MB CSV, {repeats} initial loads")
    runs = [
        measure(root / "small" / f"run{i}", csv, "", keep=i == repeats - 1) for i in range(repeats)
    ]
    noop = measure(root / "small" / f"run{repeats - 1}", csv, "", fresh=False)
    peaks = sorted(m.peak_mb for m in runs)
    peak = peaks[len(peaks) // 2]
    last = runs[-1]
    return Result(
        benchmark=f"(d) peak RSS, {rows / 1e6:g}M-row CSV initial load -> bronze+silver",
        weir=f"{peak:,.0f} MB peak RSS",
        baseline=f"{noop.peak_mb:,.0f} MB (no-op run)",
        figure=peak,
        figure_text=f"{peak:,.0f} MB",
        target=f"<= {SMALL_TARGET_MB:,} MB",
        met=peak <= SMALL_TARGET_MB,
        details=[
            f"peaks of {repeats} runs: "
            + ", ".join(f"{p:,.0f} MB" for p in peaks)
            + f" (median {peak:,.0f} MB); walls "
            + ", ".join(f"{m.wall:.1f} s" for m in runs),
            f"a no-op run of the same project afterwards: {noop.peak_mb:,.0f} MB, "
            f"{noop.wall:.2f} s",
            "stages of the last load (self time, highest RSS sampled while innermost):",
            *table(_stage_rows(last), ["stage", "self time", "peak RSS"]).splitlines(),
        ],
    )


def _large(scale: float, root: Path, say: Say) -> Result:
    size = max(2_000_000, int(1_100_000_000 * scale))
    csv = root / "drop" / "orders.csv"
    start = time.perf_counter()
    rows = data.csv_file(csv, size, chunk=min(500_000, max(10_000, size // 200)))
    mb = csv.stat().st_size / 1e6
    say(f"(d) CSV: {mb:,.0f} MB, {rows:,} rows in {time.perf_counter() - start:.1f} s; weir run")
    default = measure(root / "default", csv, "")
    say(f"(d) again with {VARIANT} in weir.yml")
    limited = measure(root / "limited", csv, VARIANT + "\n")
    say("(d) reading a staging file of this size: weir's Staged.reader() vs a plain IPC reader")
    staged = staged_reads(csv, root / "staged.arrow")
    peak = default.peak_mb
    return Result(
        benchmark=f"(d) peak RSS, {mb / 1000:.2f} GB CSV -> bronze+silver",
        weir=f"{peak:,.0f} MB peak RSS",
        baseline=f"{mb:,.0f} MB CSV",
        figure=peak,
        figure_text=f"{peak:,.0f} MB",
        target=f"<= {TARGET_MB:,} MB",
        met=peak <= TARGET_MB,
        details=[
            f"rows: {rows:,} in the CSV; run: status={default.record['status']} "
            f"rows_extracted={default.record['rows_extracted']:,} "
            f"rows_loaded={default.record['rows_loaded']:,}; wall {default.wall:.1f} s "
            f"({rows / default.wall / 1000:,.0f}k rows/s)",
            f"peak RSS: kernel VmHWM {default.kernel_mb:,.0f} MB, psutil samples "
            f"{default.polled_mb:,.0f} MB ({default.samples} samples at 50 ms)",
            "stages (self time, and the highest RSS sampled while each was innermost):",
            *table(_stage_rows(default), ["stage", "self time", "peak RSS"]).splitlines(),
            "by stage group (time): " + grouped(default.stages),
            staged,
            f"with {VARIANT}: peak {limited.peak_mb:,.0f} MB, wall {limited.wall:.1f} s, "
            f"status={limited.record['status']}; by stage:",
            *table(_stage_rows(limited), ["stage", "self time", "peak RSS"]).splitlines(),
        ],
    )


def measure(
    home: Path, csv: Path, settings: str, *, keep: bool = False, fresh: bool = True
) -> Measured:
    """Run the pipeline over ``csv`` in a fresh project at ``home`` (``fresh=False``: again
    in the project there) and watch its memory. ``keep``: leave the lake for another run."""
    if fresh:
        extract = {"source": "files", "path": str(csv), "format": "csv"}
        spec = projects.pipeline(NAME, extract, {"strategy": "append"})
        projects.write(home, [spec], settings=settings)
    events = home / "events.tsv"
    argv = [sys.executable, str(HERE / "weir_traced.py"), str(events)]
    argv += ["run", "--project", str(home), NAME]
    env = {**os.environ, "WEIR_PII_SALT": projects.SALT}
    wall, samples, record = watched(argv, env, home)
    stages, peaks, kernel = _stages(events, samples)
    polled = max((rss for _, rss in samples), default=0) / 1e6
    if not keep:
        shutil.rmtree(home / "lake", ignore_errors=True)  # keep disk use low
    return Measured(max(polled, kernel), kernel, polled, len(samples), wall, record, stages, peaks)


def staged_reads(csv: Path, path: Path) -> str:
    """RSS growth of reading a staging-sized IPC file with weir's reader and a plain one."""
    data.staged_file(csv, path)
    size = path.stat().st_size / 1e6
    growth = {}
    for mode in ("weir", "ipc"):
        argv = [sys.executable, str(HERE / "staged_probe.py"), str(path), mode]
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        try:
            growth[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            growth[mode] = {"first_batch": -1, "peak": -1}
    path.unlink()

    def mb(mode: str, key: str) -> str:
        value = growth[mode][key]
        return f"{value / 1e6:,.0f} MB" if value >= 0 else "n/a"

    return (
        f"reading a {size:,.0f} MB staging file (own process): Staged.reader() grows RSS by "
        f"{mb('weir', 'first_batch')} after its first batch (peak {mb('weir', 'peak')}); "
        f"pyarrow.ipc.open_file batch by batch: {mb('ipc', 'first_batch')} "
        f"(peak {mb('ipc', 'peak')})"
    )


def _stage_rows(measured: Measured) -> list[list[str]]:
    peaks = measured.peaks

    def peak(stage: str) -> str:
        return f"{peaks[stage] / 1e6:8,.0f} MB" if stage in peaks else "  (no sample)"

    rows = [[s, f"{t:8.2f} s", peak(s)] for s, t, _ in measured.stages if t >= 0.005]
    timed = {s for s, _, _ in measured.stages}
    rows += [[s, "", f"{p / 1e6:8,.0f} MB"] for s, p in peaks.items() if s not in timed]
    return rows


def watched(
    argv: list[str], env: dict[str, str], home: Path
) -> tuple[float, list[tuple[float, int]], dict[str, Any]]:
    """Run ``argv`` (a ``weir run`` of the project at ``home``, output to its weir.log),
    sampling its RSS: wall seconds, the (time, RSS) samples, the last run record."""
    samples: list[tuple[float, int]] = []
    with (home / "weir.log").open("a") as log:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        poller = threading.Thread(target=_poll, args=(child.pid, samples), daemon=True)
        poller.start()
        child.wait()
        wall = time.perf_counter() - start
        poller.join()
    if child.returncode != 0:
        tail = (home / "weir.log").read_text()[-3000:]
        raise RuntimeError(f"weir run exited {child.returncode}:\n{tail}")
    record = json.loads((home / ".weir" / "runs.jsonl").read_text().splitlines()[-1])
    return wall, samples, record


def _poll(pid: int, samples: list[tuple[float, int]]) -> None:
    try:
        process = psutil.Process(pid)
        while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
            rss = process.memory_info().rss
            rss += sum(c.memory_info().rss for c in process.children(recursive=True))
            samples.append((time.time(), rss))
            time.sleep(0.05)
    except psutil.Error:
        return


def _stages(events: Path, samples: list[tuple[float, int]]) -> tuple[Stages, dict[str, int], float]:
    """Stage self times from the child, the peak sampled RSS per innermost stage, and the
    child's own peak (MB)."""
    lines = events.read_text().splitlines()
    summary = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {"stages": []}
    changes: list[tuple[float, str]] = []  # (time, innermost stage from then on)
    stack: list[str] = []
    for line in lines:
        if line.startswith("{"):
            continue
        when, kind, label = line.split("\t")
        if kind == "enter":
            stack.append(label)
        elif stack:
            stack.pop()
        changes.append((float(when), stack[-1] if stack else OUTSIDE))
    times = [c[0] for c in changes]
    peaks: dict[str, int] = {}
    for when, rss in samples:
        index = bisect_right(times, when) - 1
        stage = changes[index][1] if index >= 0 else OUTSIDE
        peaks[stage] = max(peaks.get(stage, 0), rss)
    stages = [(str(s), float(t), int(c)) for s, t, c in summary["stages"]]
    return stages, peaks, summary.get("vmhwm", 0) / 1e6
