"""weir benchmarks: figures and ratios against baselines measured in the same run.

    .venv/bin/python bench/run.py                  # everything, full size (about 6 minutes)
    .venv/bin/python bench/run.py --only a,c       # a subset
    .venv/bin/python bench/run.py --scale 0.01     # smoke run (well under a minute)

(a) merge 1M changed rows into a 10M-row partitioned silver table vs a hand-written delta-rs
merge; (b) REST -> bronze+silver rows/s; (c) the compiled quality scan vs a hand-written fused
DuckDB query; (d) peak RSS of a ``weir run`` subprocess ingesting a >1 GB CSV, and of a 1M-row
initial load; (e) incremental gold models after a 1% change of a 10M-row source vs a full
rebuild and a hand-written DuckDB + delta-rs floor, and the same change on a 1M-row source;
(f) start-up: `weir --help` and no-op runs against the interpreter's own start; (g) a full
sql extract of a 5M-row PostgreSQL table into bronze+silver vs the driver reading it into
Arrow, with peak RSS and the driver comparison (ADBC vs psycopg); (h) an incremental sql run
after 1% of a 10M-row table changed vs the same on 1M rows; (i) 1M CDC changes applied to
silver, changes/s and peak RSS; (j) scheduler overhead of 500 pipelines firing every minute
for an hour of fake clock; (k) the health metrics of 50 pipelines from a state store of 100k
runs, against the same store without its indexes.
This is a measurement, not a test: nothing asserts on time; the table says which targets
were met. Generated data lives in bench/.data/ and is removed at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "run"


def _benchmarks() -> dict[str, Callable[..., object]]:
    import bench_cdc
    import bench_health
    import bench_incremental
    import bench_memory
    import bench_merge
    import bench_quality
    import bench_rest
    import bench_serve
    import bench_sql
    import bench_startup

    return {
        "a": bench_merge.run,
        "b": bench_rest.run,
        "c": bench_quality.run,
        "d": bench_memory.run,
        "e": bench_incremental.run,
        "f": bench_startup.run,
        "g": bench_sql.run,
        "h": bench_cdc.incremental,
        "i": bench_cdc.cdc,
        "j": bench_serve.run,
        "k": bench_health.run,
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--only",
        default="a,b,c,d,e,f,g,h,i,j,k",
        help="comma-separated subset of a,b,c,d,e,f,g,h,i,j,k (default: all)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="data size factor (0.01 for a smoke run)"
    )
    parser.add_argument("--keep", action="store_true", help="keep generated data in bench/.data")
    args = parser.parse_args(argv)
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = [x for x in args.only if x not in "abcdefghijk" or len(x) != 1]
    if unknown or args.scale <= 0:
        parser.error(
            f"--only takes letters from a,b,c,d,e,f,g,h,i,j,k; --scale must be > 0 (got {unknown})"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sys.path.insert(0, str(HERE))
    import projects
    import report

    os.environ["WEIR_PII_SALT"] = projects.SALT
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", flush=True)

    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    benchmarks = _benchmarks()
    results: list[report.Result] = []
    failed = False
    say(f"scale {args.scale:g}, benchmarks {','.join(args.only)}; data under {DATA}")
    for key in args.only:
        root = DATA / key
        root.mkdir()
        load = os.getloadavg()[0]
        try:
            outcome = benchmarks[key](args.scale, root, say)
        except Exception as exc:  # report and go on with the others
            failed = True
            traceback.print_exc()
            outcome = report.Result(
                f"({key}) failed", f"error: {exc}"[:60], "-", 0.0, "-", "-", False
            )
        for result in outcome if isinstance(outcome, list) else [outcome]:  # one or several
            assert isinstance(result, report.Result)
            result.details.append(
                f"load average (1 min) before/after: {load:.1f} / {os.getloadavg()[0]:.1f}"
            )
            results.append(result)
            print(f"\n{result.benchmark}: {result.figure_text} (target {result.target})")
            for line in result.details:
                print(f"    {line}", flush=True)
            print(flush=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("\n".join(report.machine()))
    print(f"scale {args.scale:g}; total {time.perf_counter() - started:.0f} s\n")
    print(report.final(results), flush=True)
    if not args.keep:
        shutil.rmtree(DATA, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
