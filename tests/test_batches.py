"""A batch stuck between bronze and silver always has a way out: fix the definition (the
batch is re-evaluated on the next run) or `weir batches reject` (whole batch to quarantine,
recorded); `weir batches` shows where every batch is. Nothing is lost either way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from weir.cli import main
from weirtest.projects import orders_pipeline, table_rows, version, write_project

GOOD = (
    "id,email,amount,updated_at\n1,a@x.io,10,2024-01-01T00:00:00\n2,b@x.io,20,2024-01-01T00:00:00\n"
)
# both rows break amount.not_absurd (>= -100, error): 100 % quarantined
BAD = "id,email,amount,updated_at\n3,c@x.io,-500,2024-01-02T00:00:00\n4,d@x.io,-700,2024-01-02T00:00:00\n"
LATER = "id,email,amount,updated_at\n5,e@x.io,50,2024-01-03T00:00:00\n"


def _project(root: Path, **overrides: Any) -> Path:
    settings: dict[str, Any] = {"quality_gates": {"max_quarantine_ratio": 0.5}, **overrides}
    pipe = orders_pipeline(extract={"source": "files", "path": "data/*.csv"}, **settings)
    write_project(root, pipelines={"orders": pipe})
    (root / "data").mkdir(exist_ok=True)
    return root


def _run(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main([*args, "--project", str(root)])
    out = capsys.readouterr()
    return code, out.out + out.err


def _batches(root: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    code, text = _run(root, capsys, "batches", "orders", "--json")
    assert code == 0, text
    listed: list[dict[str, Any]] = json.loads(text)["batches"]
    return listed


def test_a_batch_failing_the_gate_waits_then_reject_lets_the_pipeline_go_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path / "p")
    (root / "data/1.csv").write_text(GOOD)
    assert _run(root, capsys, "run")[0] == 0
    (root / "data/2.csv").write_text(BAD)
    code, text = _run(root, capsys, "run")
    assert code == 1 and "max_quarantine_ratio" in text
    assert "weir batches reject orders 2 --reason" in text  # the way out is named
    # deleting the bad file or adding a good one does not help: batch 2 is in bronze
    (root / "data/2.csv").unlink()
    (root / "data/3.csv").write_text(LATER)
    code, text = _run(root, capsys, "run")
    assert code == 1 and "batch 2" in text
    assert [(b["batch"], b["status"]) for b in _batches(root, capsys)] == [
        (1, "loaded"),
        (2, "pending"),
    ]

    silver_before = version(root / "lake/silver/orders")
    code, text = _run(root, capsys, "batches", "reject", "orders", "2", "--reason", "bad export")
    assert code == 0, text
    assert version(root / "lake/silver/orders") == silver_before + 1  # marked, no rows
    quarantined = table_rows(root / "lake/quarantine/orders", sort=["order_id"])
    assert [(r["order_id"], r["_reasons"]) for r in quarantined] == [
        (3, ["rejected: bad export"]),
        (4, ["rejected: bad export"]),
    ]
    listed = _batches(root, capsys)
    assert [(b["batch"], b["status"], b["reason"]) for b in listed] == [
        (1, "loaded", None),
        (2, "rejected", "bad export"),
    ]
    # the pipeline goes on: the new file arrives in silver as batch 3
    code, text = _run(root, capsys, "run")
    assert code == 0, text
    assert sorted(r["order_id"] for r in table_rows(root / "lake/silver/orders")) == [1, 2, 5]
    # the rejection is a run record of its own
    records = [json.loads(x) for x in (root / ".weir/runs.jsonl").read_text().splitlines()]
    rejects = [r for r in records if r["stage"] == "rejected" and r["rows_rejected"] == 2]
    assert rejects and rejects[0]["status"] == "partial"


def test_fixing_the_rules_releases_a_waiting_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path / "p")
    (root / "data/1.csv").write_text(BAD)
    assert _run(root, capsys, "run")[0] == 1
    _project(root, quality_gates={"max_quarantine_ratio": 1.0})  # the gate is relaxed
    code, text = _run(root, capsys, "run")
    assert code == 0, text
    assert len(table_rows(root / "lake/quarantine/orders")) == 2
    assert _batches(root, capsys)[0]["status"] == "loaded"


def test_a_batch_the_transform_cannot_take_is_rejected_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an amount of 20 cannot be cast: a runtime error in silver, after bronze
    sql = "CAST(CASE WHEN amount = 20 THEN 'x' ELSE CAST(amount AS VARCHAR) END AS INTEGER)"
    derived = [{"name": "cents", "sql": sql, "type": "int64"}]
    root = _project(tmp_path / "p", transform={"derived": derived})
    (root / "data/1.csv").write_text(GOOD)
    code, text = _run(root, capsys, "run")
    assert code == 1 and "silver transform failed" in text and "batches reject" in text
    assert not (root / "lake/silver/orders").exists()
    code, text = _run(root, capsys, "batches", "reject", "orders", "1", "--reason", "no cents")
    assert code == 0, text
    assert table_rows(root / "lake/silver/orders") == []  # created, empty, batch applied
    assert len(table_rows(root / "lake/quarantine/orders")) == 2
    (root / "data/2.csv").write_text(LATER)
    assert _run(root, capsys, "run")[0] == 0
    assert [r["cents"] for r in table_rows(root / "lake/silver/orders")] == [50]


def test_reject_refuses_what_is_not_the_next_pending_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path / "p")
    (root / "data/1.csv").write_text(GOOD)
    assert _run(root, capsys, "run")[0] == 0
    code, text = _run(root, capsys, "batches", "reject", "orders", "1", "--reason", "x")
    assert code == 2 and "in silver already" in text
    code, text = _run(root, capsys, "batches", "reject", "orders", "7", "--reason", "x")
    assert code == 2 and "not in bronze" in text
    code, text = _run(root, capsys, "batches", "reject", "orders", "1")
    assert code == 2 and "--reason" in text
    code, text = _run(root, capsys, "batches", "orderz")
    assert code == 2 and "did you mean 'orders'" in text


def test_rejecting_a_batch_is_not_an_empty_snapshot_for_scd2_hard_deletes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """scd2 with hard_deletes: close reads each batch as a full snapshot; a rejected batch
    is no snapshot at all and must close nothing."""
    load = {"strategy": "scd2", "scd2": {"hard_deletes": "close"}}  # versions dated by run
    root = _project(tmp_path / "p", load=load)
    (root / "data/1.csv").write_text(GOOD)
    assert _run(root, capsys, "run")[0] == 0
    (root / "data/2.csv").write_text(BAD)
    assert _run(root, capsys, "run")[0] == 1
    assert _run(root, capsys, "batches", "reject", "orders", "2", "--reason", "x")[0] == 0
    current = [r["order_id"] for r in table_rows(root / "lake/silver/orders") if r["is_current"]]
    assert sorted(current) == [1, 2]
