"""A changed pipeline definition is never silently ignored: the run says silver was built
with the old one, and `weir run --full-refresh PIPELINE` replays bronze into new silver and
quarantine tables — equal to a clean run under the new definition, crash-safe, idempotent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from weir.cli import main
from weirtest.projects import (
    lake_content,
    orders_pipeline,
    table_rows,
    version,
    weir_run,
    write_project,
)

FILES = {
    "1.csv": "id,email,amount,updated_at\n1,a@x.io,10,2024-01-01T00:00:00\n"
    "2,b@x.io,20,2024-01-01T00:00:00\n3,c@x.io,-500,2024-01-01T00:00:00\n",
    "2.csv": "id,email,amount,updated_at\n2,b@x.io,25,2024-01-02T00:00:00\n"
    "4,d@x.io,-150,2024-01-02T00:00:00\n1,a@x.io,11,2024-01-03T00:00:00\n",
}
OLD = {"derived": [{"name": "doubled", "sql": "amount * 2", "type": "float64"}]}
NEW = {"derived": [{"name": "doubled", "sql": "amount * 200", "type": "float64"}]}


def _contract(floor: int) -> dict[str, Any]:
    from weirtest.projects import ORDERS_CONTRACT

    contract = json.loads(json.dumps(ORDERS_CONTRACT))
    amount = contract["schema"][0]["properties"][2]
    amount["quality"][1]["mustBeGreaterThanOrEqualTo"] = floor
    return contract


def _write(root: Path, transform: dict[str, Any], floor: int, strategy: str = "merge") -> Path:
    load: dict[str, Any] = {"strategy": strategy}
    if strategy == "scd2":
        load["scd2"] = {"valid_from": "updated_at"}
    pipe = orders_pipeline(
        extract={"source": "files", "path": "data/*.csv"},
        transform={"dedupe_order_by": "updated_at", **transform},
        load=load,
    )
    write_project(root, contracts={"orders": _contract(floor)}, pipelines={"orders": pipe})
    (root / "data").mkdir(exist_ok=True)
    return root


def _drop_all(root: Path) -> None:
    for name, text in FILES.items():
        (root / "data" / name).write_text(text)
        assert weir_run(root).returncode == 0


def _clean(root: Path, strategy: str) -> dict[str, Any]:
    """The lake a project gets that had the new definition from the start."""
    _write(root, NEW, -200, strategy)
    _drop_all(root)
    content = lake_content(root, "orders")
    return {layer: content[layer] for layer in ("silver", "quarantine")}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["merge", "scd2"])
def test_changed_definition_is_reported_and_full_refresh_equals_a_clean_run(
    tmp_path: Path, strategy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _write(tmp_path / "p", OLD, -100, strategy)
    _drop_all(root)
    assert len(table_rows(root / "lake/quarantine/orders")) == 2  # -500 and -150
    _write(root, NEW, -200, strategy)  # the transform and a rule change
    capsys.readouterr()
    assert main(["run", "--project", str(root), "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)["runs"]
    [warning] = [w for w in record["warnings"] if "earlier definition" in w]
    assert "the quality rules, the transform changed" in warning
    assert "weir run --full-refresh orders" in warning

    result = weir_run(root, args=("--full-refresh", "orders"))
    assert result.returncode == 0, result.stdout + result.stderr
    content = lake_content(root, "orders")
    assert {k: content[k] for k in ("silver", "quarantine")} == _clean(tmp_path / "c", strategy)
    # -150 passes the new floor: out of quarantine, into silver; doubled is amount * 200
    assert len(table_rows(root / "lake/quarantine/orders")) == 1
    # the warning is gone, and a re-run changes nothing
    versions = {t: version(root / "lake" / t / "orders") for t in ("silver", "quarantine")}
    capsys.readouterr()
    assert main(["run", "--project", str(root), "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)["runs"]
    assert not [w for w in record["warnings"] if "earlier definition" in w]
    assert versions == {t: version(root / "lake" / t / "orders") for t in versions}


def test_full_refresh_also_lands_new_files_and_keeps_rejected_batches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _write(tmp_path / "p", OLD, -100)
    pipe = orders_pipeline(
        extract={"source": "files", "path": "data/*.csv"},
        transform={"dedupe_order_by": "updated_at", **OLD},
        quality_gates={"max_quarantine_ratio": 0.2},
    )
    write_project(root, contracts={"orders": _contract(-100)}, pipelines={"orders": pipe})
    (root / "data/1.csv").write_text(FILES["1.csv"])
    assert main(["run", "--project", str(root)]) == 1  # 1 of 3 quarantined > 0.2
    assert (
        main(["batches", "reject", "orders", "1", "--reason", "mixed up", "--project", str(root)])
        == 0
    )
    (root / "data/2.csv").write_text(FILES["2.csv"])
    result = weir_run(root, args=("--full-refresh",))
    assert result.returncode == 1  # batch 2 (1 of 3 quarantined) fails the gate on replay too
    assert "the rebuild stopped at batch 2" in result.stdout + result.stderr
    write_project(
        root,
        contracts={"orders": _contract(-100)},
        pipelines={"orders": {**pipe, "quality_gates": {"max_quarantine_ratio": 0.5}}},
    )
    result = weir_run(root, args=("--full-refresh",))
    assert result.returncode == 0, result.stdout + result.stderr
    reasons = sorted(
        (r["order_id"], r["_reasons"][0]) for r in table_rows(root / "lake/quarantine/orders")
    )
    assert reasons == [
        (1, "rejected: mixed up"),
        (2, "rejected: mixed up"),
        (3, "rejected: mixed up"),
        (4, "amount.not_absurd"),
    ]
    assert sorted(r["order_id"] for r in table_rows(root / "lake/silver/orders")) == [1, 2]
