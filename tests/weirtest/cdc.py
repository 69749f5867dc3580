"""A PostgreSQL customers table read by ``strategy: cdc`` (tests/test_cdc*.py): the table in a
fresh database of the session cluster, a project whose pipeline reads it, and views of both
sides to compare."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from weir.observe.record import RunRecord
from weir.run.pipeline import PipelineRun
from weir.spec import load_project
from weirtest.debezium import CUSTOMERS, customers_pipeline, silver
from weirtest.postgres import PASSWORD, Cluster
from weirtest.projects import version, write_project

TABLE = """CREATE TABLE public.customers (
    id bigint PRIMARY KEY, name text NOT NULL, balance numeric(10,2),
    updated_at timestamp, born date)"""


class Shop:
    """A customers table in a fresh PostgreSQL database, and a project reading it by cdc."""

    def __init__(self, cluster: Cluster, database: str, root: Path):
        self.cluster, self.database, self.root = cluster, database, root
        self.slot = f"weir_test_{uuid.uuid4().hex[:10]}"
        with cluster.connect(database) as con:
            con.execute(TABLE)

    def url(self) -> str:
        return self.cluster.url(self.database).replace(PASSWORD, "${env:SHOP_DB_PASSWORD}")

    def project(
        self, action: str = "soft", pipeline: dict[str, Any] | None = None, **extract: Any
    ) -> Path:
        block = {
            "source": "sql",
            "url": self.url(),
            "table": "public.customers",
            "strategy": "cdc",
            "slot": self.slot,
            "deletes": {"action": action},
            "chunk_rows": 3,
            **extract,
        }
        spec = {**customers_pipeline(), **(pipeline or {})}
        spec["extract"] = {k: v for k, v in block.items() if v is not None}
        write_project(self.root, contracts={"customers": CUSTOMERS}, pipelines={"customers": spec})
        return self.root

    def sql(self, *statements: str) -> None:
        """Each statement in its own transaction, flushed at commit (the test cluster runs
        with synchronous_commit off, and logical decoding reads flushed WAL only)."""
        with self.cluster.connect(self.database) as con:
            con.execute("SET synchronous_commit = on")
            for statement in statements:
                con.execute(statement)

    def rows(self) -> dict[int, tuple[Any, ...]]:
        with self.cluster.connect(self.database) as con:
            found = con.execute("SELECT id, name, balance FROM customers").fetchall()
        return {r[0]: (r[1], None if r[2] is None else str(r[2])) for r in found}

    def confirmed(self) -> int:
        with self.cluster.connect(self.database) as con:
            row = con.execute(
                "SELECT confirmed_flush_lsn - '0/0' FROM pg_replication_slots WHERE slot_name = %s",
                (self.slot,),
            ).fetchone()
        return int(row[0])

    def run(self, *, ok: bool = True) -> RunRecord:
        project = load_project(self.root, environ={"SHOP_DB_PASSWORD": PASSWORD})
        record = PipelineRun(project, project.pipeline("customers")).execute()
        if ok:
            assert record.status in ("success", "partial"), record.error_message
            assert record.rows_extracted == record.rows_loaded + record.rows_quarantined
        return record

    def silver(self) -> dict[int, tuple[Any, ...]]:
        return silver(self.root)

    def versions(self) -> dict[str, int]:
        lake = self.root / "lake"
        return {p.parent.name: version(p) for p in lake.glob("*/customers")}

    def env(self) -> dict[str, str]:
        return {"SHOP_DB_PASSWORD": PASSWORD}

    def drop_slots(self) -> None:
        """A database with a slot cannot be dropped."""
        with self.cluster.connect() as con:
            con.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE database = %s AND NOT active",
                (self.database,),
            )
