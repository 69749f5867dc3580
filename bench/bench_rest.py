"""(b) JSON records from a paginated REST API into bronze + silver through a weir run.

The API is ``tests/weirtest/restserver.py`` (offset pagination, records under ``data``) in a child
process. weir runs in this process (``PipelineRun.execute``, what ``weir run`` calls), merge
strategy on the contract's key, incremental on ``updated_at`` (the first run sends no
watermark, so the server never filters). The baseline is the transport floor against the same
server: the same GETs with httpx and each page parsed by ``pyarrow.json``, nothing written.
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import data
import httpx
import projects
import pyarrow as pa
import pyarrow.json as pj
from probe import Probe
from report import Result, Say, grouped, missing, stage_table
from restserve import ServerProcess

from weir.run.pipeline import PipelineRun
from weir.spec import load_project

NAME = "orders_rest"
TARGET = 150_000


def run(scale: float, root: Path, say: Say, repeats: int = 3) -> Result:
    rows = max(2000, int(1_000_000 * scale))
    page_size = max(500, min(20_000, rows // 20))
    say(f"(b) REST: {rows:,} records, {page_size:,} per page (server in a child process)")
    weir_times: list[float] = []
    floor_times: list[float] = []
    with ServerProcess(rows, page_size) as url, Probe() as probe:
        get_s = fetch_floor(url, page_size, parse=False)
        for n in range(1, repeats + 1):  # interleaved: floor, then weir into a fresh project
            floor_times.append(fetch_floor(url, page_size))
            start = time.perf_counter()
            record = _weir(root / f"rest{n}", url, page_size)
            weir_times.append(time.perf_counter() - start)
    weir_s, floor_s = statistics.median(weir_times), statistics.median(floor_times)
    rate, floor_rate = record.rows_loaded / weir_s, rows / floor_s
    stages = [(k, v / repeats, c // repeats) for k, v, c in probe.stages()]
    return Result(
        benchmark=f"(b) REST -> bronze+silver, {rows / 1e6:g}M records",
        weir=f"{weir_s:.2f} s = {rate / 1000:,.0f}k rows/s",
        baseline=f"{floor_s:.2f} s = {floor_rate / 1000:,.0f}k rows/s (GET+parse only)",
        figure=rate,
        figure_text=f"{rate / 1000:,.0f}k rows/s",
        target=f">= {TARGET // 1000}k rows/s",
        met=rate >= TARGET,
        details=[
            f"pages: {-(-rows // page_size)} of {page_size:,} + 1 empty; offset pagination",
            f"weir run: rows_extracted={record.rows_extracted:,} rows_loaded={record.rows_loaded:,}"
            f" watermark_after={record.watermark_after}",
            f"weir runs: {_rates(rows, weir_times)}; GET+parse: {_rates(rows, floor_times)} "
            "(medians in the table)",
            f"weir time / transport floor: {weir_s / floor_s:.2f}x; the server alone (GETs, no "
            f"parse) delivers {rows / get_s / 1000:,.0f}k rows/s ({get_s:.2f} s)",
            f"weir run stage breakdown (self time per run, mean of {repeats}; 'source: HTTP GET' "
            "includes waiting for the server, which renders each page in another process):",
            *stage_table(stages, weir_s),
            "by stage group: " + grouped(stages),
            *missing(probe.missing),
        ],
    )


def _weir(home: Path, url: str, page_size: int) -> Any:
    extract = {
        "source": "rest",
        "url": url,
        "records_path": "data",
        "pagination": "offset",
        "page_size": page_size,
        "incremental": {"param": "updated_since", "field": "updated_at"},
    }
    project = load_project(
        projects.write(home, [projects.pipeline(NAME, extract, {"strategy": "merge"})])
    )
    record = PipelineRun(project, project.pipeline(NAME)).execute()
    if record.status != "success":
        raise RuntimeError(f"weir run failed: {record.error_message}")
    shutil.rmtree(home / "lake", ignore_errors=True)
    return record


def _rates(rows: int, times: list[float]) -> str:
    return " ".join(f"{rows / t / 1000:,.0f}k" for t in times) + " rows/s"


def fetch_floor(url: str, page_size: int, *, parse: bool = True) -> float:
    """Seconds to GET every page (and parse it to Arrow when ``parse``), nothing else."""
    fields = [pa.field(f.name, f.type) for f in data.SOURCE_SCHEMA]
    fields[1] = pa.field("order_date", pa.string())
    schema = pa.schema([pa.field("data", pa.list_(pa.struct(fields)))])
    options = pj.ParseOptions(explicit_schema=schema)
    start = time.perf_counter()
    offset = 0
    with httpx.Client(timeout=60) as client:
        while True:
            body = client.get(url, params={"offset": offset, "limit": page_size}).content
            if not parse:
                if len(body) < 20:  # {"data": []}
                    break
                offset += page_size
                continue
            read = pj.ReadOptions(block_size=len(body) + 1, use_threads=False)
            page = pj.read_json(pa.BufferReader(body), read_options=read, parse_options=options)
            count = len(page.column("data")[0])
            if count == 0:
                break
            offset += count
    return time.perf_counter() - start
