"""``strategy: cdc`` under crashes and concurrent writers, on a real PostgreSQL: SIGKILL of the
real ``weir run`` process inside the change read, at the commit boundaries and between the
bronze commit and the slot advance; a writer thread inserting, updating and deleting while
the snapshot and the change reads happen. Afterwards silver equals the source table row by
row, and no change event is in bronze twice."""

from __future__ import annotations

import itertools
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from weirtest.cdc import Shop
from weirtest.postgres import Cluster
from weirtest.projects import table_rows, weir_run

pytestmark = pytest.mark.slow  # subprocesses and a writer thread

POINTS = [
    "cdc.read",
    "bronze.before_commit",
    "bronze.after_commit",
    "silver.before_commit",
    "silver.after_commit",
    "source.before_committed",
]


@pytest.fixture
def shop(postgres: Cluster, pg_database: str, tmp_path: Path) -> Iterator[Shop]:
    shop = Shop(postgres, pg_database, tmp_path / "p")
    yield shop
    shop.drop_slots()


def _bronze_events(shop: Shop) -> Counter[tuple[Any, ...]]:
    rows = table_rows(shop.root / "lake/bronze/customers")
    return Counter((r["_op"], r["_lsn"], r["_seq"], r["id"]) for r in rows)


def _ok(shop: Shop, fault: str | None = None) -> None:
    done = weir_run(shop.root, fault, **shop.env())
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("point", POINTS)
def test_kill_then_rerun_gives_the_table_and_no_change_twice(shop: Shop, point: str) -> None:
    shop.sql("INSERT INTO customers SELECT i, 'c' || i, i, NULL, NULL FROM generate_series(1, 5) i")
    shop.project(action="hard")
    _ok(shop)
    shop.sql(
        "UPDATE customers SET balance = balance + 1 WHERE id <= 3",
        "DELETE FROM customers WHERE id = 4",
        "INSERT INTO customers VALUES (6, 'new', 1, NULL, NULL)",
        "UPDATE customers SET balance = balance + 10 WHERE id = 1",
        "DELETE FROM customers WHERE id = 6",
        "INSERT INTO customers VALUES (6, 'again', 2, NULL, NULL)",
    )
    killed = weir_run(shop.root, point, **shop.env())
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    _ok(shop)
    assert shop.silver() == shop.rows()
    events = _bronze_events(shop)
    assert max(events.values()) == 1, [e for e, n in events.items() if n > 1]
    assert sum(1 for e in events if e[0] != "snapshot") == 8
    # the slot now stands at the committed position, and an idle run changes nothing
    versions = shop.versions()
    _ok(shop)
    assert shop.versions() == versions
    shop.sql("UPDATE customers SET name = 'later' WHERE id = 2")
    _ok(shop)
    assert shop.silver() == shop.rows()


@pytest.mark.parametrize("point", ["pipeline.position_only", "source.before_committed"])
def test_kill_while_committing_the_position_alone(shop: Shop, point: str) -> None:
    """The position-only batch of a quiet table (``heartbeat_bytes``), killed between its
    bronze and silver marks or before the slot advance: the re-run finishes it, no change
    is lost or applied twice, and the slot moves."""
    shop.sql("INSERT INTO customers SELECT i, 'c' || i, i, NULL, NULL FROM generate_series(1, 3) i")
    shop.sql("CREATE TABLE elsewhere (id int, pad text)")
    shop.project(action="hard", heartbeat_bytes=100_000)
    _ok(shop)
    slot = shop.confirmed()
    shop.sql("INSERT INTO elsewhere SELECT i, repeat('x', 200) FROM generate_series(1, 2000) i")
    killed = weir_run(shop.root, point, **shop.env())
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    _ok(shop)
    assert shop.confirmed() > slot
    versions = shop.versions()
    _ok(shop)
    assert shop.versions() == versions  # finished: nothing more to commit
    shop.sql(
        "UPDATE customers SET name = 'later' WHERE id = 2", "DELETE FROM customers WHERE id = 3"
    )
    _ok(shop)
    assert shop.silver() == shop.rows()
    events = _bronze_events(shop)
    assert max(events.values()) == 1 and sum(1 for e in events if e[0] != "snapshot") == 2


@pytest.mark.parametrize("point", POINTS)
def test_kill_then_rerun_gives_the_scd2_history_once(shop: Shop, point: str) -> None:
    """``strategy: scd2`` over the same changes (lake/changes_scd2.py): after the kill and
    the re-run, each key holds the versions its changes make — no version twice, none
    lost — chained end to start, and the current ones equal the source table."""
    shop.sql("INSERT INTO customers SELECT i, 'c' || i, i, NULL, NULL FROM generate_series(1, 5) i")
    shop.project(action="soft", pipeline={"load": {"strategy": "scd2"}})
    _ok(shop)
    shop.sql(
        "UPDATE customers SET balance = balance + 1 WHERE id <= 3",
        "DELETE FROM customers WHERE id = 4",
        "INSERT INTO customers VALUES (6, 'new', 1, NULL, NULL)",
        "UPDATE customers SET balance = balance + 10 WHERE id = 1",
        "DELETE FROM customers WHERE id = 6",
        "INSERT INTO customers VALUES (6, 'again', 2, NULL, NULL)",
    )
    killed = weir_run(shop.root, point, **shop.env())
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    _ok(shop)
    rows = table_rows(shop.root / "lake/silver/customers")
    by_key: dict[int, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (r["valid_from"], r["_lsn"], r["_seq"])):
        by_key.setdefault(row["id"], []).append(row)
    # the snapshot's version, then one per change: 1 changed twice, 2 and 3 once, 4 was
    # deleted, 6 inserted, deleted and inserted again
    assert {k: len(v) for k, v in by_key.items()} == {1: 3, 2: 2, 3: 2, 4: 1, 5: 1, 6: 2}
    for chain in by_key.values():
        for before, after in itertools.pairwise(chain):
            assert before["valid_to"] is not None and before["valid_to"] <= after["valid_from"]
    assert [r["is_deleted"] for r in by_key[4]] == [True] and by_key[6][0]["is_deleted"]
    current = {r["id"]: (r["name"], str(r["balance"])) for r in rows if r["is_current"]}
    assert current == shop.rows()
    versions = shop.versions()
    _ok(shop)
    assert shop.versions() == versions


def test_a_concurrent_writer_during_snapshot_and_change_reads(shop: Shop) -> None:
    shop.sql(
        "INSERT INTO customers SELECT i, 'c' || i, i, NULL, NULL FROM generate_series(1, 2000) i"
    )
    shop.project(action="hard", chunk_rows=500)
    stop = threading.Event()
    written = Counter[str]()

    def write() -> None:
        rng = random.Random(7)
        with shop.cluster.connect(shop.database) as con:
            con.execute("SET synchronous_commit = on")
            while not stop.is_set():
                key = rng.randint(1, 2500)
                kind = rng.choice(["insert", "update", "update", "delete"])
                if kind == "insert":
                    con.execute(
                        "INSERT INTO customers VALUES (%s, 'w', 1, NULL, NULL) "
                        "ON CONFLICT (id) DO UPDATE SET name = 'w2'",
                        (key,),
                    )
                elif kind == "update":
                    con.execute(
                        "UPDATE customers SET balance = balance + 1, name = 'u' WHERE id = %s",
                        (key,),
                    )
                else:
                    con.execute("DELETE FROM customers WHERE id = %s", (key,))
                written[kind] += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(3):  # the snapshot, then change reads, all while the writer writes
            shop.run()
            time.sleep(0.2)
    finally:
        stop.set()
        writer.join()
    assert sum(written.values()) > 100, written
    shop.run()  # catch up
    assert shop.silver() == shop.rows()
    events = _bronze_events(shop)
    assert max(events.values()) == 1
