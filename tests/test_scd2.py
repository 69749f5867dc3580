"""SCD2 on one time axis (issue 7, item 1): silver ``scd2`` and gold ``snapshot`` tables dated
by a data column close hard deletes on that axis, so a key that comes back after a delete
keeps its later changes; late changes and deletes are counted and warned, never dropped
silently; a NULL change time goes to quarantine instead of opening a broken version."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from deltalake import DeltaTable

from weirtest.modelkit import at, day, events_project, gold, push, run, run_ok
from weirtest.projects import write_project

CITIES: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "cities",
    "version": "1.0.0",
    "schema": [
        {
            "name": "cities",
            "properties": [
                {"name": "id", "physicalType": "int64", "primaryKey": True},
                {"name": "city", "physicalType": "string"},
                {"name": "email", "physicalType": "string", "classification": "pii"},
                {"name": "as_of", "physicalType": "date"},
            ],
        }
    ],
}
# the reproduction: one full snapshot per file, dated by as_of
FILES = [
    "1,Oslo,o@x.io,2024-01-01\n2,Rome,r@x.io,2024-01-01\n",
    "2,Rome,r@x.io,2024-01-02\n",  # 1 deleted
    "1,Oslo,o@x.io,2024-01-03\n2,Rome,r@x.io,2024-01-03\n",  # 1 back
    "1,Bergen,o@x.io,2024-01-04\n2,Rome,r@x.io,2024-01-04\n",  # 1 moves
]
HEADER = "id,city,email,as_of\n"


def _cities(root: Path, *, key: str = "id", hard_deletes: str = "close") -> Path:
    contract = CITIES
    if key != "id":  # the key is the PII column: its values must never be shown raw
        props = [dict(p, primaryKey=p["name"] == key) for p in CITIES["schema"][0]["properties"]]
        contract = {**CITIES, "schema": [{"name": "cities", "properties": props}]}
    pipeline = {
        "name": "cities",
        "owner": "data-eng",
        "contract": "cities",
        "extract": {"source": "files", "path": "data/*.csv", "format": "csv"},
        "load": {"strategy": "scd2", "scd2": {"valid_from": "as_of", "hard_deletes": hard_deletes}},
    }
    write_project(root, contracts={"cities": contract}, pipelines={"cities": pipeline})
    (root / "data").mkdir()
    return root


def _drop(root: Path, n: int, body: str) -> None:
    (root / "data" / f"e{n}.csv").write_text(HEADER + body)


def _silver(root: Path) -> list[tuple[Any, ...]]:
    columns = ["id", "city", "valid_from", "valid_to", "is_current"]
    data = DeltaTable(str(root / "lake/silver/cities")).to_pyarrow_table(columns=columns)
    return sorted(tuple(r.values()) for r in data.to_pylist())


def d(n: int) -> dt.datetime:
    return dt.datetime(2024, 1, n)


def test_silver_key_back_after_a_hard_delete_keeps_its_later_changes(tmp_path: Path) -> None:
    root = _cities(tmp_path / "p")
    for n, body in enumerate(FILES, start=1):
        _drop(root, n, body)
        record = run_ok(root)["cities"]
        assert not record.warnings, record.warnings
    # the delete is dated on the table's axis: the as-of time of the batch that lacked 1
    assert _silver(root) == [
        (1, "Bergen", d(4), None, True),
        (1, "Oslo", d(1), d(2), False),
        (1, "Oslo", d(3), d(4), False),
        (2, "Rome", d(1), None, True),
    ]
    [metrics] = record.load_metrics
    assert metrics["hard_deletes_at"] == "2024-01-04T00:00:00"
    assert metrics["num_hard_deletes"] == 0 and metrics["num_source_rows_late"] == 0


def test_silver_late_changes_are_counted_warned_and_reconciled(tmp_path: Path) -> None:
    root = _cities(tmp_path / "p", key="email", hard_deletes="ignore")
    _drop(root, 1, "1,Oslo,o@x.io,2024-01-05\n2,Rome,r@x.io,2024-01-05\n")
    run_ok(root)
    # o@x.io moves, but dated before its current version: out of order
    _drop(root, 2, "1,Bergen,o@x.io,2024-01-03\n2,Milan,r@x.io,2024-01-06\n")
    record = run_ok(root)["cities"]
    assert record.load_metrics[-1]["num_source_rows_late"] == 1
    [warning] = record.warnings
    assert warning.startswith("batch 2: 1 rows carry a change older than their key's current")
    assert "(e.g. email=***)" in warning and "o@x.io" not in warning
    # rows in = written + late + superseded + quarantined: the late row is loaded, not lost
    assert record.rows_extracted == record.rows_loaded == 2 and record.rows_quarantined == 0
    assert [r[1] for r in _silver(root) if r[4]] == ["Oslo", "Milan"]


def test_a_null_change_time_is_quarantined_and_its_key_not_taken_as_deleted(
    tmp_path: Path,
) -> None:
    root = _cities(tmp_path / "p")
    _drop(root, 1, FILES[0])
    run_ok(root)
    _drop(root, 2, "1,Bergen,o@x.io,\n2,Rome,r@x.io,2024-01-02\n")
    record = run(root)["cities"]
    assert record.status == "partial" and record.rows_quarantined == 1
    [check] = [c for c in record.checks if c.name == "as_of.required"]
    assert check.severity == "error" and check.failing_rows == 1
    quarantined = DeltaTable(str(root / "lake/quarantine/cities")).to_pyarrow_table().to_pylist()
    assert [(r["id"], r["_reasons"]) for r in quarantined] == [(1, ["as_of.required"])]
    # 1's row is in the batch (though quarantined): not a delete, 1 stays current
    assert _silver(root) == [(1, "Oslo", d(1), None, True), (2, "Rome", d(1), None, True)]
    assert record.load_metrics[-1]["num_hard_deletes"] == 0


def test_a_delete_not_after_the_version_stays_current_and_is_warned(tmp_path: Path) -> None:
    root = _cities(tmp_path / "p")
    _drop(root, 1, "1,Oslo,o@x.io,2024-01-05\n2,Rome,r@x.io,2024-01-01\n")
    run_ok(root)
    _drop(root, 2, "2,Rome,r@x.io,2024-01-02\n")  # 1 missing, but the batch is as of Jan 2
    record = run_ok(root)["cities"]
    assert record.load_metrics[-1]["num_hard_deletes_late"] == 1
    [warning] = record.warnings
    assert "1 keys are missing from the batch" in warning and "(e.g. id=1)" in warning
    assert "2024-01-02" in warning
    _drop(root, 3, "2,Rome,r@x.io,2024-01-07\n")  # a later batch dates the delete
    assert not run_ok(root)["cities"].warnings
    assert (1, "Oslo", d(5), d(7), False) in _silver(root)


SNAP = """
/* weir
materialized: snapshot
unique_key: [event_id]
snapshot: {strategy: timestamp, updated_at: updated_at, hard_deletes: close}
*/
SELECT event_id, grp, updated_at FROM silver.events
"""


def _snap(root: Path) -> list[tuple[Any, ...]]:
    columns = ["event_id", "grp", "valid_from", "valid_to", "is_current"]
    data = DeltaTable(str(gold(root, "snap"))).to_pyarrow_table(columns=columns)
    return sorted(tuple(r.values()) for r in data.to_pylist())


def test_gold_snapshot_key_back_after_a_hard_delete_keeps_its_later_changes(
    tmp_path: Path,
) -> None:
    root = events_project(tmp_path / "p", {"snap": SNAP})
    steps = [
        [(1, "Oslo", 1), (2, "Rome", 1)],
        [(2, "Rome", 2)],
        [(1, "Oslo", 3), (2, "Rome", 3)],
        [(1, "Bergen", 4), (2, "Rome", 4)],
    ]
    for rows in steps:
        push([(k, day(n), grp, 0, at(n)) for k, grp, n in rows])
        record = run_ok(root)["snap"]
        assert not record.warnings, record.warnings
    assert _snap(root) == [
        (1, "Bergen", at(4), None, True),
        (1, "Oslo", at(1), at(2), False),
        (1, "Oslo", at(3), at(4), False),
        (2, "Rome", at(1), at(2), False),
        (2, "Rome", at(2), at(3), False),
        (2, "Rome", at(3), at(4), False),
        (2, "Rome", at(4), None, True),
    ]


def test_gold_snapshot_with_a_null_change_time_fails_before_writing(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"snap": SNAP})
    push([(1, day(1), "a", 0, at(1))])
    run_ok(root)
    version = DeltaTable(str(gold(root, "snap"))).version()
    push([(1, day(1), "a", 0, None), (2, day(1), "b", 0, at(2))])  # type: ignore[list-item]
    record = run(root)["snap"]
    assert record.status == "failed"
    message = record.error_message or ""
    assert "1 rows have a NULL updated_at" in message and "snap.sql:4" in message
    assert DeltaTable(str(gold(root, "snap"))).version() == version


def test_a_new_source_column_leaves_closed_versions_null(tmp_path: Path) -> None:
    root = _cities(tmp_path / "p")
    _drop(root, 1, FILES[0])
    run_ok(root)
    (root / "data" / "e2.csv").write_text(
        "id,city,email,as_of,country\n1,Oslo,o@x.io,2024-01-02,NO\n2,Rome,r@x.io,2024-01-02,IT\n"
    )
    record = run_ok(root)["cities"]
    assert any("new column 'country'" in w for w in record.warnings)
    columns = ["id", "valid_from", "country", "is_current"]
    data = DeltaTable(str(root / "lake/silver/cities")).to_pyarrow_table(columns=columns)
    # a new column is tracked: each key opens a version that holds it, and the versions it
    # closes keep NULL there (they never had a country)
    assert sorted(tuple(r.values()) for r in data.to_pylist()) == [
        (1, d(1), None, False),
        (1, d(2), "NO", True),
        (2, d(1), None, False),
        (2, d(2), "IT", True),
    ]


def test_a_batch_without_a_dated_row_closes_nothing_and_says_why(tmp_path: Path) -> None:
    root = _cities(tmp_path / "p")
    _drop(root, 1, FILES[0])
    run_ok(root)
    _drop(root, 2, "2,Rome,r@x.io,\n")  # 2's row is quarantined; 1 is missing, but when?
    record = run(root)["cities"]
    assert record.status == "partial" and record.rows_quarantined == 1
    [warning] = record.warnings
    assert "1 keys are missing from the batch, which holds no rows to date their deletion," in (
        warning
    )
    assert "(e.g. id=1)" in warning
    assert _silver(root) == [(1, "Oslo", d(1), None, True), (2, "Rome", d(1), None, True)]
