"""Contract type spellings: one parse, and the Arrow, DuckDB and Delta views of each type agree
(checked against real DuckDB and a real Delta table)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from weir.spec import types

SPELLINGS = [
    ("int", "int64"),
    ("Decimal(12, 2)", "decimal(12,2)"),
    ("bytes", "binary"),
    ("array<STR>", "list<string>"),
    ("struct<a int, b: list<uuid>>", "struct<a: int64, b: list<uuid>>"),
    ("map<string, struct<`x-y`: time>>", "map<string, struct<`x-y`: time>>"),
    (
        "list<struct<sku: string, qty: int32, price: decimal(10,2)>>",
        "list<struct<sku: string, qty: int32, price: decimal(10,2)>>",
    ),
]


@pytest.mark.parametrize(("written", "canonical"), SPELLINGS)
def test_spellings_normalise_and_round_trip(written: str, canonical: str) -> None:
    assert types.check(written) == canonical
    assert types.check(canonical) == canonical
    assert types.type_name(types.arrow_field("c", canonical)) == canonical


@pytest.mark.parametrize("spelled", [c for _, c in SPELLINGS] + ["uuid", "time"])
def test_duckdb_and_delta_hold_the_arrow_type(spelled: str, tmp_path: Path) -> None:
    arrow = types.storage(types.arrow_type(spelled))
    got = duckdb.sql(f"SELECT CAST(NULL AS {types.duckdb_type(spelled)}) AS c").arrow()
    assert got.schema.field("c").type == arrow  # what silver's CAST produces is what we store
    write_deltalake(str(tmp_path / "t"), pa.table({"c": pa.nulls(1, arrow)}))
    stored = pa.schema(DeltaTable(str(tmp_path / "t")).schema().to_arrow())
    assert stored.field("c").type == arrow


def test_uuid_and_time_are_text_marked_in_the_field() -> None:
    field = types.arrow_field("t", "time")
    assert field.type == pa.string() and types.logical(field) == "time"
    nested = types.arrow_type("struct<id: uuid>")
    assert types.logical(nested.field(0)) == "uuid"
    assert types.storage(nested).field(0).metadata is None


def test_widening_is_field_by_field() -> None:
    assert types.widening("struct<a: int16>", "struct<a: int32, b: string>")
    assert not types.widening("struct<a: string>", "struct<a: int32>")
    assert types.widening("list<int32>", "list<int64>")
    assert not types.widening("list<int64>", "list<int32>")
    assert types.widening("map<string, int8>", "map<string, float64>")
    assert types.widening("string", "uuid") and types.widening("time", "string")
    assert not types.widening("list<string>", "string")
