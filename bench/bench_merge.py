"""(a) ``weir run`` upserting 1M changed rows into a 10M-row date-partitioned silver table,
against a hand-written delta-rs MERGE of the same rows into an identical copy (the floor).

Source: the in-process memory source (``weir.sources.memory``), so no file or network I/O is
in either figure. The starting table is built once by a first ``weir run``. Each repetition
then runs weir on a fresh copy of that project (bronze holds the memory source's position, so
every copy ingests the same change batch) and the floor on a copy of the starting silver
table (restored to version 0 before each merge). weir and floor alternate; the figure is the
median of the per-pair ratios. The floor merges the rows weir wrote (read back, in batch
order, as one Arrow table) with the predicate weir builds: natural key, the batch's
partitions, newer-wins.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import data
import duckdb
import projects
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable
from probe import Probe
from report import Result, Say, grouped, last_merge, missing, seconds, stage_table

from weir.engine.duckdb import connect, fetch_reader
from weir.run.pipeline import PipelineRun
from weir.run.stage import bronze_schema
from weir.sources import memory
from weir.spec import load_project
from weir.sql import ident
from weir.transform.silver import SilverSql

NAME = "orders_merge"
DATASET = "bench_orders"
KEYS = ("order_id", "order_date")
NEWER = "s.updated_at >= t.updated_at OR t.updated_at IS NULL"
TARGET = 1.3


def run(scale: float, root: Path, say: Say, repeats: int = 3) -> Result:
    rows, changed = max(1000, int(10_000_000 * scale)), max(100, int(1_000_000 * scale))
    extract = {"source": "memory", "dataset": DATASET}
    load = {"strategy": "merge", "partition_by": ["order_date"]}
    start_dir = projects.write(root / "merge" / "start", [projects.pipeline(NAME, extract, load)])
    memory.register(DATASET)
    memory.append(DATASET, data.batches(data.initial(rows)))
    say(f"(a) initial load: {rows:,} rows through weir (memory source)")
    start = time.perf_counter()
    _run(start_dir)
    initial_s = time.perf_counter() - start
    floor_dir = root / "merge" / "floor_silver"
    shutil.copytree(_silver(start_dir), floor_dir)
    files = len(DeltaTable(str(floor_dir)).file_uris())
    change = data.changes(rows, changed)
    memory.append(DATASET, data.batches(change))

    weir_times: list[float] = []
    floor_times: list[float] = []
    source: pa.Table | None = None
    with Probe() as probe:
        for n in range(1, repeats + 1):
            say(f"(a) {n}/{repeats}: weir run merging {changed:,} rows, then the floor merge")
            home = root / "merge" / f"run{n}"
            shutil.copytree(start_dir, home)
            os.sync()  # flush the copy now, not during the timed run
            start = time.perf_counter()
            record = _run(home)
            weir_times.append(time.perf_counter() - start)
            if source is None:
                source = _written(_silver(home))
                weir_metrics, weir_rows = last_merge(_silver(home)), _rows(_silver(home))
            shutil.rmtree(home)
            floor = DeltaTable(str(floor_dir))
            if floor.version() > 0:
                floor.restore(0)
            os.sync()
            spent, metrics = floor_merge(floor_dir, source)
            floor_times.append(spent)
    memory.register(DATASET)  # frees the 11M source rows
    floor_rows = _rows(floor_dir)
    stages = [(k, v / repeats, c // repeats) for k, v, c in probe.stages()]
    weir_s, floor_s = statistics.median(weir_times), statistics.median(floor_times)
    ratio = statistics.median(w / f for w, f in zip(weir_times, floor_times, strict=True))
    details = [
        f"table: {rows:,} rows, {data.DAYS} daily partitions, {files} files; initial weir load "
        f"{initial_s:.1f} s",
        f"batch: {change.num_rows:,} rows over the last 30 days "
        f"({metrics['num_target_rows_updated']:,} updates, "
        f"{metrics['num_target_rows_inserted']:,} inserts), "
        f"{pc.count_distinct(change.column('order_date')).as_py()} partitions touched",
        f"weir run: rows_extracted={record.rows_extracted:,} rows_loaded={record.rows_loaded:,} "
        f"checks failed={record.quality_checks_failed} (warn-level flags)",
        f"result rows: weir {weir_rows:,} / floor {floor_rows:,}"
        + ("" if weir_rows == floor_rows else "  (MISMATCH)"),
        f"weir runs (s): {_list(weir_times)}; floor merges (s): {_list(floor_times)}; "
        "ratio = median of the per-pair ratios",
        "delta-rs merge metrics (last run): weir  " + _merge_metrics(weir_metrics),
        "                                   floor " + _merge_metrics(metrics),
        _select_parts(start_dir, change),
        f"weir run stage breakdown (self time per run, mean of {repeats}; adds up to the run):",
        *stage_table(stages, weir_s),
        "by stage group: " + grouped(stages),
        *missing(probe.missing),
    ]
    return Result(
        benchmark=f"(a) merge {changed / 1e6:g}M into {rows / 1e6:g}M rows (memory source)",
        weir=seconds(weir_s),
        baseline=seconds(floor_s) + " (delta-rs merge)",
        figure=ratio,
        figure_text=f"{ratio:.2f}x",
        target=f"<= {TARGET}x",
        met=ratio <= TARGET,
        details=details,
    )


def floor_merge(path: Path, source: pa.Table) -> tuple[float, dict[str, Any]]:
    """The same MERGE weir makes (keys, partition pruning, newer-wins), written by hand."""
    start = time.perf_counter()
    table = DeltaTable(str(path))
    days = ", ".join(f"'{d}'" for d in pc.unique(source.column("order_date")).to_pylist())
    predicate = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in KEYS)
    predicate += f' AND t."order_date" IN ({days})'
    metrics = (
        table.merge(source, predicate, source_alias="s", target_alias="t")
        .when_matched_update_all(predicate=NEWER)
        .when_not_matched_insert_all()
        .execute()
    )
    return time.perf_counter() - start, metrics


def _select_parts(home: Path, change: pa.Table) -> str:
    """What weir's silver SELECT over this batch costs in DuckDB alone, and its parts."""
    plan = SilverSql.plan(load_project(home).pipeline(NAME), bronze_schema(data.SOURCE_SCHEMA))
    con = connect(salt=projects.SALT)
    staged = data.through_boundary(plan.boundary, data.with_meta(change, batch=2), projects.SALT)
    con.register("input", staged)
    con.execute(f"CREATE TEMP TABLE flagged AS {plan.flagged()}")
    plain = "SELECT * EXCLUDE (_errors, _infos) FROM flagged WHERE len(_errors) = 0"
    full, no_dedupe, bare = (
        min(_drain(con, sql) for _ in range(2))
        for sql in (plan.silver(dedupe=True), plan.silver(dedupe=False), plain)
    )
    con.close()
    return (
        f"silver SELECT over the batch in DuckDB alone (drained, best of 2): {full:.2f} s = "
        f"dedupe window (QUALIFY) {full - no_dedupe:.2f} s + sha256 of the surrogate key "
        f"{no_dedupe - bare:.2f} s + the rest {bare:.2f} s"
    )


def _drain(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    start = time.perf_counter()
    for _ in fetch_reader(con, sql):
        pass
    return time.perf_counter() - start


def _run(home: Path) -> Any:
    project = load_project(home)
    record = PipelineRun(project, project.pipeline(NAME)).execute()
    if record.status != "success":
        raise RuntimeError(f"weir run failed: {record.error_message}")
    return record


def _silver(home: Path) -> Path:
    return home / "lake" / "silver" / NAME


def _written(silver: Path) -> pa.Table:
    """The rows weir's merge wrote (every change wins), in batch order, as one table."""
    rows = DeltaTable(str(silver)).to_pyarrow_dataset().to_table(filter=ds.field("_batch") == 2)
    return rows.sort_by("_row").combine_chunks()


def _merge_metrics(metrics: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        return f"{metrics.get(key, 0) / 1000:.2f} s"

    return (
        f"files removed/added {metrics.get('num_target_files_removed')}/"
        f"{metrics.get('num_target_files_added')}, rows copied "
        f"{metrics.get('num_target_rows_copied', 0):,}; execution {ms('execution_time_ms')} "
        f"(scan {ms('scan_time_ms')}, rewrite {ms('rewrite_time_ms')})"
    )


def _rows(path: Path) -> int:
    return int(DeltaTable(str(path)).to_pyarrow_dataset().count_rows())


def _list(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)
