"""The publication and the logical replication slot of a ``strategy: cdc`` pipeline.

Control statements go through psycopg 3 (a dev dependency and what the ``postgres`` extra
brings for cdc): ``SHOW wal_level``, the publication, the slot's state, its advance and the
lag. The slot is created on a *replication* connection (``replication=database``) with
``CREATE_REPLICATION_SLOT … LOGICAL pgoutput (SNAPSHOT 'export')``: PostgreSQL returns the
slot's consistent point and the name of a snapshot that sees exactly the transactions
committed before it. Another connection imports it (``SET TRANSACTION SNAPSHOT``) in a
``REPEATABLE READ`` transaction and reads the table: every transaction is then either in
that read or in the slot's stream, never both, never neither. SQL's
``pg_create_logical_replication_slot`` exports no snapshot, so it cannot give that.

The exported snapshot lives while the replication connection is idle and open: the
:meth:`Slot.create` context keeps it open until the snapshot read has imported it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, NoReturn

from weir.errors import SourceError
from weir.sources.sql.config import Database
from weir.sources.sql.connection import EXTRA, translate
from weir.sources.sql.pgoutput import lsn_text, parse_lsn

PRIVILEGES = (
    "the url's user needs the REPLICATION attribute (or superuser) for the slot, and to own "
    "the table (or CREATE on the database) for the publication"
)


@dataclass(frozen=True)
class SlotState:
    confirmed: int
    """``confirmed_flush_lsn``: the slot sends no transaction that committed before it."""
    plugin: str | None
    database: str | None


class Slot:
    """One pipeline's slot and publication on one database (a psycopg connection)."""

    def __init__(self, database: Database, where: str, slot: str, publication: str, table: str):
        self.database, self.where = database, where
        self.name, self.publication, self.table = slot, publication, table
        self.database_name = database.name.rsplit("/", 1)[-1]
        try:
            import psycopg
        except ImportError:
            raise SourceError(
                "strategy cdc needs psycopg 3, which is not installed",
                where=where,
                hint=f"install the extra: {EXTRA}",
            ) from None
        self._psycopg = psycopg
        self._con: Any = None

    # ------------------------------------------------------------ connections
    @property
    def con(self) -> Any:
        if self._con is None:
            self._con = self._connect()
        return self._con

    def _connect(self, **options: Any) -> Any:
        try:
            return self._psycopg.connect(self.database.url, autocommit=True, **options)
        except self._psycopg.Error as exc:
            self.fail(exc, "connecting")

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            with suppress(self._psycopg.Error):
                con.close()

    def _one(self, sql: str, params: tuple[object, ...] = ()) -> Any:
        try:
            return self.con.execute(sql, params).fetchone()
        except self._psycopg.Error as exc:
            self.fail(exc, "preparing change data capture")

    def fail(self, exc: Exception, doing: str) -> NoReturn:
        raise translate(self.database, self.where, exc, doing, hint=PRIVILEGES) from None

    # ------------------------------------------------------------ checks and setup
    def check_wal_level(self) -> None:
        (level,) = self._one("SHOW wal_level")
        if level != "logical":
            raise SourceError(
                f"the database's wal_level is {level!r}, but strategy cdc needs wal_level "
                "'logical'",
                where=self.where,
                hint="set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level "
                "= logical), make sure max_replication_slots and max_wal_senders are at least "
                "1, and restart the server",
            )

    def ensure_publication(self) -> None:
        """The publication exists and holds the table (created or extended when not)."""
        sql = self._psycopg.sql
        schema, _, name = self._qualified()
        found = self._one("SELECT 1 FROM pg_publication WHERE pubname = %s", (self.publication,))
        target = sql.Identifier(schema, name)
        publication = sql.Identifier(self.publication)
        if found is None:
            statement = sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(publication, target)
        else:
            holds = self._one(
                "SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s "
                "AND tablename = %s",
                (self.publication, schema, name),
            )
            if holds is not None:
                return
            statement = sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(publication, target)
        try:
            self.con.execute(statement)
        except self._psycopg.Error as exc:
            self.fail(exc, f"creating publication {self.publication}")

    def _qualified(self) -> tuple[str, str, str]:
        schema, dot, name = self.table.rpartition(".")
        return (schema or "public"), dot, name

    def state(self) -> SlotState | None:
        row = self._one(
            "SELECT confirmed_flush_lsn::text, plugin, database FROM pg_replication_slots "
            "WHERE slot_name = %s",
            (self.name,),
        )
        if row is None:
            return None
        confirmed, plugin, database = row
        return SlotState(parse_lsn(confirmed) if confirmed else 0, plugin, database)

    @contextmanager
    def create(self) -> Iterator[tuple[int, str]]:
        """Create the slot; yields ``(consistent point, exported snapshot name)``, valid
        until the block ends."""
        replication = self._connect(replication="database")
        try:
            try:
                row = replication.execute(
                    f"CREATE_REPLICATION_SLOT \"{self.name}\" LOGICAL pgoutput (SNAPSHOT 'export')"
                ).fetchone()
            except self._psycopg.Error as exc:
                self.fail(exc, f"creating replication slot {self.name}")
            _name, consistent, snapshot, _plugin = row
            yield parse_lsn(consistent), snapshot
        finally:
            with suppress(self._psycopg.Error):
                replication.close()

    def drop(self) -> None:
        self._one("SELECT pg_drop_replication_slot(%s)", (self.name,))

    def advance(self, lsn: int) -> None:
        """Let the server recycle the WAL before ``lsn``: the changes up to it are in bronze."""
        self._one("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.name, lsn_text(lsn)))

    def lag_bytes(self, reached: int) -> int:
        """WAL bytes the slot retains once it is advanced to ``reached``."""
        return max(0, self.flushed() - reached)

    def flushed(self) -> int:
        """Where the server's WAL is flushed to: every transaction that committed before
        lies below it, and logical decoding reads no further."""
        (current,) = self._one("SELECT pg_current_wal_flush_lsn()::text")
        return parse_lsn(current)
