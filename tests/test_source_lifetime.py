"""A run opens its source once, for probe and every extract attempt, and closes it on every
path: success, a failed read, breaking drift found by the probe, an interrupt between read attempts.

The in-process source counts the sources made and not closed (``memory.open_sources``); the
REST source is checked on the real local HTTP server, which counts TCP connections.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from weir.run.pipeline import PipelineRun
from weir.run.verify import schema_diff
from weir.sources import memory
from weir.spec import load_project
from weirtest.projects import orders_pipeline, write_project
from weirtest.restserver import Fault, RestServer, sample_records

Progress = Callable[[str], None]


def orders(ids: list[int], day: int = 1) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "email": [f"user{i}@example.com" for i in ids],
            "amount": pa.array([1.0] * len(ids), pa.float64()),
            "updated_at": pa.array([f"2024-01-0{day}T00:00:00"] * len(ids)).cast(
                pa.timestamp("us")
            ),
        }
    )


@pytest.fixture
def dataset() -> Iterator[str]:
    memory.register("lifetime")
    yield "lifetime"
    memory.register("lifetime")


def _run(root: Path, progress: Progress | None = None) -> Any:
    project = load_project(root)
    pipeline = project.pipeline("orders")
    if progress is None:
        return PipelineRun(project, pipeline).execute()
    return PipelineRun(project, pipeline, progress=progress).execute()


def _project(tmp_path: Path, **extract: Any) -> Path:
    pipe = orders_pipeline(extract={"source": "memory", "dataset": "lifetime", **extract})
    return write_project(tmp_path / "proj", pipelines={"orders": pipe})


def test_a_successful_run_closes_its_source(tmp_path: Path, dataset: str) -> None:
    root = _project(tmp_path)
    memory.append(dataset, orders([1, 2]))
    record = _run(root)
    assert record.status == "success" and record.rows_loaded == 2
    assert memory.open_sources(dataset) == 0
    assert _run(root).status == "success"  # nothing new: still closed
    assert memory.open_sources(dataset) == 0


def test_a_failed_read_closes_its_source_after_every_attempt(tmp_path: Path, dataset: str) -> None:
    root = _project(tmp_path, fail_after_batches=0)
    memory.append(dataset, orders([1]))
    record = _run(root)
    assert record.status == "failed" and record.attempts == 3
    assert memory.open_sources(dataset) == 0


def test_breaking_drift_found_by_the_probe_closes_the_source(tmp_path: Path, dataset: str) -> None:
    root = _project(tmp_path)
    memory.append(dataset, orders([1]).drop_columns(["amount"]))
    record = _run(root)
    assert record.status == "failed" and "no longer matches" in (record.error_message or "")
    assert memory.open_sources(dataset) == 0


def test_an_interrupt_during_the_read_closes_the_source(tmp_path: Path, dataset: str) -> None:
    root = _project(tmp_path, fail_after_batches=0)
    memory.append(dataset, orders([1, 2]))

    def interrupt(message: str) -> None:  # Ctrl-C while the run waits to read again
        if "retrying" in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(root, progress=interrupt)
    assert memory.open_sources(dataset) == 0


def test_schema_diff_closes_the_source_it_probes(tmp_path: Path, dataset: str) -> None:
    root = _project(tmp_path)
    memory.append(dataset, orders([1]))
    project = load_project(root)
    sections = schema_diff(project, project.pipeline("orders"))
    assert sections and "pending source data" in sections[0][0]
    assert memory.open_sources(dataset) == 0


# -- REST: one connection per run ---------------------------------------------------------------

ITEMS: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "items",
    "version": "1.0.0",
    "schema": [
        {
            "name": "items",
            "properties": [
                {"name": "id", "physicalType": "int64", "primaryKey": True},
                {"name": "name", "physicalType": "string"},
                {"name": "amount", "physicalType": "float64"},
                {"name": "updated_at", "physicalType": "timestamptz", "required": True},
            ],
        }
    ],
}


def _rest_project(tmp_path: Path, url: str) -> Path:
    pipe = orders_pipeline(
        contract="items",
        extract={
            "source": "rest",
            "url": url,
            "records_path": "data",
            "pagination": "page",
            "page_size": 10,
            "on_incomplete": "fail",
            "backoff_seconds": 0,
        },
        transform={},
        error_handling={"max_retries": 1, "retry_delay_seconds": 0},
    )
    return write_project(tmp_path / "proj", contracts={"items": ITEMS}, pipelines={"orders": pipe})


def _settled(server: RestServer) -> bool:
    deadline = time.monotonic() + 5
    while server.disconnections < server.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.disconnections == server.connections


def test_a_rest_run_reads_every_attempt_through_one_connection_and_closes_it(
    tmp_path: Path,
) -> None:
    # page 2 comes back empty after a full page on the first attempt only: the read looks
    # incomplete (on_incomplete: fail), and error_handling reads it all again
    empty = Fault(status=200, body=b'{"data": []}')
    with RestServer(sample_records(25), pagination="page", faults={2: empty}) as server:
        record = _run(_rest_project(tmp_path, server.url))
        assert record.status == "success", record.error_message
        assert record.attempts == 2 and record.rows_loaded == 25
        assert server.connections == 1
        assert _settled(server), "the run left its connection open"


def test_a_failed_rest_run_closes_its_connection(tmp_path: Path) -> None:
    with RestServer(sample_records(25), pagination="page", faults={1: Fault.error(404)}) as server:
        record = _run(_rest_project(tmp_path, server.url))
        assert record.status == "failed" and "HTTP 404" in (record.error_message or "")
        assert server.connections == 1
        assert _settled(server), "the failed run left its connection open"
