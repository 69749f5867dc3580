"""weir.sql quotes identifiers and literals the way DuckDB reads them back."""

from __future__ import annotations

import duckdb
import pytest

from weir.sql import ident, literal


@pytest.mark.parametrize("name", ["plain", 'with "quotes"', "spaced name", "select", "ünïcode"])
def test_identifiers_round_trip(name: str) -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({ident(name)} INTEGER)")
    assert [row[0] for row in con.execute("DESCRIBE t").fetchall()] == [name]


@pytest.mark.parametrize(
    "value", [None, True, False, 0, -3, 1.5, "it's", "back\\slash", "2024-01-31"]
)
def test_literals_round_trip(value: object) -> None:
    (read,) = duckdb.connect().execute(f"SELECT {literal(value)}").fetchone() or (object(),)
    if isinstance(value, float):  # DuckDB reads 1.5 as a DECIMAL, as a SQL author would
        assert float(read) == value
    else:
        assert read == value
        assert type(read) is type(value)
