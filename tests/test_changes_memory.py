"""A large batch of change events applies within DuckDB's default memory limit (256 MB):
each step of the apply holds at most one large hash table, which DuckDB can spill
(lake/changes.py). A 1M-row CDC snapshot ran out of memory before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable

from weirtest.cdc import Shop
from weirtest.postgres import Cluster

ROWS = 1_000_000


@pytest.fixture
def shop(postgres: Cluster, pg_database: str, tmp_path: Path) -> Iterator[Shop]:
    shop = Shop(postgres, pg_database, tmp_path / "p")
    yield shop
    shop.drop_slots()


def silver_counts(shop: Shop) -> tuple[int, int, int]:
    """Rows, soft-deleted rows and renamed rows of silver."""
    data = DeltaTable(str(shop.root / "lake" / "silver" / "customers")).to_pyarrow_table(
        columns=["name", "is_deleted"]
    )
    rows = data.to_pylist()
    deleted = sum(1 for r in rows if r["is_deleted"])
    renamed = sum(1 for r in rows if r["name"].startswith("renamed"))
    return len(rows), deleted, renamed


@pytest.mark.slow
def test_a_million_row_snapshot_and_a_million_changes_apply_in_the_default_limit(
    shop: Shop,
) -> None:
    shop.sql(
        "INSERT INTO customers SELECT g, 'name ' || g, g % 1000, NULL, NULL "
        f"FROM generate_series(1, {ROWS}) g"
    )
    shop.project(chunk_rows=100_000)
    first = shop.run()
    assert first.rows_loaded == ROWS
    assert silver_counts(shop) == (ROWS, 0, 0)
    shop.sql(
        f"UPDATE customers SET name = 'renamed ' || id WHERE id <= {ROWS // 2}",
        f"UPDATE customers SET balance = balance + 1 WHERE id > {ROWS // 2}",
        "DELETE FROM customers WHERE id % 10 = 0",
    )
    second = shop.run()
    assert second.rows_extracted == ROWS + ROWS // 10
    # soft-deleted rows keep their last values: the renamed half includes its deleted tenth
    assert silver_counts(shop) == (ROWS, ROWS // 10, ROWS // 2)
