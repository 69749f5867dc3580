"""weir's Delta tables as DuckDB views (lake/warehouse.py): real Delta tables, real DuckDB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from weir.errors import TransformError
from weir.lake.warehouse import expose


def rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def sales(ids: list[int], regions: list[str | None], days: list[int]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "region": pa.array(regions, pa.string()),
            "day": pa.array([dt.date(2024, 1, d) for d in days], pa.date32()),
            "sold_at": pa.array(
                [dt.datetime(2024, 1, d, 8, 30, tzinfo=dt.UTC) for d in days],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )


def test_partition_columns_come_from_the_folders_typed_per_the_delta_schema(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "lake/silver/sales")
    data = sales([1, 2, 3, 4], ["north", "a/b=c d", None, "north"], [1, 1, 2, 3])
    write_deltalake(uri, data, partition_by=["region", "day"])
    warehouse = tmp_path / "w.duckdb"
    exposed = expose(warehouse, {"silver.sales": uri})
    assert exposed.versions == {"silver.sales": 0} and exposed.missing == []
    got = rows(warehouse, "SELECT id, region, day, sold_at FROM silver.sales ORDER BY id")
    assert got == [tuple(r.values()) for r in data.to_pylist()]
    types = rows(
        warehouse,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'sales' ORDER BY ordinal_position",
    )
    assert types == [
        ("id", "BIGINT"),
        ("region", "VARCHAR"),
        ("day", "DATE"),
        ("sold_at", "TIMESTAMP WITH TIME ZONE"),
    ]


def test_view_shows_the_current_snapshot_and_evolved_columns(tmp_path: Path) -> None:
    uri = str(tmp_path / "lake/silver/sales")
    write_deltalake(uri, sales([1, 2], ["n", "s"], [1, 2]))
    warehouse = tmp_path / "w.duckdb"
    expose(warehouse, {"silver.sales": uri})
    more = sales([3], ["n"], [3]).append_column("channel", pa.array(["web"]))
    write_deltalake(uri, more, mode="append", schema_mode="merge")
    again = sales([1], ["n"], [1]).append_column("channel", pa.array([None], pa.string()))
    write_deltalake(uri, again, mode="overwrite", predicate="id = 1")
    # the view was made at version 0: it still reads exactly that version's files
    assert rows(warehouse, "SELECT count(*) FROM silver.sales") == [(2,)]
    exposed = expose(warehouse, {"silver.sales": uri})
    assert exposed.versions == {"silver.sales": DeltaTable(uri).version()}
    got = rows(warehouse, "SELECT id, channel FROM silver.sales ORDER BY id")
    assert got == [(1, None), (2, None), (3, "web")]


def test_empty_and_missing_tables(tmp_path: Path) -> None:
    empty = str(tmp_path / "lake/gold/empty")
    write_deltalake(empty, sales([], [], []))
    missing = str(tmp_path / "lake/silver/missing")
    warehouse = tmp_path / "w.duckdb"
    exposed = expose(warehouse, {"gold.empty": empty, "silver.missing": missing})
    assert exposed.missing == ["silver.missing"]
    assert rows(warehouse, "SELECT count(*), typeof(any_value(day)) FROM gold.empty") == [
        (0, "DATE")
    ]
    views = "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal"
    assert rows(warehouse, views) == [("gold.empty",)]


def test_views_of_tables_no_longer_exposed_are_dropped_and_others_kept(tmp_path: Path) -> None:
    a, b = str(tmp_path / "lake/silver/a"), str(tmp_path / "lake/silver/b")
    write_deltalake(a, sales([1], ["n"], [1]))
    write_deltalake(b, sales([2], ["n"], [1]))
    warehouse = tmp_path / "w.duckdb"
    expose(warehouse, {"silver.a": a, "silver.b": b})
    con = duckdb.connect(str(warehouse))
    con.execute("CREATE VIEW silver.mine AS SELECT 1 AS x")  # not weir's: left alone
    con.close()
    expose(warehouse, {"silver.a": a})
    views = "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1"
    assert rows(warehouse, views) == [("a",), ("mine",)]


def test_a_failed_refresh_leaves_the_previous_views(tmp_path: Path) -> None:
    a, b = str(tmp_path / "lake/silver/a"), str(tmp_path / "lake/silver/b")
    write_deltalake(a, sales([1], ["n"], [1]))
    write_deltalake(b, sales([2], ["n"], [1]))
    warehouse = tmp_path / "w.duckdb"
    expose(warehouse, {"silver.a": a})
    con = duckdb.connect(str(warehouse))
    con.execute("CREATE TABLE silver.b AS SELECT 1 AS x")  # in the way of weir's view
    con.close()
    write_deltalake(a, sales([3], ["n"], [1]), mode="append")
    with pytest.raises(TransformError, match="could not create weir's views"):
        expose(warehouse, {"silver.a": a, "silver.b": b})
    # one transaction: the view of silver.a still shows version 0, nothing half-done
    assert rows(warehouse, "SELECT id FROM silver.a") == [(1,)]
