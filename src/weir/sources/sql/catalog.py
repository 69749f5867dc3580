"""What a database's catalog says of one table, for drafting its contract (``weir infer``).

PostgreSQL: ``pg_catalog`` (columns with their types, precision and scale, NOT NULL, comments;
enum labels; unique indexes, the primary key with its columns' positions). SQLite: the table-
valued pragmas (``pragma_table_info``, ``pragma_index_list``, ``pragma_index_info``) and the
table's ``CREATE`` statement, parsed with sqlglot for ``CHECK (col IN (…))`` lists.

Types map onto contract types by :data:`POSTGRES_TYPES` (the table in docs/sources.md, "Types",
which a test compares with it) and, for SQLite's declared types, by :func:`sqlite_type`. This
runs only when a person asks for a draft, never during a run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from weir.errors import SourceError
from weir.hints import did_you_mean
from weir.sources.sql.config import Database
from weir.sources.sql.connection import Connection, connect
from weir.spec.draft import Column, Table

POSTGRES_TYPES: dict[str, str] = {
    "int2": "int16",
    "int4": "int32",
    "int8": "int64",
    "float4": "float32",
    "float8": "float64",
    "numeric": "decimal(p,s)",
    "text": "string",
    "varchar": "string",
    "bpchar": "string",
    "name": "string",
    "citext": "string",
    "bool": "boolean",
    "date": "date",
    "time": "time",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "uuid": "uuid",
    "json": "string",
    "jsonb": "string",
    "bytea": "binary",
}
"""PostgreSQL's type names (``pg_type.typname``) → contract types. Enums are ``string`` (their
labels become an ``accepted_values`` rule), arrays ``list<…>`` of their element's type."""
UNCONSTRAINED_NUMERIC = "decimal(38,10)"

_PG_RELATION = "SELECT CAST(CAST(to_regclass($1) AS oid) AS bigint) AS oid"
_PG_TABLES = """SELECT n.nspname || '.' || c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1"""
_PG_COLUMNS = """SELECT a.attname::text AS name,
  format_type(a.atttypid, a.atttypmod) AS declared,
  CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END::text AS typname,
  CASE WHEN t.typtype = 'd' THEN bt.typtype ELSE t.typtype END::text AS typtype,
  et.typname::text AS element,
  CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod,
  a.attnotnull AS not_null,
  col_description(a.attrelid, a.attnum) AS comment,
  (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
    WHERE e.enumtypid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END
  )::text AS labels
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON bt.oid = t.typbasetype AND t.typtype = 'd'
LEFT JOIN pg_type et ON et.oid = (CASE WHEN t.typtype = 'd' THEN bt.typelem ELSE t.typelem END)
  AND (CASE WHEN t.typtype = 'd' THEN bt.typcategory ELSE t.typcategory END) = 'A'
WHERE a.attrelid = CAST($1 AS oid) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum"""
_PG_UNIQUE = """SELECT i.indisprimary AS is_primary,
  (SELECT json_agg(a.attname::text ORDER BY k.ord)
     FROM unnest(CAST(i.indkey AS int2[])) WITH ORDINALITY AS k(attnum, ord)
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)::text AS columns
FROM pg_index i
WHERE i.indrelid = CAST($1 AS oid) AND i.indisunique AND i.indpred IS NULL
  AND i.indexprs IS NULL
ORDER BY i.indisprimary DESC, i.indexrelid"""
_PG_COMMENT = "SELECT obj_description(CAST($1 AS oid), 'pg_class') AS comment"


def read_table(database: Database, table: str, project_dir: str) -> Table:
    """What the catalog of ``database`` says of ``table`` (``name`` or ``schema.name``).
    SourceError when the database cannot be reached or holds no such table (with the
    closest names it does hold)."""
    where = f"{database.dialect} {database.name}"
    connection = connect(database, project_dir, where)
    try:
        with connection.snapshot():
            if database.dialect == "postgres":
                return _postgres(connection, table, where)
            return _sqlite(connection, table, where)
    finally:
        connection.close()


def _rows(connection: Connection, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for batch in connection.stream(sql, params, 10_000, None):
        rows += batch.to_pylist()
    return rows


def _missing(table: str, where: str, tables: list[str]) -> SourceError:
    short = {t.split(".", 1)[-1]: t for t in tables}
    hint = did_you_mean(table, tables) if "." in table else did_you_mean(table, short)
    if hint and hint.startswith("did you mean") and "." not in table:
        close = hint.split("'")[1]
        hint = f"did you mean {short[close]!r}?"
    return SourceError(
        f"table {table!r} does not exist (or the user cannot see it)",
        where=where,
        hint=hint or "the database holds no tables the user can see",
    )


# ---------------------------------------------------------------- PostgreSQL
def _postgres(connection: Connection, table: str, where: str) -> Table:
    relation = exp.to_table(table, dialect="postgres")
    for part in ("this", "db"):
        ident = relation.args.get(part)
        if isinstance(ident, exp.Identifier):
            ident.set("quoted", True)
    [found] = _rows(connection, _PG_RELATION, [relation.sql("postgres")])
    if found["oid"] is None:
        tables = [r["name"] for r in _rows(connection, _PG_TABLES)]
        raise _missing(table, where, tables)
    oid = str(found["oid"])
    keys: dict[str, int] = {}
    unique: list[tuple[str, ...]] = []
    for index in _rows(connection, _PG_UNIQUE, [oid]):
        columns = tuple(json.loads(index["columns"] or "[]"))
        if index["is_primary"] and not keys:
            keys = {name: position for position, name in enumerate(columns, 1)}
        elif columns and columns not in unique and set(columns) != set(keys):
            unique.append(columns)
    columns_ = [_pg_column(row, keys, unique) for row in _rows(connection, _PG_COLUMNS, [oid])]
    [comment] = _rows(connection, _PG_COMMENT, [oid])
    return Table(
        name=table,
        source=where,
        columns=tuple(columns_),
        description=comment["comment"],
        unique_sets=tuple(u for u in unique if len(u) > 1),
    )


def _pg_column(row: dict[str, Any], keys: dict[str, int], unique: list[tuple[str, ...]]) -> Column:
    name, declared = row["name"], row["declared"]
    labels: tuple[str, ...] = ()
    if row["typtype"] == "e":
        contract, note = "string", None
        labels = tuple(json.loads(row["labels"] or "[]"))
    elif row["element"] is not None:
        item, note = postgres_type(row["element"], row["typmod"])
        contract = f"list<{item}>"
    else:
        contract, note = postgres_type(row["typname"], row["typmod"])
    return Column(
        source_name=name,
        type=contract,
        source_type=declared,
        required=bool(row["not_null"]),
        key_position=keys.get(name),
        unique=(name,) in unique,
        description=row["comment"],
        values=labels,
        note=note and f"{declared}: {note}",
    )


def postgres_type(typname: str, typmod: int | None) -> tuple[str, str | None]:
    """The contract type of a PostgreSQL type, and a note when a person should check it."""
    found = POSTGRES_TYPES.get(typname)
    if found is None:
        return "string", f"no contract type for {typname}; drafted as string, check it reads"
    if found != "decimal(p,s)":
        return found, None
    if typmod is None or typmod < 4:
        return UNCONSTRAINED_NUMERIC, "numeric without precision: choose decimal(p,s)"
    precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
    if precision > 38:
        return UNCONSTRAINED_NUMERIC, f"precision {precision} is beyond decimal's 38"
    return f"decimal({precision},{scale})", None


# ---------------------------------------------------------------- SQLite
_SQLITE_NAMED = (
    (re.compile(r"\bBOOL"), "boolean"),
    (re.compile(r"\bTIMESTAMP ?(TZ|WITH TIME ZONE)\b"), "timestamptz"),
    (re.compile(r"\b(DATETIME|TIMESTAMP)\b"), "timestamp"),
    (re.compile(r"\bDATE\b"), "date"),
    (re.compile(r"\bTIME\b"), "time"),
    (re.compile(r"\bUUID\b"), "uuid"),
    (re.compile(r"\bJSONB?\b"), "string"),
)
"""Declared types SQLite itself gives no meaning to, but that say what the column holds."""
_DECIMAL = re.compile(r"\b(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")


def sqlite_type(declared: str) -> tuple[str, str | None]:
    """The contract type of a SQLite column's declared type, and a note to check.

    Well-known names first (``BOOLEAN``, ``DATETIME``, ``DECIMAL(12,2)``), then SQLite's own
    affinity rules (https://sqlite.org/datatype3.html#determination_of_column_affinity)."""
    text = declared.upper().strip()
    for pattern, contract in _SQLITE_NAMED:
        if pattern.search(text):
            return contract, None
    decimal = _DECIMAL.search(text)
    if decimal:
        precision, scale = int(decimal[1]), int(decimal[2] or 0)
        if 0 < precision <= 38 and scale <= precision:
            return f"decimal({precision},{scale})", None
    if "INT" in text:
        return "int64", None
    if any(word in text for word in ("CHAR", "CLOB", "TEXT")):
        return "string", None
    if "BLOB" in text:
        return "binary", None
    if any(word in text for word in ("REAL", "FLOA", "DOUB")):
        return "float64", None
    if not text:
        return "string", "no declared type (any value): drafted as string, check it"
    return UNCONSTRAINED_NUMERIC, f"{declared} has numeric affinity: choose the type"


def _sqlite(connection: Connection, table: str, where: str) -> Table:
    schema, _, name = table.rpartition(".")
    schema = schema or "main"
    master = f'"{schema.replace(chr(34), chr(34) * 2)}".sqlite_master'
    found = _rows(
        connection,
        f"SELECT name, sql FROM {master} WHERE type IN ('table', 'view') AND name = ? "
        "COLLATE NOCASE",
        [name],
    )
    if not found:
        listed = _rows(connection, f"SELECT name FROM {master} WHERE type IN ('table', 'view')")
        tables = [r["name"] for r in listed if not str(r["name"]).startswith("sqlite_")]
        raise _missing(table, where, tables)
    name, create = found[0]["name"], found[0]["sql"] or ""
    info = _rows(
        connection, 'SELECT name, type, "notnull", pk FROM pragma_table_info(?, ?)', [name, schema]
    )
    unique = list(_sqlite_unique(connection, name, schema))
    allowed = _check_lists(create)
    columns = []
    for row in info:
        contract, note = sqlite_type(row["type"] or "")
        columns.append(
            Column(
                source_name=row["name"],
                type=contract,
                source_type=row["type"] or "(none)",
                required=bool(row["notnull"]),
                key_position=int(row["pk"]) or None,
                unique=(row["name"],) in unique,
                values=allowed.get(row["name"].lower(), ()),
                note=note,
            )
        )
    keys = {c.source_name for c in columns if c.key_position is not None}
    return Table(
        name=table,
        source=where,
        columns=tuple(columns),
        unique_sets=tuple(u for u in unique if len(u) > 1 and set(u) != keys),
    )


def _sqlite_unique(connection: Connection, table: str, schema: str) -> Iterator[tuple[str, ...]]:
    indexes = _rows(
        connection,
        'SELECT name, "unique", origin, partial FROM pragma_index_list(?, ?)',
        [table, schema],
    )
    for index in indexes:
        if index["unique"] and index["origin"] != "pk" and not index["partial"]:
            names = _rows(
                connection,
                "SELECT name FROM pragma_index_info(?, ?) ORDER BY seqno",
                [index["name"], schema],
            )
            if all(n["name"] is not None for n in names):  # an expression has no name
                yield tuple(n["name"] for n in names)


def _check_lists(create: str) -> dict[str, tuple[str, ...]]:
    """``CHECK (status IN ('a', 'b'))`` in a CREATE TABLE: column (lower case) → the values."""
    try:
        parsed = sqlglot.parse_one(create, read="sqlite")
    except SqlglotError:
        return {}
    found: dict[str, tuple[str, ...]] = {}
    for check in parsed.find_all(exp.CheckColumnConstraint, exp.Check):
        for test in check.find_all(exp.In):
            if isinstance(test.parent, exp.Not):
                continue
            column = test.this
            values = test.expressions
            if (
                isinstance(column, exp.Column)
                and values
                and all(isinstance(v, exp.Literal) and v.is_string for v in values)
            ):
                found[column.name.lower()] = tuple(v.this for v in values)
    return found
