"""Orders tables in real databases for the sql source's tests: SQLite files and PostgreSQL
databases (tests/weirtest/postgres.py), and projects whose pipeline reads them.

The table holds the orders contract's source-side columns (``id``, ``email``, ``amount``,
``updated_at``, see :data:`weirtest.projects.ORDERS_CONTRACT`) plus ``seq``, a serial the
contract does not name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from weirtest.projects import orders_pipeline, write_project

Row = tuple[Any, ...]
"""(id, email, amount, updated_at)"""

PG_TABLE = """CREATE TABLE public.orders (
    seq bigserial PRIMARY KEY, id bigint, email text, amount double precision,
    updated_at timestamp NOT NULL)"""
SQLITE_TABLE = """CREATE TABLE orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id INTEGER, email TEXT, amount REAL,
    updated_at TEXT NOT NULL)"""
INSERT = "INSERT INTO orders (id, email, amount, updated_at) VALUES ({p}, {p}, {p}, {p})"


class OrdersDb:
    """An orders table in SQLite (``pg=None``) or in a PostgreSQL database."""

    def __init__(self, root: Path, *, pg: Any = None, database: str | None = None):
        self.pg, self.database = pg, database
        self.path = root / "shop.db"
        if pg is None:
            with sqlite3.connect(self.path) as con:
                con.execute(SQLITE_TABLE)
        else:
            with pg.connect(database) as con:
                con.execute(PG_TABLE)
                con.execute("CREATE INDEX ON public.orders (updated_at)")

    @property
    def url(self) -> str:
        """The URL as the pipeline file writes it: the password from the environment."""
        if self.pg is None:
            return "sqlite:///shop.db"
        return self.pg.url(self.database).replace(_password(self.pg), "${env:SHOP_DB_PASSWORD}")

    def env(self) -> dict[str, str]:
        return {} if self.pg is None else {"SHOP_DB_PASSWORD": _password(self.pg)}

    def insert(self, rows: Iterable[Row]) -> None:
        self.execute_many(INSERT, list(rows))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.execute_many(sql, [tuple(params)] if params else [()])

    def execute_many(self, sql: str, rows: list[Row]) -> None:
        if self.pg is None:
            with sqlite3.connect(self.path) as con:
                if rows == [()]:
                    con.execute(sql.format(p="?"))
                else:
                    con.executemany(sql.format(p="?"), [_sqlite(r) for r in rows])
            return
        with self.pg.connect(self.database) as con, con.cursor() as cur:
            if rows == [()]:
                cur.execute(sql.format(p="%s"))
            else:
                cur.executemany(sql.format(p="%s"), rows)


def _password(pg: Any) -> str:
    from weirtest.postgres import PASSWORD

    return PASSWORD


def _sqlite(row: Row) -> Row:
    return tuple(v.isoformat(sep=" ") if hasattr(v, "isoformat") else v for v in row)


def sql_project(root: Path, db: OrdersDb, **extract: Any) -> Path:
    """A project whose ``orders`` pipeline reads ``db`` (``extract`` overrides the block)."""
    block = {"source": "sql", "url": db.url, "table": "orders", **extract}
    pipe = orders_pipeline(extract=block)
    write_project(root, pipelines={"orders": pipe})
    return root
