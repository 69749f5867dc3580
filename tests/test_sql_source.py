"""The sql source against real databases: SQLite files and a real PostgreSQL server.

full and incremental reads, idle re-runs that make no table version, the `>` vs `>=` boundary
across chunks and runs, late commits inside and beyond the lookback, concurrent inserts
during a read, key sets, and errors that name the database and never the password.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from weir.errors import SourceError, TransientSourceError
from weir.run.pipeline import PipelineRun, source_schema
from weir.sources.base import SourceContext
from weir.sources.sql import SqlConfig, SqlSource
from weir.spec import load_project
from weirtest.postgres import PASSWORD, Cluster
from weirtest.projects import SALT, orders_pipeline, table_rows, write_project
from weirtest.sqldb import OrdersDb, sql_project

T0 = dt.datetime(2024, 3, 1, 12, 0, 0)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OrdersDb]:
    root = tmp_path / "p"
    root.mkdir()
    if request.param == "sqlite":
        yield OrdersDb(root)
        return
    cluster: Cluster = request.getfixturevalue("postgres")
    yield OrdersDb(root, pg=cluster, database=request.getfixturevalue("pg_database"))


def _run(root: Path, db: OrdersDb) -> Any:
    project = load_project(root, environ={"WEIR_PII_SALT": SALT, **db.env()})
    record = PipelineRun(project, project.pipeline("orders")).execute()
    assert record.status in ("success", "partial"), record.error_message
    return record


def _versions(root: Path) -> dict[str, int]:
    return {p.parent.name: DeltaTable(str(p)).version() for p in (root / "lake").glob("*/orders")}


def _rows(n: int, *, start: int = 1, at: dt.datetime = T0, amount: float = 1.0) -> list[Any]:
    return [(i, f"u{i}@example.com", amount, at) for i in range(start, start + n)]


def _bronze_ids(root: Path) -> list[int]:
    return sorted(r["id"] for r in table_rows(root / "lake/bronze/orders", ["id"]))


def test_full_reads_everything_and_an_idle_rerun_makes_no_version(db: OrdersDb) -> None:
    root = sql_project(db.path.parent, db, chunk_rows=2)
    db.insert(_rows(5))
    first = _run(root, db)
    assert first.rows_extracted == first.rows_loaded == 5
    before = _versions(root)
    idle = _run(root, db)
    assert (idle.rows_extracted, idle.rows_already_ingested, idle.changed) == (0, 5, False)
    assert _versions(root) == before
    db.execute("UPDATE orders SET amount = 9 WHERE id = 2")
    changed = _run(root, db)
    assert (changed.rows_extracted, changed.rows_already_ingested) == (1, 4)
    silver = {r["order_id"]: r["amount"] for r in table_rows(root / "lake/silver/orders")}
    assert silver == {1: 1.0, 2: 9.0, 3: 1.0, 4: 1.0, 5: 1.0}


def test_equal_cursor_values_across_chunk_and_run_boundaries_are_neither_lost_nor_doubled(
    db: OrdersDb,
) -> None:
    """The classic `>` vs `>=` bug: 10 rows share the watermark's value, split over chunks
    of 3; 5 more rows with that same value commit after the run. `>` would lose them,
    `>=` without skipping would load the first 10 twice."""
    root = sql_project(
        db.path.parent, db, strategy="incremental", cursor="updated_at", chunk_rows=3
    )
    db.insert(_rows(4, start=1, at=T0 - dt.timedelta(hours=1)))
    db.insert(_rows(10, start=5, at=T0))
    first = _run(root, db)
    assert first.rows_extracted == 14 and first.watermark_after == "2024-03-01T12:00:00Z"
    db.insert(_rows(5, start=15, at=T0))  # the same cursor value, after the read
    second = _run(root, db)
    assert (second.rows_extracted, second.rows_already_ingested) == (5, 10)
    assert _bronze_ids(root) == list(range(1, 20))  # each row exactly once
    before = _versions(root)
    idle = _run(root, db)
    assert (idle.rows_extracted, idle.changed) == (0, False) and _versions(root) == before


def test_late_commits_inside_the_lookback_are_read_and_beyond_it_are_not(db: OrdersDb) -> None:
    """A row committed after a run, with a cursor value older than the watermark: inside
    `lookback` the next run reads it; beyond it, it is not seen (documented in sources.md:
    the lookback must cover the longest time between a change's cursor value and its
    commit)."""
    root = sql_project(
        db.path.parent, db, strategy="incremental", cursor="updated_at", lookback="10 minutes"
    )
    db.insert(_rows(3, at=T0))
    _run(root, db)
    db.insert(_rows(1, start=10, at=T0 - dt.timedelta(minutes=5)))  # late, inside
    db.insert(_rows(1, start=20, at=T0 - dt.timedelta(minutes=20)))  # late, beyond
    late = _run(root, db)
    assert late.rows_extracted == 1 and late.rows_already_ingested == 3
    assert _bronze_ids(root) == [1, 2, 3, 10]  # 20 is not seen: beyond the lookback


def test_an_integer_cursor_rereads_its_lookback_of_values(db: OrdersDb) -> None:
    """Integer cursors use the same inclusive bound: `id >= last − lookback`. A sequence is
    allocated at insert and committed later, so a lower id can commit after a higher one;
    `lookback: N` re-reads the last N values for those."""
    root = sql_project(db.path.parent, db, strategy="incremental", cursor="id", lookback=5)
    db.insert(_rows(3, start=1) + _rows(1, start=10))
    first = _run(root, db)
    assert first.watermark_after == "10"
    db.insert(_rows(1, start=7))  # committed late, within 5 of the watermark
    db.insert(_rows(1, start=4))  # committed late, beyond it: not seen
    db.insert(_rows(1, start=11))
    second = _run(root, db)
    assert second.rows_extracted == 2 and _bronze_ids(root) == [1, 2, 3, 7, 10, 11]


def test_an_incremental_query_reads_through_the_same_bound(db: OrdersDb) -> None:
    query = "SELECT id, email, amount, updated_at FROM orders WHERE amount > 0"
    root = sql_project(
        db.path.parent, db, table=None, query=query, strategy="incremental", cursor="updated_at"
    )
    db.insert([*_rows(2), (3, "n@example.com", -1.0, T0)])
    assert _run(root, db).rows_extracted == 2
    db.insert(_rows(1, start=4, at=T0 + dt.timedelta(seconds=1)))
    again = _run(root, db)
    assert again.rows_extracted == 1 and _bronze_ids(root) == [1, 2, 4]


def _source(db: OrdersDb, **config: Any) -> SqlSource:
    url = db.url.replace("${env:SHOP_DB_PASSWORD}", PASSWORD)
    block = SqlConfig(url=url, table="orders", **config)
    return SqlSource(block, SourceContext("orders", str(db.path.parent), "r1"))


def _schema() -> pa.Schema:
    """The orders contract's source-side schema, as a run asks the source for it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = write_project(Path(tmp), pipelines={"orders": orders_pipeline()})
        pipeline = load_project(root, environ={"WEIR_PII_SALT": SALT}).pipeline("orders")
        return source_schema(pipeline)


def test_reads_stream_in_chunks_and_key_sets_stream_every_key(db: OrdersDb) -> None:
    db.insert(_rows(7))
    with _source(db, chunk_rows=3) as source:
        read = source.extract(None, _schema())
        sizes = [b.num_rows for b in read.batches()]
        assert sum(sizes) == 7 and max(sizes) <= 3
        keys = list(source.key_set(["id"]))
    assert max(b.num_rows for b in keys) <= 3
    assert sorted(v for b in keys for v in b.column(0).to_pylist()) == list(range(1, 8))


def test_rows_committed_during_a_read_come_with_the_next_one(
    postgres: Cluster, tmp_path: Path
) -> None:
    """A second connection inserts while a run streams: the read sees one snapshot (none of
    the new rows, whatever their cursor value), and the next read gets every one of them."""
    database = postgres.database()
    db = OrdersDb(tmp_path, pg=postgres, database=database)
    db.insert(_rows(9, at=T0))
    schema = _schema()
    with _source(db, strategy="incremental", cursor="updated_at", chunk_rows=2) as source:
        read = source.extract(None, schema)
        seen: list[int] = []
        for number, batch in enumerate(read.batches()):
            seen += batch.column("id").to_pylist()
            if number == 0:  # mid-read, committed by another connection
                db.insert(_rows(2, start=100, at=T0) + _rows(2, start=200, at=T0 + dt.timedelta(1)))
        position = read.position()
        assert sorted(seen) == list(range(1, 10)) and position == {
            "watermark": "2024-03-01T12:00:00Z"
        }
        again = source.extract(position, schema)
        later = sorted(v for b in again.batches() for v in b.column("id").to_pylist())
    assert later == [*range(1, 10), 100, 101, 200, 201]  # ≥ the bound; bronze skips 1-9
    assert again.overlap() == ("updated_at", "2024-03-01T12:00:00Z")
    postgres.drop(database)


def test_a_missing_table_names_the_database_and_the_table(db: OrdersDb) -> None:
    with _source(db) as source:
        source.config = source.config.model_copy(
            update={"table": "public.nope" if db.pg else "nope"}
        )
        with pytest.raises(SourceError) as caught:
            list(source.extract(None, _schema()).batches())
    text = str(caught.value)
    assert "nope" in text and "Traceback" not in text
    assert PASSWORD not in text


def test_unreachable_server_and_bad_password_say_so_without_the_password(
    postgres: Cluster, tmp_path: Path
) -> None:
    context = SourceContext("orders", str(tmp_path), "r1")
    wrong = SqlConfig(url=postgres.url().replace(PASSWORD, "Wr0ngPassw0rd"), table="orders")
    with pytest.raises(SourceError) as caught, SqlSource(wrong, context) as source:
        source.probe(None)
    assert "password authentication failed" in str(caught.value)
    assert f"127.0.0.1:{postgres.port}/postgres" in str(caught.value)
    assert "Wr0ngPassw0rd" not in str(caught.value)
    down = SqlConfig(url=f"postgresql://weir:{PASSWORD}@127.0.0.1:1/shop", table="orders")
    with pytest.raises(TransientSourceError) as refused, SqlSource(down, context) as source:
        source.probe(None)
    assert "127.0.0.1:1/shop" in str(refused.value) and "running and reachable" in str(
        refused.value
    )
    assert PASSWORD not in str(refused.value)


def test_a_missing_sqlite_file_names_its_path(tmp_path: Path) -> None:
    config = SqlConfig(url="sqlite:///data/none.db", table="orders")
    with (
        pytest.raises(SourceError) as caught,
        SqlSource(config, SourceContext("orders", str(tmp_path), "r1")) as source,
    ):
        source.probe(None)
    assert str(tmp_path / "data/none.db") in str(caught.value)


def test_a_contract_column_the_table_lacks_is_breaking_drift_before_any_write(
    db: OrdersDb,
) -> None:
    root = sql_project(db.path.parent, db)
    db.insert(_rows(2))
    db.execute("ALTER TABLE orders DROP COLUMN amount")
    project = load_project(root, environ={"WEIR_PII_SALT": SALT, **db.env()})
    record = PipelineRun(project, project.pipeline("orders")).execute()
    assert record.status == "failed" and "amount" in (record.error_message or "")
    assert not (root / "lake/bronze/orders").exists()
