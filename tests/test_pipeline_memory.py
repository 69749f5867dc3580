"""End-to-end pipeline behaviour on the in-process source: real DuckDB, real Delta tables."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from weir.run.pipeline import PipelineRun
from weir.sources import memory
from weir.spec import load_project
from weirtest.projects import ORDERS_CONTRACT, SALT, orders_pipeline, table_rows, version


def ts(day: int) -> dt.datetime:
    return dt.datetime(2024, 1, day, 12, 0)


def orders(
    ids: list[int | None], amounts: list[float], days: list[int], emails: list[str] | None = None
) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "email": emails or [f"user{i}@example.com" for i in range(len(ids))],
            "amount": pa.array(amounts, pa.float64()),
            "updated_at": [ts(d) for d in days],
        }
    )


def run(root: Path, name: str = "orders"):
    project = load_project(root)
    return PipelineRun(project, project.pipeline(name)).execute()


@pytest.fixture
def dataset() -> str:
    memory.register("orders")
    return "orders"


def test_first_run_loads_flags_and_quarantines(
    project_dir: Callable[..., Path], dataset: str
) -> None:
    root = project_dir()
    memory.append(dataset, orders([1, 2, 2, None, 3], [5, 2000, 3, 1, -500], [1, 1, 2, 1, 1]))
    record = run(root)
    assert record.status == "partial", record.error_message  # landed, some rows quarantined
    assert record.rows_extracted == 5
    assert record.rows_extracted == record.rows_loaded + record.rows_quarantined
    assert (record.rows_loaded, record.rows_quarantined, record.rows_superseded) == (3, 2, 1)
    silver = table_rows(root / "lake/silver/orders", sort=["order_id"])
    assert [r["order_id"] for r in silver] == [1, 2]
    # the later version of key 2 wins; the 2000 row was superseded, not flagged in silver
    assert silver[1]["amount"] == 3 and silver[1]["dq_valid"] is True
    quarantine = table_rows(root / "lake/quarantine/orders", sort=["_row"])
    reasons = {r["order_id"]: r["_reasons"] for r in quarantine}
    assert reasons == {None: ["order_id.required"], 3: ["amount.not_absurd"]}
    failed = {c.name: c.failing_rows for c in record.checks if not c.passed}
    assert failed == {"order_id.required": 1, "amount.not_absurd": 1, "amount.range": 2}


def test_warn_rule_flags_row_in_silver(project_dir: Callable[..., Path], dataset: str) -> None:
    root = project_dir()
    memory.append(dataset, orders([1, 2], [5, 2000], [1, 1]))
    run(root)
    rows = {r["order_id"]: r for r in table_rows(root / "lake/silver/orders")}
    assert rows[2]["dq_valid"] is False and rows[2]["dq_flags"] == ["amount.range"]
    assert rows[1]["dq_valid"] is True and rows[1]["dq_flags"] == []


def test_pii_is_salted_sha256_and_surrogate_key_is_sha256(
    project_dir: Callable[..., Path], dataset: str
) -> None:
    import hashlib

    root = project_dir()
    memory.append(dataset, orders([7], [1], [1], emails=["alice@example.com"]))
    run(root)
    [row] = table_rows(root / "lake/silver/orders")
    assert row["email"] == hashlib.sha256((SALT + "alice@example.com").encode()).hexdigest()
    assert row["surrogate_key"] == hashlib.sha256(b"7").hexdigest()
    bronze_text = json.dumps(table_rows(root / "lake/silver/orders"), default=str)
    assert "alice@example.com" not in bronze_text


def test_rerun_creates_no_versions_and_new_batch_merges(
    project_dir: Callable[..., Path], dataset: str
) -> None:
    root = project_dir()
    memory.append(dataset, orders([1, 2], [5, 6], [1, 1]))
    run(root)
    versions = {t: version(root / f"lake/{t}/orders") for t in ("bronze", "silver")}
    again = run(root)
    assert again.status == "success" and not again.changed and again.rows_extracted == 0
    assert {t: version(root / f"lake/{t}/orders") for t in ("bronze", "silver")} == versions
    memory.append(dataset, orders([2, 3], [60, 7], [2, 2]))
    third = run(root)
    assert third.rows_extracted == 2 and third.changed
    silver = table_rows(root / "lake/silver/orders", ["order_id", "amount"], sort=["order_id"])
    assert silver == [
        {"order_id": 1, "amount": 5},
        {"order_id": 2, "amount": 60},
        {"order_id": 3, "amount": 7},
    ]


def test_out_of_order_update_does_not_overwrite_newer_row(
    project_dir: Callable[..., Path], dataset: str
) -> None:
    root = project_dir()
    memory.append(dataset, orders([1], [50], [5]))
    run(root)
    memory.append(dataset, orders([1], [10], [2]))  # an older version arrives late
    run(root)
    [row] = table_rows(root / "lake/silver/orders")
    assert row["amount"] == 50


def test_all_rows_quarantined_still_completes_batch(
    project_dir: Callable[..., Path], dataset: str
) -> None:
    root = project_dir()
    memory.append(dataset, orders([None, None], [1, 2], [1, 1]))
    record = run(root)
    assert record.status == "partial", record.error_message
    assert record.rows_quarantined == 2 and record.rows_loaded == 0
    assert run(root).changed is False  # nothing left to catch up


def test_quarantine_ratio_gate_fails_run_and_keeps_batch(
    project_dir: Callable[..., Path], dataset: str
) -> None:
    root = project_dir(
        pipelines={"orders": orders_pipeline(quality_gates={"max_quarantine_ratio": 0.1})}
    )
    memory.append(dataset, orders([None, 1], [1, 2], [1, 1]))
    record = run(root)
    assert record.status == "failed"
    assert "max_quarantine_ratio" in (record.error_message or "")
    assert not (root / "lake/silver/orders").exists()
    assert version(root / "lake/bronze/orders") == 0  # the batch waits in bronze, nothing lost


def test_transient_source_errors_are_retried_then_fail_cleanly(
    project_dir: Callable[..., Path], dataset: str
) -> None:
    pipe = orders_pipeline(
        extract={"source": "memory", "dataset": "orders", "fail_after_batches": 0}
    )
    root = project_dir(pipelines={"orders": pipe})
    memory.append(dataset, orders([1], [1], [1]))
    record = run(root)
    assert record.status == "failed" and record.attempts == 3
    assert "gave up after 3 attempts" in (record.error_message or "")
    assert not (root / "lake/bronze/orders").exists()


@pytest.mark.parametrize("strategy", ["append", "truncate-reload", "partition-swap"])
def test_other_strategies(project_dir: Callable[..., Path], dataset: str, strategy: str) -> None:
    pipe = orders_pipeline(
        transform={
            "dedupe_order_by": "updated_at",
            "derived": [{"name": "day", "sql": "CAST(updated_at AS DATE)", "type": "date"}],
        },
        load={"strategy": strategy, "partition_by": ["day"]},
    )
    root = project_dir(pipelines={"orders": pipe})
    memory.append(dataset, orders([1, 2], [1, 2], [1, 2]))
    assert run(root).status == "success"
    memory.append(dataset, orders([3, 4], [3, 4], [2, 3]))
    assert run(root).status == "success"
    ids = sorted(r["order_id"] for r in table_rows(root / "lake/silver/orders"))
    expected = {"append": [1, 2, 3, 4], "truncate-reload": [3, 4], "partition-swap": [1, 3, 4]}
    assert ids == expected[strategy]


def test_new_column_evolves_tables_and_is_recorded(
    project_dir: Callable[..., Path], dataset: str
) -> None:
    root = project_dir()
    memory.append(dataset, orders([1], [1], [1]))
    run(root)
    memory.append(dataset, orders([2], [2], [2]).append_column("coupon", pa.array(["X1"])))
    record = run(root)
    assert record.status == "success", record.error_message
    assert any("coupon" in c for c in record.schema_changes)
    rows = {r["order_id"]: r for r in table_rows(root / "lake/silver/orders")}
    assert rows[2]["coupon"] == "X1" and rows[1]["coupon"] is None


@pytest.mark.parametrize("change", ["removed", "renamed", "type"])
def test_breaking_drift_fails_before_any_write(
    project_dir: Callable[..., Path], dataset: str, change: str
) -> None:
    root = project_dir()
    memory.append(dataset, orders([1], [1], [1]))
    run(root)
    before = {t: version(root / f"lake/{t}/orders") for t in ("bronze", "silver")}
    bad = orders([2], [2], [2])
    if change == "removed":
        bad = bad.drop_columns(["amount"])
    elif change == "renamed":
        bad = bad.rename_columns(["id", "email", "total", "updated_at"])
    else:
        bad = bad.set_column(2, "amount", pa.array(["2.0"]))
    memory.append(dataset, bad)
    record = run(root)
    assert record.status == "failed"
    assert "no longer matches contract" in (record.error_message or "")
    assert {t: version(root / f"lake/{t}/orders") for t in ("bronze", "silver")} == before
    if change == "renamed":
        assert "amount → total" in (record.error_message or "")


def test_scd2_history(project_dir: Callable[..., Path], dataset: str) -> None:
    pipe = orders_pipeline(
        load={"strategy": "scd2", "scd2": {"valid_from": "updated_at", "tracked": ["amount"]}}
    )
    root = project_dir(pipelines={"orders": pipe})
    memory.append(dataset, orders([1, 2], [10, 20], [1, 1]))
    run(root)
    memory.append(dataset, orders([1, 2], [11, 20], [2, 2]))  # 1 changes, 2 does not
    run(root)
    rows = table_rows(
        root / "lake/silver/orders",
        ["order_id", "amount", "valid_from", "valid_to", "is_current"],
        sort=["order_id", "valid_from"],
    )
    assert rows == [
        {"order_id": 1, "amount": 10, "valid_from": ts(1), "valid_to": ts(2), "is_current": False},
        {"order_id": 1, "amount": 11, "valid_from": ts(2), "valid_to": None, "is_current": True},
        {"order_id": 2, "amount": 20, "valid_from": ts(1), "valid_to": None, "is_current": True},
    ]


def test_scd2_hard_deletes_close_missing_keys(
    project_dir: Callable[..., Path], dataset: str
) -> None:
    pipe = orders_pipeline(
        load={"strategy": "scd2", "scd2": {"valid_from": "updated_at", "hard_deletes": "close"}}
    )
    root = project_dir(pipelines={"orders": pipe})
    memory.append(dataset, orders([1, 2], [10, 20], [1, 1]))
    run(root)
    memory.append(dataset, orders([1], [10], [2]))  # full snapshot without key 2
    run(root)
    current = {r["order_id"]: r["is_current"] for r in table_rows(root / "lake/silver/orders")}
    assert current == {1: True, 2: False}


def test_run_record_in_jsonl_and_state(project_dir: Callable[..., Path], dataset: str) -> None:
    from weir.state.sqlite import StateStore

    root = project_dir()
    memory.append(dataset, orders([1], [1], [1]))
    record = run(root)
    lines = (root / ".weir/runs.jsonl").read_text().splitlines()
    logged = json.loads(lines[-1])
    required = [
        "pipeline_name",
        "run_id",
        "started_at",
        "completed_at",
        "status",
        "stage",
        "rows_extracted",
        "rows_transformed",
        "rows_loaded",
        "rows_rejected",
        "quality_checks_passed",
        "quality_checks_failed",
        "duration_seconds",
        "error_message",
        "watermark_before",
        "watermark_after",
    ]
    assert all(k in logged for k in required)
    assert logged["run_id"] == record.run_id and logged["watermark_after"] == "batch 1"
    [stored] = StateStore(root / ".weir/state.db").runs("orders")
    assert stored["run_id"] == record.run_id and stored["rows_loaded"] == 1


def test_contract_type_change_against_existing_table_fails_before_write(
    project_dir: Callable[..., Path], dataset: str
) -> None:
    import copy

    import yaml

    root = project_dir()
    memory.append(dataset, orders([1], [1], [1]))
    run(root)
    contract = copy.deepcopy(ORDERS_CONTRACT)
    contract["schema"][0]["properties"][2]["physicalType"] = "int32"  # amount: float64 → int32
    (root / "contracts/orders.yml").write_text(yaml.safe_dump(contract))
    memory.append(dataset, orders([2], [2], [2]).set_column(2, "amount", pa.array([2], pa.int32())))
    before = version(root / "lake/bronze/orders")
    record = run(root)
    assert record.status == "failed"
    assert "changed a column's type" in (record.error_message or "")
    assert "amount: float64 (table) → int32 (contract)" in (record.error_message or "")
    assert version(root / "lake/bronze/orders") == before


def test_merge_scans_only_the_partitions_in_the_batch(
    project_dir: Callable[..., Path], dataset: str
) -> None:
    pipe = orders_pipeline(
        transform={
            "dedupe_order_by": "updated_at",
            "derived": [{"name": "day", "sql": "CAST(updated_at AS DATE)", "type": "date"}],
        },
        load={"strategy": "merge", "keys": ["order_id", "day"], "partition_by": ["day"]},
    )
    root = project_dir(pipelines={"orders": pipe})
    memory.append(dataset, orders([1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]))
    run(root)
    memory.append(dataset, orders([2, 9], [20, 90], [2, 2]))  # touches day 2 only
    record = run(root)
    [metrics] = record.load_metrics
    assert metrics["num_target_files_scanned"] == 1
    assert metrics["num_target_files_skipped_during_scan"] == 3
    assert (metrics["num_target_rows_updated"], metrics["num_target_rows_inserted"]) == (1, 1)
    rows = table_rows(root / "lake/silver/orders", ["order_id", "amount"], sort=["order_id"])
    assert [r["amount"] for r in rows] == [1, 20, 3, 4, 90]


def test_one_failing_source_leaves_the_others_alone(
    project_dir: Callable[..., Path], dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from weir.cli import main

    broken = orders_pipeline(
        name="orders_eu",
        extract={"source": "memory", "dataset": "nope"},
        load={"strategy": "merge", "table": "orders_eu"},
    )
    root = project_dir(pipelines={"orders": orders_pipeline(), "orders_eu": broken})
    memory.append(dataset, orders([1], [1], [1]))
    assert main(["run", "--project", str(root)]) == 1  # one pipeline failed
    memory.append(dataset, orders([2], [2], [2]))
    assert main(["run", "orders", "--project", str(root)]) == 0
    assert [r["order_id"] for r in table_rows(root / "lake/silver/orders", sort=["order_id"])] == [
        1,
        2,
    ]
    assert not (root / "lake/bronze/orders_eu").exists()
    assert "orders_eu" in capsys.readouterr().out
