"""A MERGE into silver reads only the files that can hold the batch's keys: the batch's
range of each key column bounds the target, and delta-rs skips files whose statistics lie
outside it. The result is what a MERGE of the whole table gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from weir.run import api
from weir.sources import memory
from weir.spec import load_project
from weirtest.projects import table_rows, write_project


def orders(ids: range, amount: float) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(list(ids), pa.int64()),
            "email": [f"c{i}@example.com" for i in ids],
            "amount": pa.array([amount] * len(ids)),
            "updated_at": [dt.datetime(2026, 6, 1) + dt.timedelta(minutes=amount)] * len(ids),
        }
    )


def merge(root: Path, data: pa.Table) -> dict[str, int]:
    memory.append("orders", data)
    [record] = api.run(load_project(root))
    assert record.status == "success", record.error_message
    [metrics] = [m for m in record.load_metrics if "num_target_files_skipped_during_scan" in m]
    return metrics


def test_a_merge_of_recent_keys_skips_the_files_of_older_ones(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    memory.register("orders")
    for n in range(3):  # three runs of new keys: three data files, key ranges apart
        memory.append("orders", orders(range(100 * n + 1, 100 * n + 101), 1.0))
        [record] = api.run(load_project(root))
        assert record.status == "success", record.error_message
    metrics = merge(root, orders(range(250, 261), 2.0))
    assert metrics["num_target_rows_updated"] == 11
    assert metrics["num_target_files_skipped_during_scan"] == 2  # ids 1-100 and 101-200
    assert metrics["num_target_files_scanned"] == 1

    # keys across the whole range: nothing can be skipped, and the result is the same
    metrics = merge(root, orders(range(1, 301, 50), 3.0))
    assert metrics["num_target_files_skipped_during_scan"] == 0
    rows = table_rows(root / "lake" / "silver" / "orders", ["order_id", "amount"], ["order_id"])
    expected = {i: 1.0 for i in range(1, 301)}
    expected |= {i: 2.0 for i in range(250, 261)} | {i: 3.0 for i in range(1, 301, 50)}
    assert [(r["order_id"], r["amount"]) for r in rows] == sorted(expected.items())
