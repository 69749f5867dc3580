"""``strategy: cdc``: a PostgreSQL table's changes, read from a logical replication slot.

The first run creates the publication and the slot (:mod:`weir.sources.sql.cdc_slot`) and
reads the table in the snapshot the slot exported: ``snapshot`` events at the slot's
consistent point. Every later run peeks the slot's pending transactions
(``pg_logical_slot_peek_binary_changes``, pgoutput protocol 1, streamed as binary ``COPY``
in chunks) and yields their changes (:mod:`weir.sources.sql.cdc_events`).

The position is ``{"lsn": …, "slot": …, "publication": …}``: the end LSN of the last
transaction in bronze. A run that reads no change of the table while the server wrote
``heartbeat_bytes`` of WAL (other tables' changes) moves the position to the flushed LSN its
peek read up to, committed alone (:attr:`Extraction.keep_position`). Peeking consumes nothing; the slot is advanced to that LSN only after
the bronze commit holding it (:meth:`weir.sources.sql.source.SqlSource.committed`, the
engine's hook). On start:

- the slot behind the committed LSN: the process stopped between the commit and the advance;
  it is advanced first, and transactions at or below the committed LSN are dropped anyway;
- the slot ahead of it (someone advanced it) or gone: changes are lost; the run fails and
  says how to start again;
- no position yet but a slot: a first run stopped before its snapshot reached bronze; the slot
  is dropped and made again, with a new snapshot.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from weir import faults
from weir.errors import SourceError
from weir.sources.base import Extraction, Position, SourceContext, conform
from weir.sources.sql import reading
from weir.sources.sql.cdc_events import ChangeEvents, change_columns
from weir.sources.sql.cdc_slot import Slot, SlotState
from weir.sources.sql.config import SqlConfig
from weir.sources.sql.connection import PostgresConnection
from weir.sources.sql.pgoutput import DecodeError, lsn_text, unix_us

_NAME = re.compile(r"[^a-z0-9_]+")


def default_slot(context: SourceContext) -> str:
    """``weir_<project folder>_<pipeline>``, as a slot's name must be (a-z, 0-9, _, ≤ 63)."""
    folder = context.project_dir.rstrip("/").rsplit("/", 1)[-1]
    name = _NAME.sub("_", f"weir_{folder}_{context.pipeline}".lower())
    return name[:63]


def names(config: SqlConfig, position: Position | None, context: SourceContext) -> tuple[str, str]:
    """(slot, publication): the committed position's, else the config's, else the default."""
    slot = config.slot or default_slot(context)
    publication = config.publication or slot
    if position and "slot" in position:
        committed = (str(position["slot"]), str(position["publication"]))
        if (config.slot or committed[0], config.publication or committed[1]) != committed:
            raise SourceError(
                f"slot/publication changed from {committed[0]}/{committed[1]} to "
                f"{slot}/{publication}, but the changes since the last run are in "
                f"{committed[0]}",
                hint="put the old names back; to start over under the new ones, use a new "
                "pipeline name (a new snapshot)",
            )
        return committed
    return slot, publication


def describe(position: Position | None) -> str | None:
    if not position or "lsn" not in position:
        return None
    return f"lsn {lsn_text(int(position['lsn']))} (slot {position.get('slot')})"


@dataclasses.dataclass(kw_only=True)
class CdcExtraction(Extraction):
    """The initial snapshot, or the slot's pending changes, as change events."""

    config: SqlConfig
    connection: PostgresConnection
    slot: Slot
    committed: Position | None
    where: str
    context: SourceContext
    reached: int = 0
    rows: int = 0
    last_commit_us: int | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        slot = self.slot
        slot.check_wal_level()
        slot.ensure_publication()
        state = slot.state()
        if state is not None and state.database != slot.database_name:
            raise SourceError(
                f"replication slot {slot.name} belongs to database {state.database} "
                f"(or is not a logical slot), not to {slot.database_name}",
                where=self.where,
                hint="slot names are unique in the whole server: give this pipeline its own "
                "(extract.slot)",
            )
        if not self.committed or "lsn" not in self.committed:
            if state is not None:  # a first run stopped before its snapshot was committed
                slot.drop()
            yield from self._snapshot()
        else:
            committed = int(self.committed["lsn"])
            self._check(state, committed)
            yield from self._changes(committed)
        self._lag()

    def _check(self, state: SlotState | None, committed: int) -> None:
        slot = self.slot
        start_over = (
            f"to start over with a new snapshot, drop the slot (SELECT pg_drop_replication_slot"
            f"('{slot.name}')) if it exists and run the pipeline under a new name, or remove "
            "its bronze and silver tables"
        )
        if state is None:
            raise SourceError(
                f"replication slot {slot.name} is gone, but bronze holds changes up to "
                f"{lsn_text(committed)}: the changes since then are lost",
                where=self.where,
                hint=start_over,
            )
        if state.confirmed > committed:
            raise SourceError(
                f"replication slot {slot.name} was advanced to {lsn_text(state.confirmed)}, "
                f"past the {lsn_text(committed)} bronze holds: the changes in between are lost",
                where=self.where,
                hint=f"only weir should advance its slot; {start_over}",
            )
        if state.confirmed < committed:  # stopped between the bronze commit and the advance
            slot.advance(committed)

    def _snapshot(self) -> Iterator[pa.RecordBatch]:
        statement = reading.full(self.config, "postgres", list(self.schema.names))
        with self.slot.create() as (consistent, snapshot):
            self.reached = consistent
            with self.connection.snapshot(imported=snapshot):
                chunks = self.connection.stream(statement.sql, (), self.config.chunk_rows, None)
                for raw in chunks:
                    start, n = self.rows, raw.num_rows
                    self.rows += n
                    meta = change_columns(
                        ["snapshot"] * n, [consistent] * n, [0] * n, [None] * n, [None] * n
                    )
                    yield conform(
                        raw,
                        self.schema,
                        where=self.where,
                        context=self.context,
                        label=lambda i, start=start: f"row {start + i + 1}",  # type: ignore[misc]
                        meta=meta,
                    )

    def _changes(self, committed: int) -> Iterator[pa.RecordBatch]:
        schema_name, _, table = self.slot.table.rpartition(".")
        events = ChangeEvents(
            self.schema,
            (schema_name or "public", table),
            committed,
            where=self.where,
            context=self.context,
            chunk_rows=self.config.chunk_rows,
        )
        self.reached = committed
        upto = self.slot.flushed()  # what committed before this is read now, or never sent
        peek = (
            "SELECT data FROM pg_logical_slot_peek_binary_changes("
            f"'{self.slot.name}', '{lsn_text(upto)}', NULL, 'proto_version', '1', "
            f"'publication_names', '{self.slot.publication}')"
        )
        try:
            for chunk in self.connection.stream(peek, (), self.config.chunk_rows, None):
                for batch in events.feed_chunk(chunk.column(0)):
                    faults.point("cdc.read")
                    yield batch
        except DecodeError as exc:
            raise SourceError(
                f"slot {self.slot.name} sent a change weir cannot decode: {exc}",
                where=self.where,
                hint="nothing was written and the slot was not advanced; please report this "
                "with the PostgreSQL version (SELECT version())",
            ) from None
        if events.pending:
            yield events.flush()
        self.rows, self.reached = events.rows, events.reached
        self.last_commit_us = events.last_commit_us
        heartbeat = self.config.heartbeat_bytes
        if not self.rows and heartbeat and upto - committed >= heartbeat:
            # Nothing of this table committed up to ``upto`` (the slot sent every transaction
            # that did): the position may move there, and the slot with it, once it is in
            # bronze — else the server keeps all the WAL other tables write.
            self.reached, self.keep_position = max(upto, self.reached), True

    def _lag(self) -> None:
        config = self.config
        lag = self.slot.lag_bytes(self.reached)
        self.metrics["replication_lag_bytes"] = lag
        seconds = None
        if self.last_commit_us is not None:
            seconds = max(0.0, time.time() - unix_us(self.last_commit_us) / 1e6)
            self.metrics["replication_lag_seconds"] = round(seconds, 3)
        if lag > config.lag_warn_bytes:
            self.warnings.append(
                f"replication slot {self.slot.name} holds back {lag:,} bytes of WAL (more than "
                f"lag_warn_bytes {config.lag_warn_bytes:,}): the database keeps it on disk until "
                "weir reads it; run the pipeline more often, or drop the slot of a pipeline "
                "that no longer runs"
            )
        if seconds is not None and config.lag_warn_seconds and seconds > config.lag_warn_seconds:
            self.warnings.append(
                f"the last change read committed {seconds:,.0f} s ago (more than "
                f"lag_warn_seconds {config.lag_warn_seconds:g})"
            )

    def position(self) -> dict[str, Any]:
        return {"lsn": self.reached, "slot": self.slot.name, "publication": self.slot.publication}

    def watermark(self) -> str | None:
        return describe(self.position())
