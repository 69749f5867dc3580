"""The statements the SQL source runs, built with sqlglot in the database's dialect.

Identifiers are always quoted; values are bound parameters (``$1`` for PostgreSQL, ``?`` for
SQLite), never text in the statement. An incremental read is::

    SELECT "a", "b", "updated_at" FROM "public"."orders"
    WHERE "updated_at" >= CAST($1 AS TIMESTAMPTZ) ORDER BY "updated_at"

The bound is cast to the cursor's contract type, so PostgreSQL compares a column with a value
of its own type and can use an index on the cursor. A ``query`` is read as a subquery
(``FROM (query) AS weir_query``), which PostgreSQL's planner flattens or pushes the predicate
into.

SQLite has no time type: times are text, compared as text. Its bound is written as SQLite
writes times (``YYYY-MM-DD HH:MM:SS``), rounded down to the second, which sorts at or before
every text form of the same moment (``…:05.250``, ``…T…``, ``…Z``): a boundary value is never
missed; at most that second (a ``T``-separated column: that day) is re-read, and bronze
already holds those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import sqlglot
from sqlglot import exp

from weir.sources.incremental import CursorKind, iso
from weir.sources.sql.config import Dialect, SqlConfig

_ALIAS = "weir_query"


@dataclass(frozen=True)
class Statement:
    sql: str
    params: tuple[object, ...] = ()


def relation(config: SqlConfig, dialect: Dialect) -> exp.Expression:
    """What is read: the table, or the query as an aliased subquery."""
    if config.table is not None:
        table = exp.to_table(config.table, dialect=dialect)
        for part in ("this", "db"):
            ident = table.args.get(part)
            if isinstance(ident, exp.Identifier):
                ident.set("quoted", True)
        return table
    assert config.query is not None
    query = sqlglot.parse_one(config.query, read=dialect)
    assert isinstance(query, exp.Query)
    return query.subquery(_ALIAS)


def relation_sql(config: SqlConfig, dialect: Dialect) -> str:
    """``"public"."orders"`` or ``(SELECT …) AS weir_query``, for probes and key reads."""
    return exp.select("*").from_(relation(config, dialect)).sql(dialect)


def full(config: SqlConfig, dialect: Dialect, columns: Sequence[str]) -> Statement:
    """Every row of ``columns``."""
    select = exp.select(*(_column(c) for c in columns)).from_(relation(config, dialect))
    return Statement(select.sql(dialect))


def since(
    config: SqlConfig,
    dialect: Dialect,
    columns: Sequence[str],
    cursor: str,
    kind: CursorKind,
    cursor_type: pa.DataType,
    bound: int | None,
) -> Statement:
    """The rows at or after ``bound`` (None: all of them), ordered by ``cursor``."""
    select = exp.select(*(_column(c) for c in columns)).from_(relation(config, dialect))
    select = select.order_by(exp.Ordered(this=_column(cursor)))
    if bound is None:
        return Statement(select.sql(dialect))
    value: object
    if dialect == "sqlite":
        placeholder: exp.Expression = exp.Placeholder()
        value = bound if kind == "integer" else _sqlite_time(bound)
    else:
        placeholder = exp.cast(exp.var("$1"), _sql_type(kind, cursor_type))
        value = str(bound) if kind == "integer" else iso(bound)
    select = select.where(exp.GTE(this=_column(cursor), expression=placeholder))
    return Statement(select.sql(dialect), (value,))


def keys(config: SqlConfig, dialect: Dialect, names: Sequence[str]) -> Statement:
    return full(config, dialect, names)


def _column(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def _sql_type(kind: CursorKind, dtype: pa.DataType) -> str:
    if kind == "integer":
        return "BIGINT"
    if pa.types.is_date(dtype):
        return "DATE"
    if pa.types.is_timestamp(dtype) and dtype.tz is not None:
        return "TIMESTAMPTZ"
    return "TIMESTAMP"


def _sqlite_time(micros: int) -> str:
    text = iso(micros - micros % 1_000_000)  # down to the second
    return text.removesuffix("Z").replace("T", " ")
