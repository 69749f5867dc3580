"""(h) incremental sql extracts: cost follows the change; (i) CDC: changes applied per second.

Both run against a throwaway PostgreSQL cluster (tests/weirtest/postgres.py) and the bench
contract's ten columns, ``weir run`` in a child process whose peak RSS is sampled.

(h) Two tables, 1M and 10M rows (× scale), each with an index on the cursor
(``updated_at``), are loaded once by an incremental pipeline (merge into silver); then the
same change lands in both: 1 % of the large table's row count (100k rows), the most recent
orders, as in an orders table whose new orders move through their statuses. The timed run
extracts them (by the cursor's index) and merges them. Target: the 10M table's run ≤ 1.5×
the 1M table's — the cost follows the change, not the table.

(i) One table of 1M rows (× scale) is loaded by a ``strategy: cdc`` pipeline (its initial
snapshot, timed and sampled too); then one transaction per 100k rows updates every row (1M
changes), and the timed run reads them from the slot, lands them in bronze and applies them
to silver by key. Target: ≥ 100k changes/s; the peak RSS is reported beside it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bench_sql
import projects
from bench_memory import watched
from report import Result, Say

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from weirtest.postgres import PASSWORD, Cluster  # noqa: E402

RATIO_TARGET = 1.5
CDC_TARGET = 100_000
TABLE = bench_sql.TABLE.replace("TABLE orders", "TABLE {name}").replace("ROWS", "{rows}")
"""The (g) table's generator, for a named table of ``rows`` rows."""
CHANGE = """
UPDATE {name} SET amount = amount + 1, status = 'shipped',
       updated_at = TIMESTAMP '2027-01-01' + id * INTERVAL '1 millisecond'
WHERE id > {rows} - {changed}
"""


def incremental(scale: float, root: Path, say: Say) -> Result:
    """(h)"""
    with _cluster(say) as cluster:
        return _incremental(cluster, scale, root, say)


def cdc(scale: float, root: Path, say: Say) -> Result:
    """(i)"""
    with _cluster(say) as cluster:
        return _cdc(cluster, scale, root, say)


@contextmanager
def _cluster(say: Say) -> Iterator[Cluster]:
    cluster = Cluster.start()
    try:
        say(f"PostgreSQL up in {cluster.started_seconds:.2f}s")
        yield cluster
    finally:
        cluster.stop()


# ---------------------------------------------------------------- (h)
def _incremental(cluster: Cluster, scale: float, root: Path, say: Say) -> Result:
    sizes = {
        "small": max(20_000, int(1_000_000 * scale)),
        "large": max(200_000, int(10_000_000 * scale)),
    }
    changed = sizes["large"] // 100  # 1% of the large table; the same change on the small one
    timed: dict[str, tuple[float, float, dict[str, Any]]] = {}
    for label, rows in sizes.items():
        name = f"orders_{label}"
        say(f"(h) {name}: generating {rows:,} rows, index on updated_at")
        with cluster.connect() as con:
            con.execute(TABLE.format(name=name, rows=rows))
            con.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (id, order_date)")
            con.execute(f"CREATE INDEX ON {name} (updated_at)")
            con.execute(f"VACUUM ANALYZE {name}")
        extract = {
            "source": "sql",
            "url": _url(cluster),
            "table": f"public.{name}",
            "strategy": "incremental",
            "cursor": "updated_at",
        }
        home = projects.write(
            root / name, [projects.pipeline(name, extract, {"strategy": "merge"})]
        )
        first, first_peak, _ = _weir(home, name)
        say(f"(h) {name}: initial load {first:.1f}s, {first_peak:,.0f} MB")
        with cluster.connect() as con:
            con.execute(CHANGE.format(name=name, rows=rows, changed=changed))
            con.execute(f"VACUUM ANALYZE {name}")
        seconds, peak, record = _weir(home, name)
        assert record["rows_extracted"] == changed, (record["rows_extracted"], changed)
        timed[label] = (seconds, peak, record)
        say(f"(h) {name}: {changed:,} changed rows in {seconds:.2f}s, {peak:,.0f} MB")
    small, large = timed["small"][0], timed["large"][0]
    ratio = large / small
    return Result(
        benchmark=f"(h) sql incremental, 1% of {sizes['large'] / 1e6:g}M rows changed, vs "
        f"the same on {sizes['small'] / 1e6:g}M",
        weir=f"{large:.2f} s ({changed:,} rows changed)",
        baseline=f"{small:.2f} s (the same change)",
        figure=ratio,
        figure_text=f"{ratio:.2f}x",
        target=f"<= {RATIO_TARGET}x",
        met=ratio <= RATIO_TARGET,
        details=[
            f"{label}: {s:.2f}s, peak RSS {p:,.0f} MB, rows loaded {r['rows_loaded']:,}"
            for label, (s, p, r) in timed.items()
        ],
    )


# ---------------------------------------------------------------- (i)
def _cdc(cluster: Cluster, scale: float, root: Path, say: Say) -> Result:
    rows = max(20_000, int(1_000_000 * scale))
    name = "orders_cdc"
    say(f"(i) {name}: generating {rows:,} rows")
    with cluster.connect() as con:
        con.execute(TABLE.format(name=name, rows=rows))
        con.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (id, order_date)")
    extract = {
        "source": "sql",
        "url": _url(cluster),
        "table": f"public.{name}",
        "strategy": "cdc",
    }
    pipeline = projects.pipeline(name, extract, {"strategy": "merge"})
    del pipeline["transform"]  # change events are ordered by their log position
    home = projects.write(root / name, [pipeline])
    snap_s, snap_peak, _ = _weir(home, name)
    say(f"(i) initial snapshot of {rows:,} rows: {snap_s:.1f}s, {snap_peak:,.0f} MB")
    step = 100_000
    with cluster.connect() as con:
        for low in range(0, rows, step):
            con.execute(
                f"UPDATE {name} SET amount = amount + 1, status = 'paid' "
                f"WHERE id > {low} AND id <= {low + step}"
            )
    seconds, peak, record = _weir(home, name)
    assert record["rows_extracted"] == rows, record["rows_extracted"]
    rate = rows / seconds
    metrics = {k: v for m in record.get("load_metrics", []) for k, v in m.items()}
    return Result(
        benchmark=f"(i) cdc: {rows / 1e6:g}M changes -> bronze + silver",
        weir=f"{seconds:.2f} s = {rate / 1000:,.0f}k changes/s",
        baseline="-",
        figure=rate,
        figure_text=f"{rate / 1000:,.0f}k/s, peak {peak:,.0f} MB",
        target=f">= {CDC_TARGET // 1000}k/s",
        met=rate >= CDC_TARGET,
        details=[
            f"initial snapshot: {rows:,} rows in {snap_s:.2f}s, peak RSS {snap_peak:,.0f} MB",
            f"changes run: peak RSS {peak:,.0f} MB; applied "
            f"{metrics.get('num_changes_applied', '?')}, lag {metrics.get('replication_lag_bytes', '?')} bytes",
        ],
    )


def _url(cluster: Cluster) -> str:
    return cluster.url().replace(PASSWORD, "${env:BENCH_PG_PASSWORD}")


def _weir(home: Path, name: str) -> tuple[float, float, dict[str, Any]]:
    """``weir run NAME`` in a child process: seconds, peak RSS (MB), its run record."""
    env = {**os.environ, "WEIR_PII_SALT": projects.SALT, "BENCH_PG_PASSWORD": PASSWORD}
    argv = [sys.executable, "-m", "weir.cli", "run", "--project", str(home), name]
    seconds, samples, record = watched(argv, env, home)
    return seconds, max((rss for _, rss in samples), default=0) / 1e6, record
