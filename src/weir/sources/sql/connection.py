"""Connections to the databases the SQL source reads, one class per dialect, same small shape.

- PostgreSQL through ADBC (``adbc-driver-postgresql``, the ``postgres`` extra): a statement
  without parameters streams as binary ``COPY … TO STDOUT`` straight into Arrow; one with
  parameters runs as a server-side cursor (``DECLARE … CURSOR`` with bound parameters, then
  ``FETCH FORWARD chunk_rows``), so memory stays bounded either way. A read runs in one
  ``REPEATABLE READ, READ ONLY`` transaction: one snapshot, and the server refuses writes.
- SQLite through Python's own ``sqlite3``: the file opened read-only, one read transaction,
  ``fetchmany(chunk_rows)``. Not ADBC's SQLite driver: it types a column by its first values
  and fails on a later value of another storage class (a NULL-only first batch, then text),
  which SQLite's dynamic typing makes common; weir types the values by the contract itself.

Driver errors become SourceErrors naming the database (``host:port/db`` or the file, never
the password) and what to try; unreachable servers are transient.
"""

from __future__ import annotations

import abc
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa

from weir.errors import SourceError, TransientSourceError
from weir.sources.sql.config import Database
from weir.sources.sql.types import from_rows, plain_batch

EXTRA = "pip install 'weir-pipelines[postgres]'"


class Connection(abc.ABC):
    """One open connection; :meth:`snapshot` groups reads into one consistent view."""

    def __init__(self, database: Database, where: str):
        self.database = database
        self.where = where
        """The database (and what is read) for messages: never the password."""

    @abc.abstractmethod
    def snapshot(self) -> Any:
        """A context manager: the reads inside it see one snapshot of the database."""

    @abc.abstractmethod
    def stream(
        self, sql: str, params: Sequence[object], chunk_rows: int, schema: pa.Schema | None
    ) -> Iterator[pa.RecordBatch]:
        """The rows of ``sql``, at most ``chunk_rows`` a batch. ``schema`` (the wanted
        columns' types) shapes SQLite's untyped values; PostgreSQL's come typed."""

    @abc.abstractmethod
    def columns(self, sql: str) -> pa.Schema:
        """The columns ``sql`` returns (names; types where the driver knows them)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def fail(self, exc: Exception, doing: str) -> NoReturn:
        raise translate(self.database, self.where, exc, doing) from None


def connect(database: Database, project_dir: str, where: str) -> Connection:
    if database.dialect == "sqlite":
        return SqliteConnection(database, project_dir, where)
    return PostgresConnection(database, where)


# ---------------------------------------------------------------- PostgreSQL
class PostgresConnection(Connection):
    def __init__(self, database: Database, where: str):
        super().__init__(database, where)
        try:
            import adbc_driver_postgresql.dbapi as dbapi
        except ImportError:
            raise SourceError(
                "reading PostgreSQL needs the ADBC PostgreSQL driver, which is not installed",
                where=where,
                hint=f"install the extra: {EXTRA}",
            ) from None
        self._dbapi = dbapi
        try:
            self._con = dbapi.connect(database.url, autocommit=True)
            with self._con.cursor() as cur:
                cur.execute("SET TimeZone = 'UTC'")  # naive bounds and values mean UTC
        except dbapi.Error as exc:
            self.fail(exc, "connecting")

    @contextmanager
    def snapshot(self, imported: str | None = None) -> Iterator[None]:
        """``imported``: the name of a snapshot another session exported (a replication
        slot's, for cdc), which this transaction then sees instead of its own."""
        self._execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            if imported is not None:
                self._execute(f"SET TRANSACTION SNAPSHOT '{imported}'")
            yield
        finally:
            self._execute("ROLLBACK")  # nothing was written: a read-only transaction

    def stream(
        self, sql: str, params: Sequence[object], chunk_rows: int, schema: pa.Schema | None
    ) -> Iterator[pa.RecordBatch]:
        if not params:  # binary COPY, straight into Arrow
            yield from self._copy(sql, chunk_rows)
            return
        self._execute(f"DECLARE weir_read NO SCROLL CURSOR FOR {sql}", params)
        try:
            while True:
                table = self._fetch(f"FETCH FORWARD {int(chunk_rows)} FROM weir_read")
                for batch in table.to_batches():
                    yield plain_batch(batch)
                if table.num_rows < chunk_rows:
                    return
        finally:
            self._execute("CLOSE weir_read", quiet=True)

    def columns(self, sql: str) -> pa.Schema:
        return plain_batch(self._fetch(f"SELECT * FROM ({sql}) AS weir_probe LIMIT 0")).schema

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            with suppress(self._dbapi.Error):
                con.close()

    def _copy(self, sql: str, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        try:
            cur = self._con.cursor()
            cur.execute(sql)
            reader = cur.fetch_record_batch()
        except self._dbapi.Error as exc:
            self.fail(exc, "reading")
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except (self._dbapi.Error, pa.ArrowException) as exc:
                    self.fail(exc, "reading")
                batch = plain_batch(batch)
                for start in range(0, batch.num_rows, chunk_rows):
                    yield batch.slice(start, chunk_rows)
        finally:
            cur.close()

    def _fetch(self, sql: str) -> Any:
        try:
            with self._con.cursor() as cur:
                cur.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
                cur.execute(sql)
                return cur.fetch_arrow_table()
        except self._dbapi.Error as exc:
            self.fail(exc, "reading")

    def _execute(self, sql: str, params: Sequence[object] = (), *, quiet: bool = False) -> None:
        try:
            with self._con.cursor() as cur:
                cur.execute(sql, parameters=list(params) or None)
        except self._dbapi.Error as exc:
            if not quiet:
                self.fail(exc, "reading")


# ---------------------------------------------------------------- SQLite
class SqliteConnection(Connection):
    def __init__(self, database: Database, project_dir: str, where: str):
        super().__init__(database, where)
        path = Path(database.path or "")
        self.path = path if path.is_absolute() else Path(project_dir) / path
        if not self.path.is_file():
            raise SourceError(
                f"the SQLite database {self.path} does not exist",
                where=where,
                hint="check the url's path (sqlite:///relative/to/the/project.db, or "
                "sqlite:////absolute/path.db)",
            )
        try:
            self._con: sqlite3.Connection | None = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
            )
        except sqlite3.Error as exc:
            self.fail(exc, "opening")
        # text that is not UTF-8 reaches the contract's rules as such, instead of failing here
        self._con.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")

    @property
    def con(self) -> sqlite3.Connection:
        assert self._con is not None, "the connection is closed"
        return self._con

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        self._run("BEGIN")
        try:
            yield
        finally:
            self._run("ROLLBACK")

    def stream(
        self, sql: str, params: Sequence[object], chunk_rows: int, schema: pa.Schema | None
    ) -> Iterator[pa.RecordBatch]:
        try:
            cur = self.con.execute(sql, list(params))
            names = [d[0] for d in cur.description]
            while rows := cur.fetchmany(chunk_rows):
                yield from_rows(rows, names, schema)
        except sqlite3.Error as exc:
            self.fail(exc, "reading")

    def columns(self, sql: str) -> pa.Schema:
        try:
            cur = self.con.execute(f"SELECT * FROM ({sql}) LIMIT 0")
        except sqlite3.Error as exc:
            self.fail(exc, "reading")
        return pa.schema([pa.field(d[0], pa.null()) for d in cur.description])

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()

    def _run(self, sql: str) -> None:
        try:
            self.con.execute(sql)
        except sqlite3.Error as exc:
            self.fail(exc, "reading")


# ---------------------------------------------------------------- errors
_TRANSIENT = re.compile(
    r"connection refused|could not connect|timeout|timed out|server closed the connection|"
    r"terminating connection|no route to host|database is locked|could not translate host",
    re.IGNORECASE,
)
_PRIVILEGES = r"permission denied|must be (superuser|owner)|replication role|not authorized"
_HINTS: tuple[tuple[str, str], ...] = (
    (
        r"password authentication failed|no password supplied|authentication failed",
        "check the user and the password in the url (its ${env:…} variable)",
    ),
    (r"database \".*\" does not exist", "check the database name at the end of the url"),
    (
        r"relation \".*\" does not exist|no such table",
        "check table: (schema.name) and that the user's search_path reaches it",
    ),
    (r"permission denied|not authorized", "GRANT SELECT on it to the url's user"),
    (r"column .* does not exist|no such column", "the contract names a column it does not have"),
)


def translate(
    database: Database, where: str, exc: Exception, doing: str, *, hint: str | None = None
) -> SourceError:
    """A driver error as a SourceError; ``hint`` is the caller's word on privileges."""
    text = _clean(str(exc), database.password)
    privileges = re.search(_PRIVILEGES, text, re.IGNORECASE)
    if hint is None or not privileges:
        hint = next((h for pattern, h in _HINTS if re.search(pattern, text, re.IGNORECASE)), None)
    if _TRANSIENT.search(text):
        return TransientSourceError(
            f"{doing} failed: {text}",
            where=where,
            hint=f"is the database at {database.name} running and reachable? then run again",
        )
    return SourceError(f"{doing} failed: {text}", where=where, hint=hint)


def _clean(text: str, password: str | None) -> str:
    """The driver's message without its prefixes, echoed SQL and line breaks; no password."""
    text = text.split("Query was:")[0]
    text = re.sub(r"^[A-Z_]+: (\[libpq\] )?", "", text.strip())
    text = re.sub(r"\s+", " ", re.sub(r"LINE \d+:.*", "", text)).strip().rstrip(".")
    if password:
        text = text.replace(password, "***")
    return text[:400]
