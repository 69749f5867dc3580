"""``strategy: scd2`` over change events (lake/changes_scd2.py): every applied change of a key
is a version dated by its commit time, deletes and truncates close, an unchanged change opens
nothing, and events silver already holds never apply twice. Debezium files here (real DuckDB
and Delta tables); one test reads a real PostgreSQL by ``strategy: cdc``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from weir.errors import ConfigError
from weir.observe.record import RunRecord
from weir.run.pipeline import PipelineRun
from weir.spec import load_project
from weir.transform.lineage import silver_schema
from weirtest import debezium as dbz
from weirtest.cdc import Shop
from weirtest.debezium import committed as at
from weirtest.postgres import Cluster
from weirtest.projects import lake_content, table_rows

SCD2: dict[str, Any] = {"load": {"strategy": "scd2"}}


def _project(root: Path, action: str = "soft", **scd2: Any) -> Path:
    load = {"strategy": "scd2", **({"scd2": scd2} if scd2 else {})}
    return dbz.customers_project(root, action=action, load=load)


def _run(root: Path) -> RunRecord:
    project = load_project(root)
    record = PipelineRun(project, project.pipeline("customers")).execute()
    assert record.status == "success", record.error_message
    assert record.rows_extracted == record.rows_loaded + record.rows_quarantined
    return record


def _metrics(record: RunRecord) -> dict[str, Any]:
    [metrics] = [m for m in record.load_metrics if "batch" in m]
    return metrics


def _silver_version(root: Path) -> int:
    return DeltaTable(str(root / "lake/silver/customers")).version()


def test_each_change_of_a_key_in_one_batch_is_a_version(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    dbz.write_events(
        root,
        "1.jsonl",
        [dbz.insert(1, 1, "ann"), dbz.update(2, 1, "anna"), dbz.update(3, 1, "anne")],
    )
    record = _run(root)
    assert dbz.versions(root, "_op", "_lsn") == [
        (1, "ann", at(1), at(2), False, "insert", 1),
        (1, "anna", at(2), at(3), False, "update", 2),
        (1, "anne", at(3), None, True, "update", 3),
    ]
    metrics = _metrics(record)
    assert (metrics["num_versions_opened"], metrics["num_versions_closed"]) == (3, 2)
    # the table has the shape lineage reports for it
    project = load_project(root)
    expected = [c.name for c in silver_schema(project.pipeline("customers"))]
    assert DeltaTable(str(root / "lake/silver/customers")).schema().to_arrow().names == expected
    keys = {r["surrogate_key"] for r in table_rows(root / "lake/silver/customers")}
    assert len(keys) == 3


def test_versions_continue_across_batches_and_one_transaction_makes_versions_of_no_length(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path / "p")
    dbz.write_events(root, "1.jsonl", [dbz.insert(1, 1, "ann"), dbz.insert(2, 2, "bob")])
    _run(root)
    same_tx = [dbz.update(5, 1, "x"), dbz.update(5, 1, "anna")]
    for seq, envelope in enumerate(same_tx, start=1):
        envelope["transaction"] = {"id": "705", "total_order": seq}
    dbz.write_events(root, "2.jsonl", [*same_tx, dbz.update(6, 2, "bobby")])
    _run(root)
    assert dbz.versions(root) == [
        (1, "ann", at(1), at(5), False),
        (1, "x", at(5), at(5), False),
        (1, "anna", at(5), None, True),
        (2, "bob", at(2), at(6), False),
        (2, "bobby", at(6), None, True),
    ]


@pytest.mark.parametrize("action", ["soft", "hard"])
def test_a_delete_closes_and_a_later_insert_opens_a_new_current_version(
    tmp_path: Path, action: str
) -> None:
    root = _project(tmp_path / "p", action)
    dbz.write_events(root, "1.jsonl", [dbz.insert(1, 1, "ann"), dbz.insert(2, 2, "bob")])
    _run(root)
    dbz.write_events(root, "2.jsonl", [dbz.delete(3, 1), dbz.delete(4, 9)])  # 9: never held
    record = _run(root)
    assert _metrics(record)["num_deletes"] == 1
    dbz.write_events(root, "3.jsonl", [dbz.insert(7, 1, "ann again")])
    _run(root)
    if action == "soft":
        deleted_at = dt.datetime.combine(at(3).date(), at(3).time(), dt.UTC)
        assert dbz.versions(root, "_op", "is_deleted", "deleted_at") == [
            (1, "ann", at(1), at(3), False, "delete", True, deleted_at),
            (1, "ann again", at(7), None, True, "insert", False, None),
            (2, "bob", at(2), None, True, "insert", False, None),
        ]
    else:
        assert "is_deleted" not in table_rows(root / "lake/silver/customers")[0]
        assert dbz.versions(root, "_op") == [
            (1, "ann", at(1), at(3), False, "delete"),
            (1, "ann again", at(7), None, True, "insert"),
            (2, "bob", at(2), None, True, "insert"),
        ]


def test_a_truncate_closes_every_current_version_at_its_position(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    dbz.write_events(root, "1.jsonl", [dbz.insert(1, 1, "ann"), dbz.insert(2, 2, "bob")])
    _run(root)
    dbz.write_events(
        root,
        "2.jsonl",
        [dbz.insert(3, 3, "cy"), dbz.truncate(4), dbz.insert(5, 2, "bob2")],
    )
    record = _run(root)
    assert dbz.versions(root, "_op", "is_deleted") == [
        (1, "ann", at(1), at(4), False, "truncate", True),
        (2, "bob", at(2), at(4), False, "truncate", True),
        (2, "bob2", at(5), None, True, "insert", False),
        (3, "cy", at(3), at(4), False, "truncate", True),
    ]
    metrics = _metrics(record)
    assert (metrics["num_truncates"], metrics["num_versions_truncated"]) == (1, 3)


def test_a_change_of_no_tracked_column_opens_nothing(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", tracked=["name"])
    dbz.write_events(root, "1.jsonl", [dbz.insert(1, 1, "ann", "1.00")])
    _run(root)
    dbz.write_events(root, "2.jsonl", [dbz.update(2, 1, "ann", "9.00")])
    record = _run(root)
    assert _metrics(record)["num_versions_unchanged"] == 1
    assert record.rows_loaded == 1
    # the version keeps its image and takes the change's position
    assert dbz.versions(root, "balance", "_lsn") == [
        (1, "ann", at(1), None, True, 1, 2),
    ]
    dbz.write_events(root, "3.jsonl", [dbz.update(1, 1, "stale")])  # below the position
    assert _metrics(_run(root))["num_changes_stale"] == 1


def test_a_re_snapshot_opens_no_version(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    snap = [dbz.event("snapshot", 1, 1, name="ann"), dbz.event("snapshot", 1, 2, name="bob")]
    dbz.write_events(root, "1.jsonl", snap)
    _run(root)
    again = [dbz.event("snapshot", 8, 1, name="ann"), dbz.event("snapshot", 8, 2, name="bo")]
    dbz.write_events(root, "2.jsonl", again)
    record = _run(root)
    assert _metrics(record)["num_versions_opened"] == 1
    assert dbz.versions(root) == [
        (1, "ann", at(1), None, True),
        (2, "bob", at(1), at(8), False),
        (2, "bo", at(8), None, True),
    ]


def test_versions_dated_by_a_column(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", valid_from="updated_at")
    day = dt.datetime(2024, 3, 1)
    dbz.write_events(
        root,
        "1.jsonl",
        [
            dbz.insert(1, 1, "ann", updated_at=day.isoformat()),
            dbz.update(2, 1, "anna", updated_at=(day + dt.timedelta(days=2)).isoformat()),
            dbz.delete(3, 1),  # no row to date it: its commit time, never before the version
        ],
    )
    _run(root)
    assert dbz.versions(root) == [
        (1, "ann", day, day + dt.timedelta(days=2), False),
        (1, "anna", day + dt.timedelta(days=2), day + dt.timedelta(days=2), False),
    ]


def test_re_delivered_events_apply_nothing(tmp_path: Path) -> None:
    """The same file again, and a file overlapping it: nothing applies twice; the batch's
    commit adds no data file; a re-run with nothing new makes no version at all."""
    root = _project(tmp_path / "p")
    events = [dbz.insert(1, 1, "ann"), dbz.update(2, 1, "anna"), dbz.delete(3, 1)]
    dbz.write_events(root, "1.jsonl", events)
    _run(root)
    content = lake_content(root, "customers")["silver"]
    files = sorted(DeltaTable(str(root / "lake/silver/customers")).file_uris())
    dbz.write_events(root, "2.jsonl", events)
    record = _run(root)
    assert _metrics(record)["num_changes_stale"] == 3
    assert any("3 change events at or below" in w for w in record.warnings)
    assert lake_content(root, "customers")["silver"] == content
    assert sorted(DeltaTable(str(root / "lake/silver/customers")).file_uris()) == files
    dbz.write_events(root, "3.jsonl", [events[2], dbz.insert(4, 1, "ann again")])
    _run(root)
    assert dbz.versions(root) == [
        (1, "ann", at(1), at(2), False),
        (1, "anna", at(2), at(3), False),
        (1, "ann again", at(4), None, True),
    ]
    before = _silver_version(root)
    idle = _run(root)
    assert not idle.changed and _silver_version(root) == before


def test_a_rebuild_from_bronze_gives_the_same_history(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    dbz.write_events(root, "1.jsonl", [dbz.insert(1, 1, "ann"), dbz.insert(2, 2, "bob")])
    _run(root)
    dbz.write_events(root, "2.jsonl", [dbz.update(3, 1, "anna"), dbz.truncate(4)])
    _run(root)
    history = dbz.versions(root, "_lsn", "is_deleted")
    project = load_project(root)
    rebuilt = PipelineRun(project, project.pipeline("customers"), full_refresh=True).execute()
    assert rebuilt.status == "success", rebuilt.error_message
    assert dbz.versions(root, "_lsn", "is_deleted") == history


@pytest.mark.parametrize(
    ("load", "message", "at_key"),
    [
        ({"strategy": "append"}, "not 'append'", "strategy:"),
        ({"strategy": "scd2", "scd2": {"hard_deletes": "close"}}, "hard_deletes", "hard_deletes:"),
    ],
)
def test_what_scd2_over_change_events_refuses(
    tmp_path: Path, load: dict[str, Any], message: str, at_key: str
) -> None:
    root = dbz.customers_project(tmp_path / "p", load=load)
    with pytest.raises(ConfigError) as caught:
        load_project(root)
    assert message in caught.value.message and caught.value.hint
    path, _, line = str(caught.value.where).rpartition(":")
    assert path == str(root / "pipelines/customers.yml")
    text = Path(path).read_text().splitlines()
    assert at_key in text[int(line) - 1]


def test_postgres_changes_arrive_as_history(
    postgres: Cluster, pg_database: str, tmp_path: Path
) -> None:
    """A writer's changes on a real PostgreSQL, read by ``strategy: cdc``: the snapshot, then
    versions dated by each transaction's commit time (read back from the database)."""
    shop = Shop(postgres, pg_database, tmp_path / "p")
    try:
        shop.sql(
            "INSERT INTO customers VALUES (1, 'ann', 5, NULL, NULL), (2, 'bob', 1, NULL, NULL)"
        )
        shop.project(action="soft", pipeline=SCD2)
        shop.run()
        shop.sql(
            "CREATE TABLE commits (n serial, id bigint, at timestamptz)",
            "BEGIN; UPDATE customers SET name = 'anna' WHERE id = 1; "
            "INSERT INTO commits (id, at) VALUES (1, now()); COMMIT",
            "BEGIN; DELETE FROM customers WHERE id = 2; "
            "INSERT INTO commits (id, at) VALUES (2, now()); COMMIT",
            "BEGIN; UPDATE customers SET balance = 6 WHERE id = 1; "
            "UPDATE customers SET name = 'anne' WHERE id = 1; "
            "INSERT INTO commits (id, at) VALUES (1, now()); COMMIT",
        )
        record = shop.run()
        with shop.cluster.connect(shop.database) as con:
            times = [r[0] for r in con.execute("SELECT at FROM commits ORDER BY n").fetchall()]
        # now() is the transaction's start; the commit follows within the transaction
        rows = table_rows(shop.root / "lake/silver/customers")
        got = sorted(
            (r["id"], r["name"], str(r["balance"]), r["is_current"], bool(r["is_deleted"]))
            for r in rows
        )
        assert got == sorted(
            [
                (1, "ann", "5.00", False, False),
                (1, "anna", "5.00", False, False),
                (1, "anna", "6.00", False, False),
                (1, "anne", "6.00", True, False),
                (2, "bob", "1.00", False, True),
            ]
        )
        by = {(r["id"], r["name"], str(r["balance"])): r for r in rows}
        snapshot_at = by[(1, "ann", "5.00")]["valid_from"]
        assert by[(2, "bob", "1.00")]["valid_from"] == snapshot_at  # no commit time: ingestion
        # each change is dated by its transaction's commit, which follows now() (its start)
        dated = [
            by[(1, "anna", "5.00")]["valid_from"],
            by[(2, "bob", "1.00")]["valid_to"],
            by[(1, "anna", "6.00")]["valid_from"],
        ]
        for start, began in zip(dated, times, strict=True):
            began_utc = began.astimezone(dt.UTC).replace(tzinfo=None)
            assert began_utc <= start < began_utc + dt.timedelta(seconds=5)
        # one transaction's two changes of key 1: a version of no length, then the next
        assert by[(1, "anna", "6.00")]["valid_to"] == by[(1, "anne", "6.00")]["valid_from"]
        assert by[(1, "anna", "6.00")]["valid_to"] == by[(1, "anna", "6.00")]["valid_from"]
        assert by[(1, "ann", "5.00")]["valid_to"] == by[(1, "anna", "5.00")]["valid_from"]
        metrics = _metrics(record)
        assert (metrics["num_versions_opened"], metrics["num_deletes"]) == (3, 1)
        live = {r["id"]: (r["name"], str(r["balance"])) for r in rows if r["is_current"]}
        assert live == shop.rows()
        idle = shop.versions()
        shop.run()
        assert shop.versions() == idle
    finally:
        shop.drop_slots()


def test_a_silver_table_of_another_strategy_asks_for_a_rebuild(tmp_path: Path) -> None:
    root = dbz.customers_project(tmp_path / "p")  # merge
    dbz.write_events(root, "1.jsonl", [dbz.insert(1, 1, "ann")])
    _run(root)
    _project(root)  # now scd2
    dbz.write_events(root, "2.jsonl", [dbz.update(2, 1, "anna")])
    project = load_project(root)
    failed = PipelineRun(project, project.pipeline("customers")).execute()
    assert failed.status == "failed"
    assert "holds no SCD2 history" in (failed.error_message or "")
    rebuilt = PipelineRun(project, project.pipeline("customers"), full_refresh=True).execute()
    assert rebuilt.status == "success", rebuilt.error_message
    assert dbz.versions(root) == [(1, "ann", at(1), at(2), False), (1, "anna", at(2), None, True)]
