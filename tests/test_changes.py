"""Change events applied to silver by key in log order (weir/lake/changes.py), end to end:
Debezium envelopes in files → bronze → silver, on real Delta tables and real DuckDB. Each
expectation is written by hand; the property test at the end replays random event streams
against a plain-Python reference."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from weir.cli import main
from weir.observe.record import RunRecord
from weir.run.pipeline import PipelineRun
from weir.spec import load_project
from weirtest.debezium import (
    CUSTOMERS,
    customers_project,
    delete,
    insert,
    silver,
    truncate,
    update,
    write_events,
)
from weirtest.projects import table_rows, version

UTC = dt.UTC


def _run(root: Path) -> RunRecord:
    project = load_project(root)
    record = PipelineRun(project, project.pipeline("customers")).execute()
    assert record.status in ("success", "partial"), record.error_message
    assert record.rows_extracted == record.rows_loaded + record.rows_quarantined
    return record


def _rows(root: Path) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in table_rows(root / "lake" / "silver" / "customers")}


def _at(lsn: int) -> dt.datetime:
    """The commit time weirtest.debezium gives position ``lsn``."""
    return dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=lsn)


def test_inserts_updates_and_soft_deletes(tmp_path: Path) -> None:
    root = customers_project(tmp_path / "p")
    write_events(
        root,
        "1.jsonl",
        [
            insert(10, 1, "ann", "5.00"),
            insert(11, 2, "bob"),
            insert(12, 3, "cy"),
            update(13, 1, "anna", "6.00"),
            delete(14, 2),
            update(15, 1, "annie", "7.00"),
        ],
    )
    record = _run(root)
    assert silver(root) == {
        1: ("annie", "7.00", False),
        2: ("bob", "1.00", True),  # the delete carried only the key: the last values stay
        3: ("cy", "1.00", False),
    }
    rows = _rows(root)
    assert rows[2]["deleted_at"] == _at(14) and rows[2]["_op"] == "delete"
    assert rows[1]["deleted_at"] is None and (rows[1]["_lsn"], rows[1]["_op"]) == (15, "update")
    assert rows[1]["_committed_at"] == _at(15) and rows[1]["_tx_id"] == 715
    metrics = record.load_metrics[0]
    assert (metrics["num_changes_applied"], metrics["num_changes_superseded"]) == (3, 3)
    assert record.rows_superseded == 3 and record.rows_loaded == 6

    # across batches: more events of the same keys
    write_events(root, "2.jsonl", [update(20, 3, "cyd"), delete(21, 1), update(22, 3, "cyda")])
    _run(root)
    assert silver(root) == {
        1: ("annie", "7.00", True),
        2: ("bob", "1.00", True),
        3: ("cyda", "1.00", False),
    }
    assert _rows(root)[1]["deleted_at"] == _at(21)


def test_hard_deletes_remove_rows(tmp_path: Path) -> None:
    root = customers_project(tmp_path / "p", action="hard")
    write_events(
        root,
        "1.jsonl",
        [insert(10, 1, "ann"), insert(11, 2, "bob"), delete(12, 2), insert(13, 3, "cy")],
    )
    _run(root)
    assert silver(root) == {1: ("ann", "1.00"), 3: ("cy", "1.00")}
    write_events(root, "2.jsonl", [delete(20, 1), update(21, 3, "cyd")])
    record = _run(root)
    assert silver(root) == {3: ("cyd", "1.00")}
    assert record.load_metrics[0]["num_hard_deletes_applied"] == 1
    assert "is_deleted" not in table_rows(root / "lake" / "silver" / "customers")[0]


@pytest.mark.parametrize("action", ["soft", "hard"])
def test_a_key_deleted_and_inserted_again_is_live(tmp_path: Path, action: str) -> None:
    root = customers_project(tmp_path / "p", action=action)
    write_events(root, "1.jsonl", [insert(10, 1, "ann"), delete(11, 1), insert(12, 1, "ann2")])
    write_events(root, "2.jsonl", [insert(13, 2, "bob"), delete(14, 2)])
    _run(root)
    soft = action == "soft"
    assert (
        silver(root) == {1: ("ann2", "1.00", False), 2: ("bob", "1.00", True)}
        if soft
        else {1: ("ann2", "1.00")}
    )
    write_events(root, "3.jsonl", [insert(20, 2, "bob again", "3.00")])
    _run(root)
    assert silver(root)[2] == (("bob again", "3.00", False) if soft else ("bob again", "3.00"))
    if soft:
        assert _rows(root)[2]["deleted_at"] is None


@pytest.mark.parametrize("action", ["soft", "hard"])
def test_truncate_deletes_what_is_below_it_then_later_events_apply(
    tmp_path: Path, action: str
) -> None:
    root = customers_project(tmp_path / "p", action=action)
    # key 9's event is later than the truncate of the next run (a file delivered early)
    write_events(root, "1.jsonl", [insert(10, 1, "ann"), insert(11, 2, "bob"), insert(40, 9, "z")])
    _run(root)
    write_events(
        root,
        "2.jsonl",
        [
            insert(20, 3, "cy"),
            update(21, 1, "anna"),
            truncate(30),
            insert(31, 2, "bob2"),
            insert(32, 4, "dee"),
        ],
    )
    record = _run(root)
    if action == "soft":
        assert silver(root) == {
            1: ("anna", "1.00", True),
            2: ("bob2", "1.00", False),
            3: ("cy", "1.00", True),
            4: ("dee", "1.00", False),
            9: ("z", "1.00", False),
        }
        rows = _rows(root)
        assert rows[1]["deleted_at"] == rows[3]["deleted_at"] == _at(30)
        assert rows[1]["_op"] == "truncate" and rows[1]["_lsn"] == 30
    else:
        assert silver(root) == {2: ("bob2", "1.00"), 4: ("dee", "1.00"), 9: ("z", "1.00")}
    assert record.load_metrics[0]["num_truncates"] == 1


def test_position_orders_events_across_files_and_runs(tmp_path: Path) -> None:
    root = customers_project(tmp_path / "p")
    # one run, files read in path order, but the later change is in the first file
    write_events(root, "a.jsonl", [update(30, 1, "late name", "9.00")])
    write_events(root, "b.jsonl", [insert(10, 1, "first"), insert(11, 2, "bob")])
    _run(root)
    assert silver(root) == {1: ("late name", "9.00", False), 2: ("bob", "1.00", False)}
    # a later run delivers older events: they are at or below their key's position
    write_events(root, "c.jsonl", [update(20, 1, "older"), delete(5, 2), update(12, 2, "bob2")])
    record = _run(root)
    assert silver(root) == {1: ("late name", "9.00", False), 2: ("bob2", "1.00", False)}
    assert record.load_metrics[0]["num_changes_stale"] == 2
    assert any("2 change events at or below" in w for w in record.warnings)


def test_events_delivered_again_are_not_applied_twice(tmp_path: Path) -> None:
    root = customers_project(tmp_path / "p")
    first = [insert(10, 1, "ann"), update(11, 1, "anna"), insert(12, 2, "bob"), delete(13, 2)]
    write_events(root, "1.jsonl", first)
    write_events(root, "2.jsonl", [insert(14, 2, "bob back"), update(15, 1, "annie")])
    _run(root)
    before = silver(root)
    rows_before = _rows(root)
    # the first file arrives again under another name (at-least-once delivery)
    shutil.copy(root / "data" / "1.jsonl", root / "data" / "1-again.jsonl")
    silver_path = root / "lake" / "silver" / "customers"
    at = version(silver_path)
    record = _run(root)
    assert record.rows_extracted == 4 and record.load_metrics[0]["num_changes_stale"] == 4
    assert silver(root) == before == {1: ("annie", "1.00", False), 2: ("bob back", "1.00", False)}
    assert {k: r["_lsn"] for k, r in _rows(root).items()} == {
        k: r["_lsn"] for k, r in rows_before.items()
    }
    assert version(silver_path) == at + 1  # one commit: the batch counts as applied


def test_a_delete_carrying_only_its_key_is_not_quarantined(tmp_path: Path) -> None:
    root = customers_project(tmp_path / "p")
    nameless = insert(12, 2, "x")
    del nameless["after"]["name"]
    keyless = delete(13, 0)
    keyless["before"] = {"id": None}
    write_events(
        root,
        "1.jsonl",
        [
            insert(10, 1, "ann"),
            delete(11, 1),  # name is required and the delete has none: not a problem
            nameless,  # an upserted image without it is
            keyless,  # a delete without its key cannot be applied
            insert(14, 3, "neg", "-1.00"),  # an upserted image breaking an error rule
            truncate(15),  # no key, no values: never held back
        ],
    )
    record = _run(root)
    quarantined = {
        r["_lsn"]: r["_reasons"] for r in table_rows(root / "lake" / "quarantine" / "customers")
    }
    assert quarantined == {
        12: ["name.required"],
        13: ["id.required"],
        14: ["balance.not_negative"],
    }
    assert silver(root) == {1: ("ann", "1.00", True)}
    assert record.rows_quarantined == 3 and record.rows_loaded == 3


def test_unique_judges_the_images_a_batch_upserts(tmp_path: Path) -> None:
    """Several events of one key are not duplicates; two keys ending with one name are."""
    contract = copy.deepcopy(CUSTOMERS)
    name = contract["schema"][0]["properties"][1]
    name["quality"] = [{"rule": "unique", "severity": "warn", "name": "name.unique"}]
    root = customers_project(tmp_path / "p", contract=contract)
    write_events(
        root,
        "1.jsonl",
        [
            insert(10, 1, "ann"),
            update(11, 1, "ann"),
            update(12, 1, "ann"),
            insert(13, 2, "bob"),
            insert(14, 3, "bob"),
            delete(15, 4),
        ],
    )
    record = _run(root)
    flags = {k: r["dq_flags"] for k, r in _rows(root).items()}
    assert flags == {1: [], 2: ["name.unique"], 3: ["name.unique"]}
    [unique] = [c for c in record.checks if c.name == "name.unique"]
    assert unique.failing_rows == 2


def test_unique_on_the_key_counts_each_key_once(tmp_path: Path) -> None:
    """A unique rule on the key reads only the keys that upsert (no image per key is
    needed): a key's several events are one row, and no key repeats."""
    contract = copy.deepcopy(CUSTOMERS)
    key = contract["schema"][0]["properties"][0]
    assert key["name"] == "id"
    key["quality"] = [{"rule": "unique", "severity": "warn", "name": "id.unique"}]
    root = customers_project(tmp_path / "p", contract=contract)
    events = [insert(10, 1, "ann"), update(11, 1, "ann"), insert(12, 2, "bob"), delete(13, 2)]
    write_events(root, "1.jsonl", [*events, insert(14, 3, "cy"), update(15, 3, "cy")])
    record = _run(root)
    assert {k: r["dq_flags"] for k, r in _rows(root).items()} == {1: [], 2: [], 3: []}
    [unique] = [c for c in record.checks if c.name == "id.unique"]
    assert unique.failing_rows == 0


def test_an_idle_rerun_writes_nothing(tmp_path: Path) -> None:
    root = customers_project(tmp_path / "p")
    write_events(root, "1.jsonl", [insert(10, 1, "ann"), delete(11, 1), truncate(12)])
    _run(root)
    versions = {p.name: version(p) for p in (root / "lake").glob("*/customers")}
    record = _run(root)
    assert not record.changed
    assert {p.name: version(p) for p in (root / "lake").glob("*/customers")} == versions


def test_a_full_refresh_rebuilds_the_same_silver(tmp_path: Path) -> None:
    root = customers_project(tmp_path / "p")
    write_events(root, "1.jsonl", [insert(10, 1, "ann"), insert(11, 2, "bob"), delete(12, 2)])
    _run(root)
    write_events(root, "2.jsonl", [truncate(20), insert(21, 1, "ann2"), update(5, 2, "old")])
    _run(root)
    before = silver(root)
    project = load_project(root)
    record = PipelineRun(project, project.pipeline("customers"), full_refresh=True).execute()
    assert record.status == "success", record.error_message
    assert silver(root) == before


def test_a_batch_changing_most_rows_rewrites_the_table_and_history_says_what_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """At least half the rows changed: one overwrite commit (no MERGE), whose metadata
    gives the real counts; fewer: a MERGE. Both leave the rows a replay would."""
    root = customers_project(tmp_path / "p", action="hard")
    write_events(root, "1.jsonl", [insert(10 + k, k, f"n{k}") for k in range(1, 5)])
    _run(root)
    write_events(root, "2.jsonl", [update(20, 1, "x"), delete(21, 2), insert(22, 5, "e")])
    _run(root)
    write_events(root, "3.jsonl", [update(30, 3, "y")])
    _run(root)
    assert {k: r["name"] for k, r in _rows(root).items()} == {1: "x", 3: "y", 4: "n4", 5: "e"}
    assert main(["history", "customers", "--project", str(root), "--json"]) == 0
    merge, rewrite = json.loads(capsys.readouterr().out)["versions"][:2]
    assert rewrite["operation"] == "WRITE" and merge["operation"] == "MERGE"
    assert (rewrite["rows_added"], rewrite["rows_updated"]) == (1, 1)
    assert (merge["rows_added"], merge["rows_updated"]) == (0, 1)
