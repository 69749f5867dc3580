"""The SQL source: a table or query read in one snapshot, in chunks, into the contract's types.

``full`` reads every row each run; bronze keeps only the rows it does not hold yet
(:meth:`SqlExtraction.overlap` is ``(None, None)``), so a run with nothing changed makes no
table version. ``incremental`` reads ``cursor >= watermark − lookback`` ordered by the
cursor; the bound is inclusive, so rows sharing the watermark's value that were committed
after the last read are not lost, and those already delivered are skipped the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from weir.sources.base import Extraction, Position, Source, SourceContext, conform
from weir.sources.incremental import CursorKind, Watermark, describe, kind_of
from weir.sources.sql import cdc, reading
from weir.sources.sql.cdc_slot import Slot
from weir.sources.sql.config import Database, SqlConfig
from weir.sources.sql.connection import Connection, PostgresConnection, connect
from weir.spec.deletes import Deletes


class SqlSource(Source[SqlConfig]):
    """Reads PostgreSQL (ADBC) or SQLite (``sqlite3``). One connection, opened on first use,
    serves the probe and every extract attempt of a run until :meth:`close`."""

    kind = "sql"

    def __init__(self, config: SqlConfig, context: SourceContext):
        super().__init__(config, context)
        self.database: Database = config.database
        read = f"table {config.table}" if config.table is not None else "query"
        self.where = f"{self.database.dialect} {self.database.name} ({read})"
        """What is read, for messages: ``postgres host:5432/db (table public.orders)``."""
        self._connection: Connection | None = None
        self._slot_control: Slot | None = None

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = connect(self.database, self.context.project_dir, self.where)
        return self._connection

    def close(self) -> None:
        slot, self._slot_control = self._slot_control, None
        if slot is not None:
            slot.close()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    @classmethod
    def secrets(cls, config: Any) -> frozenset[str]:
        return config.secrets() if isinstance(config, SqlConfig) else frozenset()

    @classmethod
    def unreadable(cls, config: Any, schema: pa.Schema) -> str | None:
        if not isinstance(config, SqlConfig) or config.cursor is None:
            return None
        kind = cursor_kind(schema, config.cursor)
        if isinstance(kind, str) and kind not in ("time", "integer"):
            return kind
        try:
            config.lookback_for(kind)  # type: ignore[arg-type]
        except ValueError as exc:
            return str(exc)
        return None

    def probe(self, position: Position | None, schema: pa.Schema | None = None) -> pa.Schema:
        """The relation's columns: the contract's types for those it names (values are
        checked one by one as they are read), the driver's for new ones."""
        dialect = self.database.dialect
        found = self.connection.columns(reading.relation_sql(self.config, dialect))
        fields = []
        for fld in found:
            if schema is not None and fld.name in schema.names:
                fields.append(schema.field(fld.name))
            else:
                fields.append(fld.with_type(pa.string()) if pa.types.is_null(fld.type) else fld)
        return pa.schema(fields)

    @classmethod
    def emits_changes(cls, config: Any) -> bool:
        return isinstance(config, SqlConfig) and config.strategy == "cdc"

    @classmethod
    def deletes(cls, config: Any) -> Deletes | None:
        """cdc: the log's delete events, soft unless ``deletes: {action: hard}``."""
        if not cls.emits_changes(config):
            return super().deletes(config)
        given: Deletes | None = config.deletes
        return Deletes(detect="log", action=given.action if given is not None else "soft")

    def _slot(self, position: Position | None) -> Slot:
        assert self.config.table is not None
        slot, publication = cdc.names(self.config, position, self.context)
        return Slot(self.database, self.where, slot, publication, self.config.table)

    def committed(self, position: Position) -> None:
        """cdc: advance the slot to the LSN the bronze commit holds (the server may then
        recycle the WAL before it); the other strategies keep nothing outside the lake."""
        if not self.emits_changes(self.config) or "lsn" not in position:
            return
        slot = self._slot(position)
        try:
            state = slot.state()
            if state is not None and state.confirmed < int(position["lsn"]):
                slot.advance(int(position["lsn"]))
        finally:
            slot.close()

    def extract(self, position: Position | None, schema: pa.Schema) -> Extraction:
        config, dialect = self.config, self.database.dialect
        if config.strategy == "cdc":
            connection = self.connection
            assert isinstance(connection, PostgresConnection)
            if self._slot_control is not None:
                self._slot_control.close()
            self._slot_control = self._slot(position)
            return cdc.CdcExtraction(
                schema=schema,
                config=config,
                connection=connection,
                slot=self._slot_control,
                committed=position,
                where=self.where,
                context=self.context,
            )
        columns = list(schema.names)
        mark = None
        if config.strategy == "incremental":
            assert config.cursor is not None
            kind = cursor_kind(schema, config.cursor)
            assert kind in ("time", "integer"), kind
            lookback = config.lookback_for(kind)  # type: ignore[arg-type]
            mark = Watermark.start(kind, position, lookback=lookback)  # type: ignore[arg-type]
            statement = reading.since(
                config,
                dialect,
                columns,
                config.cursor,
                mark.kind,
                schema.field(config.cursor).type,
                mark.since,
            )
        else:
            statement = reading.full(config, dialect, columns)
        return SqlExtraction(
            schema=schema,
            connection=self.connection,
            statement=statement,
            chunk_rows=config.chunk_rows,
            where=self.where,
            context=self.context,
            cursor=config.cursor,
            mark=mark,
        )

    @classmethod
    def lists_keys(cls, config: Any) -> bool:
        return True

    def key_set(self, keys: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """Every key the relation holds now, in one snapshot, ``chunk_rows`` at a time."""
        statement = reading.keys(self.config, self.database.dialect, keys)
        connection, chunk = self.connection, self.config.chunk_rows

        def stream() -> Iterator[pa.RecordBatch]:
            with connection.snapshot():
                yield from connection.stream(statement.sql, statement.params, chunk, None)

        return stream()

    @staticmethod
    def describe(position: Position | None) -> str | None:
        if position and "lsn" in position:
            return cdc.describe(position)
        return describe(position)


def cursor_kind(schema: pa.Schema, cursor: str) -> CursorKind | str:
    """The cursor column's kind, or why it cannot be one (a message)."""
    if cursor not in schema.names:
        return f"cursor {cursor!r} is not a column of the contract (use its source-side name)"
    dtype = schema.field(cursor).type
    kind = kind_of(dtype)
    if kind is None or pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return (
            f"cursor {cursor!r} is {dtype} in the contract; use a timestamp, date or integer "
            "column that grows with every change"
        )
    return kind


@dataclasses.dataclass(kw_only=True)
class SqlExtraction(Extraction):
    """One snapshot read, streamed by :meth:`batches`; the watermark grows with each chunk."""

    connection: Connection
    statement: reading.Statement
    chunk_rows: int
    where: str
    context: SourceContext
    cursor: str | None
    mark: Watermark | None
    rows: int = 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        statement, connection = self.statement, self.connection
        with connection.snapshot():
            chunks = connection.stream(
                statement.sql, statement.params, self.chunk_rows, self.schema
            )
            for raw in chunks:
                start = self.rows
                batch = conform(
                    raw,
                    self.schema,
                    where=self.where,
                    context=self.context,
                    label=lambda i, start=start: f"row {start + i + 1}",  # type: ignore[misc]
                )
                self.rows += raw.num_rows
                if self.mark is not None and self.cursor is not None:
                    self.mark.advance(batch.column(self.cursor), self.cursor, self.where)
                if batch.num_rows:
                    yield batch

    def position(self) -> dict[str, Any]:
        return self.mark.position() if self.mark is not None else {}

    def watermark(self) -> str | None:
        return self.mark.text() if self.mark is not None else None

    def overlap(self) -> tuple[str | None, str | None]:
        """A full read repeats every row; an incremental one the rows at or after its bound."""
        if self.mark is None:
            return None, None
        return self.mark.overlap(self.cursor)
