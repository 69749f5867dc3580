"""The SQL source's configuration: the ``extract:`` block of a ``source: sql`` pipeline.

The URL names the database: ``postgresql://user:${env:PGPASSWORD}@host:5432/db`` (or the
whole URL from one variable) or ``sqlite:///relative/to/project.db`` (four slashes: an
absolute path). Its password is a secret (:meth:`SqlConfig.secrets`): the loader refuses one
written into the file and scrubs it from every message and record. What is read is a
``table`` (``schema.table`` allowed) or one read-only ``query`` (a single SELECT, checked
with sqlglot in the database's dialect).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, Literal
from urllib.parse import unquote, urlsplit

import sqlglot
from pydantic import Field, SecretStr, field_validator, model_validator
from sqlglot import exp
from sqlglot.errors import SqlglotError

from weir.spec.base import Strict
from weir.spec.deletes import Deletes

Dialect = Literal["postgres", "sqlite"]
Strategy = Literal["full", "incremental", "cdc"]

CHUNK_ROWS = 100_000
MAX_CHUNK_ROWS = 1_000_000
HEARTBEAT_BYTES = 64 << 20
"""cdc: when no change of the table arrived but the server wrote this much WAL since the
committed position (64 MiB: four segments), the position alone is committed and the slot
advanced, so a quiet table on a busy server does not hold back its WAL."""
LAG_WARN_BYTES = 1 << 30
"""cdc: warn when the slot holds back more WAL than this (1 GiB): a slot nobody reads fills
the database server's disk."""
"""Rows per chunk at most: a chunk is held in memory whole (a few hundred MB at the most)."""

_SCHEMES: dict[str, Dialect] = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "sqlite": "sqlite",
}
_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
"""A slot's (and, by choice, a publication's) name: lower-case letters, digits and ``_``."""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(second|minute|hour|day|week)s?\s*$")
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_WRITES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Into,
    exp.Lock,
    exp.Copy,
    exp.TruncateTable,
)
"""Nodes that write, lock or run arbitrary commands: refused anywhere in a query (a
PostgreSQL CTE may hold a DELETE; ``SELECT … INTO`` creates a table)."""


@dataclass(frozen=True)
class Database:
    """Where the URL points, with what may be said about it (never the password)."""

    dialect: Dialect
    url: str
    """The URL as given (password included): for the driver only."""
    name: str
    """``host:port/db`` or the SQLite path: for messages."""
    password: str | None
    path: str | None = None
    """SQLite: the file's path as written (relative to the project unless absolute)."""


def parse_url(url: str) -> Database:
    """The database ``url`` names; ValueError (with no part of the URL in it) otherwise."""
    parts = urlsplit(url)
    dialect = _SCHEMES.get(parts.scheme.lower())
    if dialect is None:
        shown = parts.scheme or "(none)"
        raise ValueError(
            f"url scheme {shown!r} is not supported; use postgresql://user@host:port/db or "
            "sqlite:///path/to/file.db"
        )
    if dialect == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
            raise ValueError(
                "a SQLite url is sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        path = unquote(parts.path[1:])
        return Database("sqlite", url, path, None, path=path)
    try:
        port = parts.port or 5432
    except ValueError:
        raise ValueError("the url's port is not a number") from None
    database = parts.path.lstrip("/")
    if not parts.hostname or not database:
        raise ValueError("a PostgreSQL url is postgresql://user@host:port/database")
    password = unquote(parts.password) if parts.password else None
    return Database("postgres", url, f"{parts.hostname}:{port}/{database}", password)


def parse_duration(text: str) -> timedelta:
    """``10 minutes``, ``2 hours``, ``1.5 days``; ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(
            f"lookback {text[:40]!r} is not a duration; write e.g. '10 minutes' or '2 hours' "
            "(seconds, minutes, hours, days, weeks)"
        )
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def check_query(query: str, dialect: Dialect) -> str:
    """``query`` if it is exactly one read-only SELECT (``WITH … SELECT`` and set operations
    too); ValueError saying what it is otherwise."""
    try:
        statements = [s for s in sqlglot.parse(query, read=dialect) if s is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0][:200]
        raise ValueError(f"query is not valid SQL: {first}") from None
    if len(statements) != 1:
        raise ValueError(f"query must be one SELECT statement, found {len(statements)}")
    [statement] = statements
    if not isinstance(statement, exp.Query):
        raise ValueError(
            f"query must be a SELECT, not {statement.key.upper()} (the sql source only reads)"
        )
    for node in statement.walk():
        if isinstance(node, exp.Placeholder | exp.Parameter):
            raise ValueError("query must not hold parameters ($1, ?, :name): weir binds its own")
        if isinstance(node, _WRITES):
            raise ValueError(
                f"query must only read: it contains {node.key.upper()} (the sql source only reads)"
            )
    return query


class SqlConfig(Strict):
    reference: ClassVar[str] = "docs/sources.md (sql)"
    """Where the fields are documented (config errors point there)."""
    source: str = "sql"
    url: SecretStr
    """``postgresql://…`` or ``sqlite:///…``; its password only through ``${env:…}``."""
    table: str | None = Field(default=None, min_length=1)
    """A table or view, ``name`` or ``schema.name``."""
    query: str | None = Field(default=None, min_length=1)
    """One read-only SELECT, instead of ``table``."""
    strategy: Strategy = "full"
    cursor: str | None = Field(default=None, min_length=1)
    """incremental: the column that orders changes (a timestamp, a date or an integer)."""
    lookback: str | int | None = None
    """incremental: a duration (``10 minutes``) for a time cursor, a count for an integer one."""
    chunk_rows: int = Field(default=CHUNK_ROWS, ge=1, le=MAX_CHUNK_ROWS)
    deletes: Deletes | None = None
    """How deleted rows are found (``detect: keys``, reconciled by a later step; ``cdc``: the
    log's delete events, ``{action: soft|hard}``)."""
    slot: str | None = Field(default=None, pattern=_IDENTIFIER)
    """cdc: the logical replication slot's name (default: ``weir_<project>_<pipeline>``)."""
    publication: str | None = Field(default=None, pattern=_IDENTIFIER)
    """cdc: the publication's name (default: the slot's)."""
    lag_warn_bytes: int = Field(default=LAG_WARN_BYTES, ge=1)
    """cdc: warn when the slot retains more WAL than this."""
    lag_warn_seconds: float | None = Field(default=None, gt=0)
    """cdc: warn when the last change read committed longer ago than this."""
    heartbeat_bytes: int = Field(default=HEARTBEAT_BYTES, ge=0)
    """cdc: commit the position alone (and advance the slot) when a run read no change but
    the server wrote at least this much WAL since the committed position; 0: never."""

    @property
    def database(self) -> Database:
        return parse_url(self.url.get_secret_value())

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        parse_url(value.get_secret_value())
        return value

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            parsed = exp.to_table(value)
        except (SqlglotError, ValueError):
            parsed = None
        if parsed is None or parsed.args.get("catalog") is not None or not parsed.name:
            raise ValueError(f"table {value[:80]!r} must be a name or schema.name")
        return value

    @field_validator("lookback")
    @classmethod
    def _lookback(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise ValueError("lookback must not be negative")
        elif isinstance(value, str):
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SqlConfig:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table or query")
        if self.query is not None:
            check_query(self.query, self.database.dialect)
        if self.strategy == "incremental" and self.cursor is None:
            raise ValueError("strategy incremental needs cursor (the column that orders changes)")
        if self.strategy == "full" and (self.cursor is not None or self.lookback is not None):
            raise ValueError("cursor and lookback are for strategy incremental; full reads all")
        if self.strategy == "cdc":
            return self._cdc()
        cdc_only = {"slot", "publication", "lag_warn_bytes", "lag_warn_seconds", "heartbeat_bytes"}
        if given := sorted(cdc_only & self.model_fields_set):
            raise ValueError(f"{', '.join(given)} are for strategy cdc")
        if self.deletes is not None and self.deletes.detect != "keys":
            raise ValueError(
                "a sql source with strategy full or incremental detects deletes by keys"
            )
        return self

    def _cdc(self) -> SqlConfig:
        """``strategy: cdc``: PostgreSQL, a table, deletes from the log."""
        if self.database.dialect != "postgres":
            raise ValueError(
                "strategy cdc reads PostgreSQL's logical replication; a SQLite database has "
                "none (use strategy full or incremental)"
            )
        if self.table is None:
            raise ValueError("strategy cdc needs table (schema.name), not query")
        if self.cursor is not None or self.lookback is not None:
            raise ValueError("cursor and lookback are for strategy incremental; cdc reads the log")
        deletes = self.deletes
        if deletes is not None and "detect" in deletes.model_fields_set and deletes.detect != "log":
            raise ValueError(
                "strategy cdc reads deletes from the log: write deletes: {action: soft} or "
                "{action: hard} (detect: log)"
            )
        return self

    def secrets(self) -> frozenset[str]:
        password = self.database.password
        return frozenset({password} if password else set())

    def lookback_for(self, kind: Literal["time", "integer"]) -> int:
        """The lookback in the cursor's unit: µs for a time, values for an integer."""
        value = self.lookback
        if value is None:
            return 0
        if kind == "integer":
            if not isinstance(value, int):
                raise ValueError(
                    f"lookback {value!r} is a duration, but cursor {self.cursor!r} is an "
                    "integer: give a count of values (lookback: 1000)"
                )
            return value
        if not isinstance(value, str):
            raise ValueError(
                f"lookback {value} is a count, but cursor {self.cursor!r} is a time: give a "
                "duration (lookback: 10 minutes)"
            )
        return parse_duration(value) // timedelta(microseconds=1)
