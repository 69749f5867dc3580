"""(e) An incremental gold model after a 1% change of its 10M-row date-partitioned silver
source, against a full rebuild and a hand-written DuckDB + delta-rs floor; and the same change
applied to a 1M-row source (cost follows the change, not the table).

Two silver tables are written directly with delta-rs (no pipeline run): 10M and 1M orders over
the same 365 daily partitions (``order_date``), one file per partition. Two incremental models
read them, both ``partition_by: [order_date]``, ``incremental: {column: order_date, lookback:
3 days}``: ``daily_sales``, an aggregate per day x country x currency x status (~150 rows a
day), and ``orders_enriched``, row-level (one gold row per order, key ``(order_id,
order_date)``). A first ``ModelRun`` builds each model; a copy of that gold table is the
starting point of every timed run.

The change is the same absolute change on both tables: 1% of the 10M rows (100k at full
scale), all inside the lookback window, which is how late data arrives: 5% of it updates
existing orders of the last 4 days (the window), 95% are new orders spread over those days
and the next one (a new day). It is merged into silver (untimed), then per repetition:

- weir: ``ModelRun(...).execute()`` on a fresh copy of the built model (10M, then 1M);
- the floor on another copy: the window of silver read through a pyarrow dataset with the
  same filter, the same SELECT in DuckDB, one delta-rs MERGE with the same target-side
  predicate (keys + window) that updates matches and inserts the rest. It does not delete
  keys that left the window (weir does; this change deletes none, and a
  ``when_not_matched_by_source_delete`` clause makes delta-rs scan the whole target);
- a full rebuild: ``ModelRun(..., full_refresh=True)``.

Figures are medians of per-repetition ratios (the sides alternate, so drift hits both).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import data
import numpy as np
import probe as probe_module
import projects
import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable, write_deltalake
from probe import Probe
from report import Result, Say, last_merge, seconds, stage_table

from weir import spec
from weir.engine.duckdb import connect
from weir.run.model import ModelRun
from weir.sql import ident

SILVER = "orders"
LOOKBACK_DAYS = 3
UPDATE_SHARE = 0.05
NEW_IDS = 10**9
"""Inserted orders get ids from here on: the same rows for both table sizes."""
TARGET_FLOOR = 1.3
TARGET_SIZE = 1.5

HEADER = """/* weir
materialized: incremental
unique_key: [{keys}]
partition_by: [order_date]
incremental: {{column: order_date, lookback: {lookback} days}}
*/
"""


@dataclass(frozen=True)
class Model:
    name: str
    keys: tuple[str, ...]
    select: str
    """The SELECT, ``{source}`` standing for the silver table."""

    def file(self) -> str:
        keys = ", ".join(self.keys)
        head = HEADER.format(keys=keys, lookback=LOOKBACK_DAYS)
        return head + self.select.format(source=f"silver.{SILVER}")


MODELS = (
    Model(
        "daily_sales",
        ("order_date", "country", "currency", "status"),
        "SELECT order_date, country, currency, status, count(*) AS orders,\n"
        "       sum(quantity) AS items, round(sum(amount), 2) AS revenue,\n"
        "       count(DISTINCT customer_id) AS customers, max(updated_at) AS last_update\n"
        "FROM {source}\nGROUP BY ALL\n",
    ),
    Model(
        "orders_enriched",
        ("order_id", "order_date"),
        "SELECT order_id, order_date, customer_id, status, country, currency, quantity, amount,\n"
        "       round(amount * CASE currency WHEN 'USD' THEN 0.92 WHEN 'GBP' THEN 1.17\n"
        "                                    ELSE 1.0 END, 2) AS amount_eur,\n"
        "       status IN ('paid', 'shipped', 'delivered') AS is_paid, updated_at\n"
        "FROM {source}\n",
    ),
)


@dataclass
class Lake:
    """One project at one table size: silver, the built models, their pristine copies."""

    rows: int
    home: Path
    build_s: dict[str, float] = field(default_factory=dict)
    window_rows: int = 0

    def gold(self, model: str) -> Path:
        return self.home / "lake" / "gold" / model

    def start(self, model: str) -> Path:
        return self.home.parent / f"{self.home.name}_start_{model}"

    def reset(self, model: str, to: Path | None = None) -> Path:
        """A copy of the built (pre-change) gold table at ``to`` (default: the project's)."""
        to = to or self.gold(model)
        shutil.rmtree(to, ignore_errors=True)
        shutil.copytree(self.start(model), to)
        os.sync()  # flush the copy now, not during the timed run
        return to


@dataclass
class Times:
    weir: list[float] = field(default_factory=list)
    small: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    rebuild: list[float] = field(default_factory=list)
    weir_metrics: dict[str, Any] = field(default_factory=dict)
    floor_metrics: dict[str, Any] = field(default_factory=dict)
    record: Any = None
    same: str = ""


def run(scale: float, root: Path, say: Say, repeats: int = 3) -> list[Result]:
    big_rows, small_rows = max(10_000, int(10_000_000 * scale)), max(1_000, int(1_000_000 * scale))
    changed = max(100, big_rows // 100)
    big = _lake(root / "big", big_rows, say)
    small = _lake(root / "small", small_rows, say)
    first_day = data.DAYS - LOOKBACK_DAYS - 1
    bound = data.LAST_DAY - dt.timedelta(days=LOOKBACK_DAYS)
    for lake in (big, small):
        change = _change(lake.rows, changed, first_day)
        _apply(lake.home / "lake" / "silver" / SILVER, change, bound)
        lake.window_rows = _count(lake.home / "lake" / "silver" / SILVER, bound)
    results: list[Result] = []
    for model in MODELS:
        probe, rebuild_probe = ModelProbe(), ModelProbe()
        times = Times()
        floor_dir = root / f"floor_{model.name}"
        for n in range(1, repeats + 1):
            say(f"(e) {model.name} {n}/{repeats}: weir 10M-side, floor, weir 1M-side, rebuild")
            big.reset(model.name)
            with probe:
                spent, record = _weir(big.home, model.name)
            times.weir.append(spent)
            if times.record is None:
                times.record = record
                times.weir_metrics = last_merge(big.gold(model.name))
            floor = big.reset(model.name, floor_dir)
            spent, metrics = floor_run(big.home / "lake" / "silver" / SILVER, floor, model, bound)
            times.floor.append(spent)
            times.floor_metrics = metrics
            if not times.same:
                times.same = _compare(big.gold(model.name), floor, model)
            small.reset(model.name)
            times.small.append(_weir(small.home, model.name)[0])
            with rebuild_probe:
                times.rebuild.append(_weir(big.home, model.name, full_refresh=True)[0])
        shutil.rmtree(floor_dir, ignore_errors=True)
        results += _results(model, times, (probe, rebuild_probe), big, small, changed, bound)
    return results


class ModelProbe(Probe):
    """The project's probe with targets for a model run instead of a pipeline run."""

    def __enter__(self) -> ModelProbe:
        saved = probe_module.TARGETS
        probe_module.TARGETS = MODEL_TARGETS
        try:
            super().__enter__()
        finally:
            probe_module.TARGETS = saved
        return self


MODEL_TARGETS: list[tuple[str, str, probe_module.Label]] = [
    ("weir.spec", "load_project", "project: load + validate (YAML, sqlglot)"),
    ("weir.run.node:NodeRun", "execute", "run: lock, record, other"),
    ("weir.run.node:NodeRun", "_persist", "run record + state store"),
    ("weir.run.model:ModelRun", "_run", "run: position, sources, other"),
    ("weir.engine.duckdb_engine:DuckDBSession", "expose", "read: register silver datasets"),
    ("weir.run.model:ModelRun", "_materialize", "model: CREATE TEMP TABLE (SELECT), count"),
    ("weir.run.model:ModelRun", "_bound", "model: window bound"),
    ("weir.run.model:ModelRun", "_column_type", "model: window column type (LIMIT 0)"),
    ("weir.run.model:ModelRun", "_check_keys", "model: unique_key check (DuckDB)"),
    ("weir.run.model:ModelRun", "_high", "model: window max"),
    ("weir.run.model:ModelRun", "_same_columns", "model: same columns as the table"),
    ("weir.run.model:ModelRun", "_window_after", "checks: window after"),
    ("weir.run.model:ModelRun", "_checks", "checks"),
    ("weir.lake.materialize", "merge_window", "gold: diff (EXCEPT / NOT IN) + merge setup"),
    ("weir.lake.materialize", "_register_window", "gold: read target window (__old)"),
    ("weir.lake.materialize", "_fetch", "DuckDB: select → Arrow"),
    ("weir.lake.materialize", "overwrite", "gold: overwrite"),
    ("weir.lake.table:Table", "write", lambda a: f"{a[0].label}: write (delta-rs)"),
    ("weir.lake.table:Table", "position", lambda a: f"{a[0].label}: read position"),
    ("weir.lake.table:Table", "version", lambda a: f"{a[0].label}: version"),
    ("weir.lake.table:Table", "dataset", lambda a: f"{a[0].label}: to_pyarrow_dataset"),
    ("weir.lake.table:Table", "merge", lambda a: f"{a[0].label}: merge prepare"),
    ("weir.lake.table:Table", "execute", lambda a: f"{a[0].label}: merge execute (delta-rs)"),
    ("weir.lake.table:Table", "mark", lambda a: f"{a[0].label}: mark batch applied"),
]


# ---------------------------------------------------------------------------- setup


def _lake(home: Path, rows: int, say: Say) -> Lake:
    say(f"(e) silver: {rows:,} rows over {data.DAYS} daily partitions (delta-rs), models built")
    extract = {"source": "memory", "dataset": f"bench_{SILVER}"}
    load = {"strategy": "merge", "partition_by": ["order_date"]}
    projects.write(home, [projects.pipeline(SILVER, extract, load)])
    (home / "models").mkdir()
    for model in MODELS:
        (home / "models" / f"{model.name}.sql").write_text(model.file())
    write_deltalake(
        str(home / "lake" / "silver" / SILVER),
        _silver(data.initial(rows)),
        partition_by=["order_date"],
    )
    lake = Lake(rows, home)
    for model in MODELS:
        lake.build_s[model.name] = _weir(home, model.name)[0]
        shutil.copytree(lake.gold(model.name), lake.start(model.name))
    return lake


def _silver(source: pa.Table) -> pa.Table:
    """Source rows as the silver table holds them (contract names)."""
    return source.rename_columns(["order_id", *source.column_names[1:]])


def _change(rows: int, size: int, first_day: int, seed: int = 7) -> pa.Table:
    """``size`` rows inside the window (days ``first_day``.. and one new day): a share
    ``UPDATE_SHARE`` updates existing orders of those days, the rest are new orders."""
    rng = np.random.default_rng(seed)
    days = data.initial_days(rows)
    first = int(np.searchsorted(days, first_day))
    updates = min(int(size * UPDATE_SHARE), rows - first)
    chosen = np.sort(rng.choice(rows - first, size=updates, replace=False)) + first
    inserts = size - updates
    new_ids = np.arange(NEW_IDS, NEW_IDS + inserts, dtype=np.int64)
    new_days = np.random.default_rng(seed + 1).integers(first_day, data.DAYS + 1, inserts)
    return pa.concat_tables(
        [
            data.orders(chosen + 1, days[chosen], seed + 2, version=1),
            data.orders(new_ids, new_days, seed + 3),
        ]
    )


def _apply(silver: Path, change: pa.Table, bound: dt.date) -> None:
    """What the silver pipeline's merge would commit (untimed)."""
    (
        DeltaTable(str(silver))
        .merge(
            _silver(change),
            "t.order_id = s.order_id AND t.order_date = s.order_date "
            f"AND t.order_date >= '{bound.isoformat()}'",
            source_alias="s",
            target_alias="t",
        )
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )


# ---------------------------------------------------------------------------- the three sides


def _weir(home: Path, model: str, *, full_refresh: bool = False) -> tuple[float, Any]:
    start = time.perf_counter()
    project = spec.load_project(home)  # looked up per call, so the probe sees it
    record = ModelRun(project, project.models[model], full_refresh=full_refresh).execute()
    spent = time.perf_counter() - start
    if record.status != "success":
        raise RuntimeError(f"weir run of {model} failed: {record.error_message}")
    return spent, record


def floor_run(
    silver: Path, gold: Path, model: Model, bound: dt.date
) -> tuple[float, dict[str, Any]]:
    """The window recomputed and merged by hand: pyarrow dataset filter → DuckDB → delta-rs."""
    start = time.perf_counter()
    window = ds.field("order_date") >= pa.scalar(bound, pa.date32())
    rows = DeltaTable(str(silver)).to_pyarrow_dataset().to_table(filter=window)
    con = connect()
    con.register("src", rows)
    new = con.sql(model.select.format(source="src")).to_arrow_table()
    con.close()
    on = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in model.keys)
    in_window = f"t.order_date >= '{bound.isoformat()}'"
    metrics = (
        DeltaTable(str(gold))
        .merge(new, f"{on} AND {in_window}", source_alias="s", target_alias="t")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    return time.perf_counter() - start, metrics


# ---------------------------------------------------------------------------- results


def _results(
    model: Model,
    times: Times,
    probes: tuple[Probe, Probe],
    big: Lake,
    small: Lake,
    changed: int,
    bound: dt.date,
) -> list[Result]:
    weir_s, floor_s = statistics.median(times.weir), statistics.median(times.floor)
    small_s, rebuild_s = statistics.median(times.small), statistics.median(times.rebuild)
    vs_floor = statistics.median(w / f for w, f in zip(times.weir, times.floor, strict=True))
    vs_small = statistics.median(w / s for w, s in zip(times.weir, times.small, strict=True))
    speedup = statistics.median(r / w for r, w in zip(times.rebuild, times.weir, strict=True))
    record = times.record
    n = len(times.weir)
    stages = [(k, v / n, c // n) for k, v, c in probes[0].stages()]
    rebuild_stages = [(k, v / n, c // n) for k, v, c in probes[1].stages()]
    big_m, small_m = f"{big.rows / 1e6:g}M", f"{small.rows / 1e6:g}M"
    details = [
        f"silver: {big.rows:,} / {small.rows:,} rows, {data.DAYS} daily partitions; change "
        f"{changed:,} rows ({changed / big.rows:.0%} of {big_m}, {changed / small.rows:.0%} of "
        f"{small_m}): {int(changed * UPDATE_SHARE):,} updates + "
        f"{changed - int(changed * UPDATE_SHARE):,} inserts, days >= {bound} and one new day",
        f"window (order_date >= {bound}): {big.window_rows:,} / {small.window_rows:,} silver "
        f"rows; weir rows_transformed={record.rows_transformed:,} "
        f"rows_loaded={record.rows_loaded:,}",
        f"initial build (full): {big.build_s[model.name]:.2f} s ({big_m}) / "
        f"{small.build_s[model.name]:.2f} s ({small_m})",
        f"weir {big_m} (s): {_list(times.weir)}; floor: {_list(times.floor)}; weir {small_m}: "
        f"{_list(times.small)}; rebuild {big_m}: {_list(times.rebuild)}",
        f"rebuild / weir incremental: {speedup:.1f}x (median of per-repetition ratios)",
        "delta-rs merge metrics: weir  " + _merge_metrics(times.weir_metrics),
        "                        floor " + _merge_metrics(times.floor_metrics),
        f"result: {times.same}",
        f"weir incremental run ({big_m}) stage breakdown (self time per run, mean of {n}):",
        *stage_table(stages, weir_s),
        f"full rebuild ({big_m}) stage breakdown (self time per run, mean of {n}):",
        *stage_table(rebuild_stages, rebuild_s),
    ]
    label = f"(e) incremental {model.name}"
    return [
        Result(
            benchmark=f"{label}: 1% of {big_m} vs floor",
            weir=seconds(weir_s),
            baseline=seconds(floor_s) + " (DuckDB + delta-rs)",
            figure=vs_floor,
            figure_text=f"{vs_floor:.2f}x",
            target=f"<= {TARGET_FLOOR}x",
            met=vs_floor <= TARGET_FLOOR,
            details=details,
        ),
        Result(
            benchmark=f"{label}: same change, {big_m} / {small_m}",
            weir=seconds(weir_s),
            baseline=seconds(small_s) + f" (weir on {small_m})",
            figure=vs_small,
            figure_text=f"{vs_small:.2f}x",
            target=f"<= {TARGET_SIZE}x",
            met=vs_small <= TARGET_SIZE,
            details=[f"rebuild {big_m}: {seconds(rebuild_s)} ({speedup:.1f}x the incremental)"],
        ),
    ]


def _compare(weir_gold: Path, floor_gold: Path, model: Model) -> str:
    """Do weir and the floor leave the same table? (row count and an order-free hash)"""
    con = connect()
    sums = []
    for path in (weir_gold, floor_gold):
        con.register("g", DeltaTable(str(path)).to_pyarrow_dataset())
        sums.append(con.execute("SELECT count(*), sum(hash(g)::HUGEINT) FROM g").fetchall()[0])
        con.unregister("g")
    con.close()
    rows = f"{sums[0][0]:,} rows" if sums[0] else "?"
    return (
        f"weir and floor tables identical ({rows})"
        if sums[0] == sums[1]
        else (f"MISMATCH: weir {sums[0]} vs floor {sums[1]}")
    )


def _count(silver: Path, bound: dt.date) -> int:
    window = ds.field("order_date") >= pa.scalar(bound, pa.date32())
    return int(DeltaTable(str(silver)).to_pyarrow_dataset().count_rows(filter=window))


def _merge_metrics(metrics: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        return f"{metrics.get(key, 0) / 1000:.2f} s"

    return (
        f"source rows {metrics.get('num_source_rows', 0):,}, files removed/added "
        f"{metrics.get('num_target_files_removed')}/{metrics.get('num_target_files_added')}, "
        f"rows updated/inserted/deleted/copied {metrics.get('num_target_rows_updated', 0):,}/"
        f"{metrics.get('num_target_rows_inserted', 0):,}/"
        f"{metrics.get('num_target_rows_deleted', 0):,}/"
        f"{metrics.get('num_target_rows_copied', 0):,}; execution {ms('execution_time_ms')} "
        f"(scan {ms('scan_time_ms')}, rewrite {ms('rewrite_time_ms')})"
    )


def _list(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)
