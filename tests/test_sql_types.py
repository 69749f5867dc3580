"""Database types onto the contract's: a PostgreSQL type matrix round trip (source value →
bronze → silver equals the expected Python value), values that do not fit, and SQLite's
mixed storage classes."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from weir.run.pipeline import PipelineRun
from weir.spec import load_project
from weirtest.postgres import PASSWORD, Cluster
from weirtest.projects import SALT, orders_pipeline, table_rows, write_project

UUID = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
# column, PostgreSQL type, contract type, SQL literal, expected silver value
MATRIX: list[tuple[str, str, str, str, Any]] = [
    ("num", "numeric(12,2)", "decimal(12,2)", "1234567890.12", decimal.Decimal("1234567890.12")),
    ("num_free", "numeric", "decimal(38,10)", "0.1234567891", decimal.Decimal("0.1234567891")),
    ("small", "int2", "int16", "-32768", -32768),
    ("medium", "int4", "int32", "2147483647", 2147483647),
    ("big", "int8", "int64", "9223372036854775807", 9223372036854775807),
    ("widened", "int4", "int64", "7", 7),
    ("f4", "float4", "float32", "1.5", 1.5),
    ("f8", "float8", "float64", "0.30000000000000004", 0.30000000000000004),
    ("txt", "text", "string", "'naïve ☃'", "naïve ☃"),
    ("vc", "varchar(10)", "string", "'short'", "short"),
    ("flag", "bool", "boolean", "true", True),
    ("day", "date", "date", "'2024-02-29'", dt.date(2024, 2, 29)),
    ("clock", "time", "time", "'23:59:59.123456'", "23:59:59.123456"),
    (
        "local",
        "timestamp",
        "timestamp",
        "'2024-03-01 10:11:12.5'",
        dt.datetime(2024, 3, 1, 10, 11, 12, 500000),
    ),
    (
        "instant",
        "timestamptz",
        "timestamptz",
        "'2024-03-01 10:11:12+02'",
        dt.datetime(2024, 3, 1, 8, 11, 12, tzinfo=dt.UTC),
    ),
    ("ident", "uuid", "uuid", f"'{UUID.upper()}'", UUID),
    (
        "doc",
        "jsonb",
        "struct<a: int64, b: list<string>>",
        """'{"a": 1, "b": ["x"]}'""",
        {"a": 1, "b": ["x"]},
    ),
    ("doc_text", "json", "string", """'{"k": [1, 2]}'""", '{"k": [1, 2]}'),
    ("tags", "text[]", "list<string>", "ARRAY['p', 'q']", ["p", "q"]),
    ("counts", "int[]", "list<int64>", "ARRAY[1, NULL, 3]", [1, None, 3]),
    ("blob", "bytea", "binary", "'\\xdeadbeef'", b"\xde\xad\xbe\xef"),
    ("mood", "mood", "string", "'happy'", "happy"),
]


def _contract(columns: list[tuple[str, str]]) -> dict[str, Any]:
    props = [{"name": "id", "physicalType": "int64", "primaryKey": True}]
    props += [{"name": name, "physicalType": typ} for name, typ in columns]
    return {
        "apiVersion": "v3.0.2",
        "kind": "DataContract",
        "id": "things",
        "version": "1",
        "schema": [{"name": "things", "properties": props}],
    }


def _project(root: Path, url: str, columns: list[tuple[str, str]], **extra: Any) -> Path:
    pipe = orders_pipeline(
        name="things",
        contract="things",
        transform={},
        extract={"source": "sql", "url": url, "table": "public.things"},
        **extra,
    )
    return write_project(root, contracts={"things": _contract(columns)}, pipelines={"things": pipe})


def _run(root: Path) -> Any:
    project = load_project(root, environ={"WEIR_PII_SALT": SALT, "PGPW": PASSWORD})
    return PipelineRun(project, project.pipeline("things")).execute()


def _pg_table(postgres: Cluster, database: str, literals: list[str]) -> None:
    with postgres.connect(database) as con:
        con.execute("CREATE TYPE mood AS ENUM ('sad', 'happy')")
        columns = ", ".join(f"{name} {pg}" for name, pg, *_ in MATRIX)
        con.execute(f"CREATE TABLE things (id int8 PRIMARY KEY, {columns})")
        con.execute(f"INSERT INTO things VALUES (1, {', '.join(literals)})")
        con.execute("INSERT INTO things (id) VALUES (2)")  # every column NULL


def _url(postgres: Cluster, database: str) -> str:
    return postgres.url(database).replace(PASSWORD, "${env:PGPW}")


def test_postgres_types_round_trip_into_silver(
    postgres: Cluster, pg_database: str, tmp_path: Path
) -> None:
    _pg_table(postgres, pg_database, [literal for _, _, _, literal, _ in MATRIX])
    columns = [(name, contract) for name, _, contract, _, _ in MATRIX]
    root = _project(tmp_path / "p", _url(postgres, pg_database), columns)
    record = _run(root)
    assert record.status == "success", record.error_message
    rows = {r["id"]: r for r in table_rows(root / "lake/silver/things")}
    assert {name: rows[1][name] for name, *_ in MATRIX} == {
        name: value for name, _, _, _, value in MATRIX
    }
    assert all(rows[2][name] is None for name, *_ in MATRIX)
    bronze = {r["id"]: r for r in table_rows(root / "lake/bronze/things")}
    assert bronze[1]["num"] == decimal.Decimal("1234567890.12") and bronze[1]["ident"] == UUID


@pytest.mark.parametrize(
    ("pg", "contract", "literal", "shown"),
    [
        ("numeric(12,3)", "decimal(12,2)", "10.255", "10.255"),
        ("int8", "int32", "3000000000", "3000000000"),
        ("text", "int64", "'12abc'", "12abc"),
        ("jsonb", "struct<a: int64>", """'{"a": "two"}'""", "two"),
    ],
)
def test_a_value_that_does_not_fit_fails_naming_table_column_and_value_before_any_write(
    postgres: Cluster,
    pg_database: str,
    tmp_path: Path,
    pg: str,
    contract: str,
    literal: str,
    shown: str,
) -> None:
    with postgres.connect(pg_database) as con:
        con.execute(f"CREATE TABLE things (id int8 PRIMARY KEY, v {pg})")
        con.execute(f"INSERT INTO things VALUES (1, {literal})")
    url = _url(postgres, pg_database)
    root = _project(tmp_path / "p", url, [("v", contract)], on_parse_error="fail")
    record = _run(root)
    assert record.status == "failed"
    message = record.error_message or ""
    assert "table public.things" in message and "column v" in message and shown in message
    assert not (root / "lake").exists() or not any((root / "lake").rglob("*.parquet"))
    # quarantined instead, as for every source, with on_parse_error: quarantine
    root = _project(tmp_path / "q", url, [("v", contract)], on_parse_error="quarantine")
    record = _run(root)
    assert (record.status, record.rows_quarantined) == ("partial", 1)
    [row] = table_rows(root / "lake/quarantine/things")
    assert any("column v" in reason for reason in row["_reasons"])


def test_sqlite_mixed_storage_classes_follow_the_contract(tmp_path: Path) -> None:
    """A SQLite column may hold an integer in one row and text in the next; every value
    meets the contract's rule: '7' is an integer, 1.5 is not; REALs keep every digit."""
    root = tmp_path / "p"
    root.mkdir()
    with sqlite3.connect(root / "shop.db") as con:
        con.execute("CREATE TABLE things (id INTEGER, n, f, s, b BLOB)")
        con.executemany(
            "INSERT INTO things VALUES (?, ?, ?, ?, ?)",
            [
                (1, 7, 0.30000000000000004, "x", b"\x00\x01"),
                (2, "8", 2, 5, None),
                (3, 1.5, "2.5", None, None),
                *[(i, None, None, None, None) for i in range(4, 2000)],
                (2000, "nine", 1, "ok", None),
            ],
        )
    pipe = orders_pipeline(
        name="things",
        contract="things",
        transform={},
        extract={
            "source": "sql",
            "url": "sqlite:///shop.db",
            "table": "things",
            "chunk_rows": 1000,
        },
        on_parse_error="quarantine",
    )
    write_project(
        root,
        contracts={
            "things": _contract(
                [("n", "int64"), ("f", "float64"), ("s", "string"), ("b", "binary")]
            )
        },
        pipelines={"things": pipe},
    )
    record = _run(root)
    assert record.rows_extracted == 2000 and record.rows_quarantined == 2
    rows = {r["id"]: r for r in table_rows(root / "lake/silver/things")}
    assert rows[1] | {} == rows[1] and (rows[1]["n"], rows[1]["f"], rows[1]["b"]) == (
        7,
        0.30000000000000004,
        b"\x00\x01",
    )
    assert (rows[2]["n"], rows[2]["f"], rows[2]["s"]) == (8, 2.0, "5")
    reasons = sorted(r for q in table_rows(root / "lake/quarantine/things") for r in q["_reasons"])
    assert reasons == [
        "parse: column n, value '1.5' (row 3)",
        "parse: column n, value 'nine' (row 2000)",
    ]
