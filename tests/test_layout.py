"""What lineage says weir writes is what weir writes: every table of a project that uses each
layer, load strategy and materialization, compared column by column (names, order and DuckDB
types) with the Delta tables of a real run."""

from __future__ import annotations

import copy
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from weir import layout
from weir.run import api
from weir.sources import memory
from weir.spec import load_project
from weir.transform.lineage import project_lineage
from weirtest.debezium import CUSTOMERS, customers_pipeline, delete, insert, update, write_events
from weirtest.projects import ORDERS_CONTRACT, SALT, orders_pipeline, write_models, write_project

CITIES: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "cities",
    "version": "1.0.0",
    "schema": [
        {
            "name": "cities",
            "properties": [
                {"name": "id", "physicalType": "int64", "primaryKey": True},
                {"name": "city", "physicalType": "string"},
                {"name": "as_of", "physicalType": "timestamp", "required": True},
            ],
        }
    ],
}

MODELS = {
    "mrt_amounts": """
        /* weir
        materialized: table
        */
        SELECT order_id, amount, amount * 2 AS doubled FROM silver.orders
    """,
    "mrt_daily": """
        /* weir
        materialized: incremental
        unique_key: [day]
        incremental: {column: day, lookback: 1 days}
        */
        SELECT CAST(updated_at AS DATE) AS day, count(*) AS n FROM silver.orders GROUP BY 1
    """,
    "snp_orders": """
        /* weir
        materialized: snapshot
        unique_key: [order_id]
        snapshot: {strategy: check, check_cols: [amount]}
        */
        SELECT order_id, amount FROM silver.orders
    """,
}


def _cdc(action: str) -> dict[str, Any]:
    return {**customers_pipeline(action)["extract"], "path": "cdc/*.jsonl"}


def _reconciled(action: str) -> dict[str, Any]:
    deletes = {"detect": "keys", "action": action}
    return {"source": "sql", "url": "sqlite:///shop.db", "table": "orders", "deletes": deletes}


def _duck_types(schema: pa.Schema) -> list[tuple[str, str]]:
    con = duckdb.connect()
    con.register("probe", schema.empty_table())
    return [(str(r[0]), str(r[1])) for r in con.execute("DESCRIBE SELECT * FROM probe").fetchall()]


def _canonical(duck_type: str) -> str:
    """DuckDB's own spelling of a type name (``TIMESTAMPTZ`` is ``TIMESTAMP WITH TIME ZONE``)."""
    described = duckdb.connect().execute(f"DESCRIBE SELECT CAST(NULL AS {duck_type}) AS x")
    return str(described.fetchall()[0][1])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layout") / "p"
    orders = copy.deepcopy(ORDERS_CONTRACT)
    write_project(
        root,
        contracts={"orders": orders, "cities": CITIES, "customers": CUSTOMERS},
        pipelines={
            "orders": orders_pipeline(
                transform={
                    "dedupe_order_by": "updated_at",
                    "derived": [{"name": "cents", "sql": "amount * 100", "type": "float64"}],
                }
            ),
            "cities": {
                "name": "cities",
                "owner": "data-eng",
                "contract": "cities",
                "extract": {"source": "files", "path": "data/*.csv", "format": "csv"},
                "load": {"strategy": "scd2", "scd2": {"valid_from": "as_of"}},
            },
            # change events, soft and hard deletes (lake/changes.py)
            "customers": {**customers_pipeline("soft"), "extract": _cdc("soft")},
            "customers_hard": {
                **customers_pipeline("hard"),
                "name": "customers_hard",
                "extract": _cdc("hard"),
            },
            # a sql table reconciled by keys, soft and hard (lake/reconcile.py)
            **{
                name: orders_pipeline(name=name, extract=_reconciled(action))
                for name, action in (("shop", "soft"), ("shop_hard", "hard"))
            },
        },
    )
    with sqlite3.connect(root / "shop.db") as con:
        con.execute("CREATE TABLE orders (id INTEGER, email TEXT, amount REAL, updated_at TEXT)")
        con.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, '2024-01-01 12:00:00')",
            [(1, "a@x.org", 5.0), (2, "b@x.org", 6.0), (3, "c@x.org", 7.0), (4, "d@x.org", -500)],
        )
    write_events(
        root,
        "1.jsonl",
        [insert(1, 1, "ann"), insert(2, 2, "bob"), update(3, 1, "anna"), delete(4, 2), "{bad"],
        folder="cdc",
    )
    write_models(root, MODELS)
    (root / "data").mkdir()
    (root / "data" / "c1.csv").write_text(
        "id,city,as_of\n1,Oslo,2024-01-01T00:00:00\n2,Rome,2024-01-01T00:00:00\n"
        "x,Bad,2024-01-01T00:00:00\n"
    )
    memory.register("orders")
    at = dt.datetime(2024, 1, 1, 12)
    memory.append(
        "orders",
        pa.table(
            {
                "id": pa.array([1, 2, 3], pa.int64()),
                "email": ["a@x.org", "b@x.org", None],
                "amount": pa.array([5.0, -500.0, 7.5], pa.float64()),
                "updated_at": pa.array([at, at, at], pa.timestamp("us")),
            }
        ),
    )
    with pytest.MonkeyPatch.context() as env:  # module scope: before the autouse salt
        env.setenv("WEIR_PII_SALT", SALT)
        records = api.run(load_project(root))
    statuses = {r.pipeline_name: r.status for r in records}
    # each pipeline quarantines a row (a negative amount, an id that is not a number, a line
    # that is not JSON); reconciliation leaves the quarantined key 4 alone
    assert statuses == {
        "orders": "partial",
        "cities": "partial",
        "customers": "partial",
        "customers_hard": "partial",
        **dict.fromkeys(["mrt_amounts", "mrt_daily", "snp_orders"], "success"),
        **dict.fromkeys(["shop", "shop_hard"], "partial"),
    }
    with sqlite3.connect(root / "shop.db") as con:  # a delete: the next run reconciles it
        con.execute("DELETE FROM orders WHERE id = 2")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WEIR_PII_SALT", SALT)
        again = api.run(load_project(root), ["shop", "shop_hard"])
    assert [r.status for r in again] == ["success", "success"]
    return root


def test_every_table_lineage_describes_is_written_as_described(project: Path) -> None:
    lineage = project_lineage(load_project(project))
    compared, differ = [], dict[str, str]()
    for table, columns in lineage.schemas.items():
        layer, _, name = table.partition(".")
        if layer == "source":
            continue
        written = DeltaTable(layout.table_uri(str(project / "lake"), layer, name)).schema()
        actual = _duck_types(pa.schema(written.to_arrow()))  # type: ignore[arg-type]
        expected = [(c.name, _canonical(c.type)) for c in columns]
        if actual != expected:
            differ[table] = f"written {actual}\n  lineage {expected}"
        compared.append(table)
    assert not differ, "\n".join(f"{t}:\n  {d}" for t, d in differ.items())
    assert sorted(compared) == [
        "bronze.cities",
        "bronze.customers",
        "bronze.customers_hard",
        "bronze.orders",
        "bronze.shop",
        "bronze.shop_hard",
        "gold.mrt_amounts",
        "gold.mrt_daily",
        "gold.snp_orders",
        "quarantine.cities",
        "quarantine.customers",
        "quarantine.customers_hard",
        "quarantine.orders",
        "quarantine.shop",
        "quarantine.shop_hard",
        "silver.cities",
        "silver.customers",
        "silver.customers_hard",
        "silver.orders",
        "silver.shop",
        "silver.shop_hard",
    ]


def test_change_event_tables_carry_the_change_and_soft_delete_columns(project: Path) -> None:
    lineage = project_lineage(load_project(project))
    change = [c.name for c in layout.CHANGE]
    soft = [c.name for c in lineage.schemas["silver.customers"]]
    hard = [c.name for c in lineage.schemas["silver.customers_hard"]]
    assert soft == [*hard, "is_deleted", "deleted_at"]
    assert hard[hard.index("_source_file") + 1 :][: len(change)] == change
    bronze = [c.name for c in lineage.schemas["bronze.customers"]]
    assert bronze[bronze.index("_source_file") + 1 :][: len(change)] == change
    applied = lineage.column("silver.customers", "_lsn")
    assert applied.kind == "generated" and "log position" in (applied.reason or "")


def test_reconciled_silver_carries_the_soft_delete_columns(project: Path) -> None:
    lineage = project_lineage(load_project(project))
    soft = [c.name for c in lineage.schemas["silver.shop"]]
    hard = [c.name for c in lineage.schemas["silver.shop_hard"]]
    assert soft == [*hard, "is_deleted", "deleted_at"]
    rows = DeltaTable(str(project / "lake/silver/shop")).to_pyarrow_table().to_pylist()
    assert {r["order_id"]: r["is_deleted"] for r in rows} == {1: False, 2: True, 3: False}
    kept = DeltaTable(str(project / "lake/silver/shop_hard")).to_pyarrow_table().to_pylist()
    assert sorted(r["order_id"] for r in kept) == [1, 3]
    deleted = lineage.column("silver.shop", "deleted_at")
    assert deleted.kind == "generated" and "deleted" in (deleted.reason or "")


def test_every_data_file_of_the_lake_is_compressed(project: Path) -> None:
    """The lake's Parquet files carry snappy pages: writer properties without a codec once
    wrote every table uncompressed."""
    import pyarrow.parquet as pq

    codecs: dict[str, set[str]] = {}
    for path in (project / "lake").rglob("*.parquet"):
        meta = pq.ParquetFile(path).metadata
        found = {
            meta.row_group(g).column(c).compression
            for g in range(meta.num_row_groups)
            for c in range(meta.num_columns)
        }
        layer, name = path.relative_to(project / "lake").parts[:2]
        codecs.setdefault(f"{layer}.{name}", set()).update(found)
    assert len(codecs) >= 15, sorted(codecs)
    assert {name for name, found in codecs.items() if found != {"SNAPPY"}} == set(), codecs


def test_a_column_of_few_values_keeps_its_dictionary_and_one_of_hashes_gives_up_early(
    tmp_path: Path,
) -> None:
    """The writer's dictionary stops at 64 KiB: a status column stays dictionary-encoded,
    a column of distinct hashes falls back to plain pages instead of first filling a
    dictionary of 1 MiB (the writer's default), which cost half a write's time."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    from weir.lake.table import Commit, Table

    rows = 100_000
    data = pa.table(
        {
            "status": [("placed", "paid", "shipped")[i % 3] for i in range(rows)],
            "digest": [hashlib.sha256(str(i).encode()).hexdigest() for i in range(rows)],
        }
    )
    Table(str(tmp_path / "t"), label="test").write(data, Commit("app", 1, "run"))
    [path] = (tmp_path / "t").glob("*.parquet")
    meta = pq.ParquetFile(path).metadata.row_group(0)
    status, digest = meta.column(0), meta.column(1)
    # dictionary-encoded, 100k statuses take a few KB (plain: about 700 KB)
    assert status.has_dictionary_page and status.total_uncompressed_size < 64 * 1024
    dictionary_bytes = digest.data_page_offset - digest.dictionary_page_offset
    assert dictionary_bytes <= 80 * 1024, dictionary_bytes
