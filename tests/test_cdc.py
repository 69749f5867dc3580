"""``strategy: cdc`` against a real PostgreSQL (logical decoding, pgoutput) and real Delta
tables: the initial snapshot, inserts/updates/deletes (soft and hard), truncate, a key deleted
and re-inserted, the slot advanced only after the bronze commit, idle re-runs, lag, drift,
the wal_level error and secrets."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from weir.errors import ConfigError, SourceError
from weir.run.pipeline import PipelineRun
from weir.spec import load_project
from weirtest.cdc import Shop
from weirtest.debezium import customers_project, event, silver
from weirtest.postgres import PASSWORD, Cluster
from weirtest.projects import table_rows


@pytest.fixture
def shop(postgres: Cluster, pg_database: str, tmp_path: Path) -> Iterator[Shop]:
    shop = Shop(postgres, pg_database, tmp_path / "p")
    yield shop
    shop.drop_slots()


def _live(shop: Shop) -> dict[int, tuple[Any, ...]]:
    """Silver's live rows (not soft-deleted), shaped like :meth:`Shop.rows`."""
    return {k: v[:2] for k, v in shop.silver().items() if len(v) < 3 or not v[2]}


def test_snapshot_then_changes_soft_deletes(shop: Shop) -> None:
    shop.sql(
        "INSERT INTO customers VALUES (1, 'ann', 5.00, '2024-01-01 10:00', '1990-02-03'), "
        "(2, 'bob', NULL, NULL, NULL), (3, 'cy', 1.50, NULL, NULL), (4, 'di', 2, NULL, NULL)"
    )
    shop.project()
    first = shop.run()
    assert first.rows_extracted == 4
    assert shop.silver() == {
        1: ("ann", "5.00", False),
        2: ("bob", None, False),
        3: ("cy", "1.50", False),
        4: ("di", "2.00", False),
    }
    bronze = table_rows(shop.root / "lake/bronze/customers", sort=["id"])
    assert {r["_op"] for r in bronze} == {"snapshot"}
    snapshot_lsn = bronze[0]["_lsn"]
    assert shop.confirmed() == snapshot_lsn  # the slot starts where the snapshot is
    row = table_rows(shop.root / "lake/silver/customers", sort=["id"])[0]
    assert row["born"] == dt.date(1990, 2, 3) and row["updated_at"] == dt.datetime(2024, 1, 1, 10)

    shop.sql(
        "INSERT INTO customers VALUES (5, 'ed', 7, NULL, NULL)",
        "UPDATE customers SET name = 'anna', balance = 6 WHERE id = 1",
        "DELETE FROM customers WHERE id = 2",
        "BEGIN; UPDATE customers SET name = 'x' WHERE id = 3; "
        "UPDATE customers SET name = 'cyd' WHERE id = 3; COMMIT",
    )
    second = shop.run()
    assert second.rows_extracted == 5
    assert shop.silver() == {
        1: ("anna", "6.00", False),
        2: ("bob", None, True),
        3: ("cyd", "1.50", False),
        4: ("di", "2.00", False),
        5: ("ed", "7.00", False),
    }
    events = [r for r in table_rows(shop.root / "lake/bronze/customers") if r["_op"] != "snapshot"]
    assert sorted(r["_op"] for r in events) == ["delete", "insert", "update", "update", "update"]
    assert all(r["_lsn"] > snapshot_lsn and r["_tx_id"] and r["_committed_at"] for r in events)
    two = sorted((r["_seq"], r["name"]) for r in events if r["id"] == 3)
    assert two == [(0, "x"), (1, "cyd")]  # one transaction: same _lsn, ordered by _seq
    assert shop.confirmed() == max(r["_lsn"] for r in events)  # advanced after the commit
    assert _live(shop) == shop.rows()


def test_idle_rerun_makes_no_version_and_keeps_the_slot(shop: Shop) -> None:
    shop.sql("INSERT INTO customers VALUES (1, 'ann', 5, NULL, NULL)")
    shop.project()
    shop.run()
    shop.sql("UPDATE customers SET name = 'anna' WHERE id = 1")
    shop.run()
    before, slot = shop.versions(), shop.confirmed()
    idle = shop.run()
    assert (idle.rows_extracted, idle.changed) == (0, False)
    assert shop.versions() == before and shop.confirmed() == slot
    lag = [m for m in idle.load_metrics if m.get("source") == "sql"]
    assert lag and lag[0]["replication_lag_bytes"] >= 0


def test_a_quiet_table_on_a_busy_server_commits_its_position_alone(shop: Shop) -> None:
    """Other tables' writes hold back the slot's WAL while ours is quiet (the publication
    sends nothing): past ``heartbeat_bytes`` the position moves alone, and the slot too."""
    shop.sql("INSERT INTO customers VALUES (1, 'ann', 5, NULL, NULL)")
    busy = "INSERT INTO elsewhere SELECT i, repeat('x', 200) FROM generate_series(1, 2000) i"
    shop.sql("CREATE TABLE elsewhere (id int, pad text)")
    shop.project(heartbeat_bytes=0)  # off: the slot stays where bronze is
    shop.run()
    shop.sql(busy)
    before, slot = shop.versions(), shop.confirmed()
    off = shop.run()
    assert (off.rows_extracted, off.changed) == (0, False)
    assert shop.versions() == before and shop.confirmed() == slot

    shop.project(heartbeat_bytes=100_000)  # the 2,000 rows wrote about 500 kB of WAL
    kept = shop.run()
    assert (kept.rows_extracted, kept.rows_loaded, kept.changed) == (0, 0, True)
    after = shop.versions()
    assert after["bronze"] == before["bronze"] + 1 and after["silver"] == before["silver"] + 1
    assert shop.confirmed() > slot  # advanced past the other table's WAL
    assert kept.watermark_after != kept.watermark_before
    committed = json.loads(_last_commit(shop, "bronze")["weir.position"])
    assert committed["lsn"] == shop.confirmed()
    assert len(table_rows(shop.root / "lake/bronze/customers")) == 1  # no row was added
    lag = next(m for m in kept.load_metrics if m.get("source") == "sql")
    assert lag["replication_lag_bytes"] < 100_000

    quiet = shop.run()  # no WAL since: nothing to keep
    assert (quiet.rows_extracted, quiet.changed) == (0, False) and shop.versions() == after
    shop.sql("UPDATE customers SET name = 'anna' WHERE id = 1", busy)
    changed = shop.run()
    assert changed.rows_extracted == 1 and _live(shop) == shop.rows()
    assert shop.run().rows_extracted == 0  # the position-only batch is not replayed ...
    project = load_project(shop.root, environ=shop.env())
    rebuilt = PipelineRun(project, project.pipeline("customers"), full_refresh=True).execute()
    assert rebuilt.status == "success", rebuilt.error_message
    assert _live(shop) == shop.rows()  # ... nor rebuilt from


def _last_commit(shop: Shop, layer: str) -> dict[str, Any]:
    from deltalake import DeltaTable

    return DeltaTable(str(shop.root / "lake" / layer / "customers")).history(1)[0]


def test_hard_deletes_truncate_and_a_key_deleted_then_reinserted(shop: Shop) -> None:
    shop.sql("INSERT INTO customers VALUES (1, 'ann', 5, NULL, NULL), (2, 'bob', 1, NULL, NULL)")
    shop.project(action="hard")
    shop.run()
    shop.sql(
        "DELETE FROM customers WHERE id = 1",
        "INSERT INTO customers VALUES (1, 'ann again', 3, NULL, NULL)",
        "DELETE FROM customers WHERE id = 2",
    )
    shop.run()
    assert shop.silver() == {1: ("ann again", "3.00")}
    shop.sql(
        "TRUNCATE customers",
        "INSERT INTO customers VALUES (7, 'gus', 1, NULL, NULL)",
    )
    shop.run()
    assert shop.silver() == {7: ("gus", "1.00")}
    assert shop.silver() == {k: v for k, v in shop.rows().items()}


def test_an_update_of_the_key_deletes_the_old_key(shop: Shop) -> None:
    shop.sql("INSERT INTO customers VALUES (1, 'ann', 5, NULL, NULL)")
    shop.project(action="hard")
    shop.run()
    shop.sql("UPDATE customers SET id = 9 WHERE id = 1")
    shop.run()
    assert shop.silver() == {9: ("ann", "5.00")}


def test_slot_advanced_by_someone_else_fails_loudly(shop: Shop) -> None:
    shop.sql("INSERT INTO customers VALUES (1, 'ann', 5, NULL, NULL)")
    shop.project()
    shop.run()
    shop.sql("UPDATE customers SET name = 'lost' WHERE id = 1")
    shop.sql(f"SELECT pg_replication_slot_advance('{shop.slot}', pg_current_wal_lsn())")
    failed = shop.run(ok=False)
    assert failed.status == "failed"
    assert "are lost" in (failed.error_message or "")
    assert "pg_drop_replication_slot" in (failed.error_message or "")


def test_wal_level_not_logical_says_how_to_fix(shop: Shop) -> None:
    from weir.sources.sql.cdc_slot import Slot
    from weir.sources.sql.config import parse_url

    slot = Slot(parse_url(shop.cluster.url(shop.database)), "here", "s", "p", "public.customers")
    slot._one = lambda sql, params=(): ("replica",)  # type: ignore[method-assign]
    with pytest.raises(SourceError) as caught:
        slot.check_wal_level()
    text = f"{caught.value.message} {caught.value.hint}"
    assert "wal_level is 'replica'" in text and "wal_level = logical" in text
    assert "restart" in text


def test_unchanged_toasted_values_are_a_parse_problem_unless_replica_identity_full(
    shop: Shop,
) -> None:
    big = "x" * 20000  # compressed and stored out of line: TOASTed
    shop.sql(
        "ALTER TABLE customers ALTER COLUMN name SET STORAGE EXTERNAL",
        f"INSERT INTO customers VALUES (1, '{big}', 5, NULL, NULL)",
    )
    shop.project(pipeline={"on_parse_error": "quarantine"})
    shop.run()
    shop.sql("UPDATE customers SET balance = 6 WHERE id = 1")
    record = shop.run()
    assert record.rows_quarantined == 1
    reasons = [r["_reasons"] for r in table_rows(shop.root / "lake/quarantine/customers")]
    assert any("TOASTed" in str(r) and "REPLICA IDENTITY FULL" in str(r) for r in reasons)
    shop.sql("ALTER TABLE customers REPLICA IDENTITY FULL", "UPDATE customers SET balance = 7")
    shop.run()
    assert shop.silver()[1][1:] == ("7.00", False)
    assert shop.silver()[1][0] == big


def test_a_dropped_contract_column_fails_before_any_write(shop: Shop) -> None:
    shop.sql("INSERT INTO customers VALUES (1, 'ann', 5, NULL, NULL)")
    shop.project()
    shop.run()
    before = shop.versions()
    shop.sql("ALTER TABLE customers DROP COLUMN born", "UPDATE customers SET name = 'b'")
    failed = shop.run(ok=False)
    assert failed.status == "failed" and "born" in (failed.error_message or "")
    assert shop.versions() == before


def test_an_added_column_evolves(shop: Shop) -> None:
    shop.sql("INSERT INTO customers VALUES (1, 'ann', 5, NULL, NULL)")
    shop.project()
    shop.run()
    shop.sql(
        "ALTER TABLE customers ADD COLUMN tier text",
        "INSERT INTO customers VALUES (2, 'bob', 1, NULL, NULL, 'gold')",
    )
    record = shop.run()
    assert any("tier" in note for note in record.schema_changes)
    tiers = {r["id"]: r["tier"] for r in table_rows(shop.root / "lake/silver/customers")}
    assert tiers == {1: None, 2: "gold"}


def test_secrets_never_reach_records_or_messages(shop: Shop) -> None:
    shop.sql("INSERT INTO customers VALUES (1, 'ann', 5, NULL, NULL)")
    shop.project()
    ok = shop.run()
    shop.sql(f"SELECT pg_replication_slot_advance('{shop.slot}', pg_current_wal_lsn())")
    shop.sql("UPDATE customers SET name = 'b'")
    failed = shop.run(ok=False)
    for record in (ok, failed):
        assert PASSWORD not in str(record.as_dict())
    bronze = shop.root / "lake/bronze/customers/_delta_log"
    assert all(PASSWORD not in p.read_text() for p in bronze.glob("*.json"))


@pytest.mark.parametrize(
    ("extract", "message"),
    [
        ({"url": "sqlite:///shop.db"}, "SQLite"),
        ({"table": None, "query": "SELECT 1"}, "needs table"),
        ({"deletes": {"detect": "keys"}}, "detect: log"),
        ({"slot": "Bad-Name"}, "slot"),
    ],
)
def test_cdc_config_errors(shop: Shop, extract: dict[str, Any], message: str) -> None:
    shop.project(**extract)
    with pytest.raises(ConfigError) as caught:
        load_project(shop.root, environ={"SHOP_DB_PASSWORD": PASSWORD})
    assert message in str(caught.value)


def test_decimal_values_stay_exact(shop: Shop) -> None:
    shop.sql("INSERT INTO customers VALUES (1, 'ann', 12345678.91, NULL, NULL)")
    shop.project()
    shop.run()
    shop.sql("UPDATE customers SET balance = 0.01 WHERE id = 1")
    shop.run()
    [row] = table_rows(shop.root / "lake/silver/customers")
    assert row["balance"] == decimal.Decimal("0.01")


def test_debezium_files_of_the_same_changes_give_the_same_silver(
    shop: Shop, tmp_path: Path
) -> None:
    """The changes CDC read, written as Debezium envelopes (what Debezium's PostgreSQL
    connector would emit for them) and loaded by the files source: the same silver."""
    shop.sql("INSERT INTO customers VALUES (1, 'ann', 5, NULL, NULL), (2, 'bob', 1, NULL, NULL)")
    shop.project()
    shop.run()
    shop.sql(
        "UPDATE customers SET name = 'anna', balance = 6 WHERE id = 1",
        "DELETE FROM customers WHERE id = 2",
        "INSERT INTO customers VALUES (3, 'cy', 2, NULL, NULL)",
        "BEGIN; DELETE FROM customers WHERE id = 3; "
        "INSERT INTO customers VALUES (3, 'cy again', 4, NULL, NULL); COMMIT",
    )
    shop.run()
    bronze = table_rows(shop.root / "lake/bronze/customers", sort=["_lsn", "_seq"])
    lines = []
    for row in bronze:
        values = {
            "name": row["name"],
            "balance": None if row["balance"] is None else str(row["balance"]),
        }
        envelope = event(row["_op"], row["_lsn"], row["id"], **values)
        envelope["transaction"] = {"id": str(row["_tx_id"]), "total_order": row["_seq"]}
        lines.append(json.dumps(envelope))
    files = customers_project(tmp_path / "dbz")
    (files / "data").mkdir()
    (files / "data/1.jsonl").write_text("\n".join(lines) + "\n")
    project = load_project(files)
    record = PipelineRun(project, project.pipeline("customers")).execute()
    assert record.status == "success", record.error_message
    assert silver(files) == shop.silver()
    assert _live(shop) == shop.rows()
