"""Decoded pgoutput messages of one table as change-event batches (the contract's columns,
then :data:`weir.layout.CHANGE`).

- Every change of a transaction gets the transaction's *end* LSN as ``_lsn`` (what the slot's
  ``confirmed_flush_lsn`` becomes once it is in bronze: the slot never sends it again), its
  index in the transaction as ``_seq``, the xid as ``_tx_id`` and the commit time as
  ``_committed_at``. Snapshot rows carry the slot's consistent point, which is below every
  transaction the slot sends.
- A transaction is kept whole until its Commit; one that ended at or below the committed
  position (``end LSN <= committed``) is dropped: it is in bronze already.
- Values are pgoutput's text, mapped by the Relation message's column names, turned into the
  forms :mod:`weir.sources.parse` reads (``t``/``f`` booleans, ``+00`` zones, ``\\x`` bytea),
  then converted by :func:`weir.sources.base.conform` like every source's.
- An update that changed the key is a delete of the old key, then the update.
- An unchanged TOASTed value (a large value the update did not touch: the log does not carry
  it) is taken from the old row when the table has ``REPLICA IDENTITY FULL``; otherwise it is
  a parse problem of its row (quarantined or failing per ``on_parse_error``): weir never
  writes a guessed value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from weir import layout
from weir.errors import SourceError
from weir.sources.base import SourceContext, conform
from weir.sources.problems import Problem, line_problem
from weir.sources.sql import pgoutput
from weir.sources.sql.pgoutput import UNCHANGED, Relation, Value

_SHORT_ZONE = re.compile(r"[+-]\d\d$")


@dataclass
class Pending:
    """Change events collected column by column, not yet turned into a batch."""

    names: tuple[str, ...]
    values: list[list[Value]] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    lsn: list[int] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    tx_id: list[int | None] = field(default_factory=list)
    committed: list[int | None] = field(default_factory=list)
    toasted: list[tuple[int, str]] = field(default_factory=list)
    """(row, column) of unchanged TOASTed values that could not be filled."""

    def __post_init__(self) -> None:
        self.values = [[] for _ in self.names]

    def __len__(self) -> int:
        return len(self.ops)

    def add(self, op: str, image: dict[str, Value] | None, seq: int, xid: int | None) -> None:
        row = len(self.ops)
        for index, name in enumerate(self.names):
            value = image.get(name) if image is not None else None
            if value is UNCHANGED:
                self.toasted.append((row, name))
                value = None
            self.values[index].append(value)
        self.ops.append(op)
        self.seq.append(seq)
        self.tx_id.append(xid)
        self.lsn.append(0)
        self.committed.append(None)

    def truncate_to(self, rows: int) -> None:
        for values in self.values:
            del values[rows:]
        del self.ops[rows:], self.lsn[rows:], self.seq[rows:]
        del self.tx_id[rows:], self.committed[rows:]
        self.toasted = [(r, c) for r, c in self.toasted if r < rows]

    def seal(self, start: int, lsn: int, committed_us: int) -> None:
        for row in range(start, len(self.ops)):
            self.lsn[row] = lsn
            self.committed[row] = committed_us


class ChangeEvents:
    """Feeds pgoutput messages in, yields change-event batches of about ``chunk_rows``."""

    def __init__(
        self,
        schema: pa.Schema,
        table: tuple[str, str],
        committed: int,
        *,
        where: str,
        context: SourceContext,
        chunk_rows: int,
    ):
        self.schema, self.table, self.committed = schema, table, committed
        self.where, self.context, self.chunk_rows = where, context, chunk_rows
        self.relations: dict[int, Relation] = {}
        self.pending = Pending(tuple(schema.names))
        self.reached = committed
        """The end LSN of the last transaction read (the position once they are in bronze)."""
        self.last_commit_us: int | None = None
        self.rows = 0
        self._begin: pgoutput.Begin | None = None
        self._start = 0
        self._seq = 0

    def feed(self, data: bytes) -> Iterator[pa.RecordBatch]:
        message = pgoutput.decode(data)
        if isinstance(message, pgoutput.Begin):
            self._begin, self._start, self._seq = message, len(self.pending), 0
        elif isinstance(message, pgoutput.Relation):
            self.relations[message.oid] = message
        elif isinstance(message, pgoutput.Change):
            self._change(message)
        elif isinstance(message, pgoutput.Truncate):
            if any(self._ours(oid) for oid in message.relations):
                self._add("truncate", None)
        elif isinstance(message, pgoutput.Commit):
            yield from self._commit(message)

    def _ours(self, oid: int) -> Relation | None:
        relation = self.relations.get(oid)
        if relation is None or (relation.schema, relation.name) != self.table:
            return None
        return relation

    def _add(self, op: str, image: dict[str, Value] | None) -> None:
        xid = self._begin.xid if self._begin is not None else None
        self.pending.add(op, image, self._seq, xid)
        self._seq += 1

    def _change(self, change: pgoutput.Change) -> None:
        relation = self._ours(change.relation)
        if relation is None:
            return
        names = [c.name for c in relation.columns]
        old = dict(zip(names, change.old, strict=True)) if change.old is not None else None
        if change.kind == "delete":
            self._add("delete", old)
            return
        assert change.new is not None
        new = dict(zip(names, change.new, strict=True))
        if old is not None:
            if change.old_is_key:  # the key changed: the old key's row is gone
                self._add("delete", old)
            else:  # REPLICA IDENTITY FULL: the old row has the unchanged TOASTed values
                new = {n: old[n] if v is UNCHANGED else v for n, v in new.items()}
        self._add(change.kind, new)

    def _commit(self, commit: pgoutput.Commit) -> Iterator[pa.RecordBatch]:
        pending = self.pending
        if commit.end_lsn <= self.committed:  # in bronze already
            pending.truncate_to(self._start)
        else:
            pending.seal(self._start, commit.end_lsn, commit.committed_us)
            self.reached = max(self.reached, commit.end_lsn)
            if len(pending) > self._start:
                self.last_commit_us = commit.committed_us
        self._begin = None
        if len(pending) >= self.chunk_rows:
            yield self.flush()

    def flush(self) -> pa.RecordBatch:
        """The pending events of complete transactions as one batch."""
        pending, self.pending = self.pending, Pending(tuple(self.schema.names))
        arrays = [_array(v, f) for v, f in zip(pending.values, self.schema, strict=True)]
        raw = pa.RecordBatch.from_arrays(arrays, names=list(self.schema.names))
        start = self.rows
        self.rows += raw.num_rows
        problems = [_toast_problem(row, name, start) for row, name in pending.toasted]
        return conform(
            raw,
            self.schema,
            where=self.where,
            context=self.context,
            label=lambda i: f"change {start + i + 1}",
            meta=change_columns(
                pending.ops,
                pending.lsn,
                pending.seq,
                pending.tx_id,
                [None if us is None else pgoutput.unix_us(us) for us in pending.committed],
            ),
            problems=problems,
        )


def change_columns(
    ops: list[str],
    lsn: list[int],
    seq: list[int],
    tx_id: list[int | None],
    committed_unix_us: list[int | None],
) -> list[tuple[pa.Field, pa.Array]]:
    """The :data:`weir.layout.CHANGE` columns, in order."""
    values: list[list[object]] = [ops, lsn, seq, tx_id, committed_unix_us]  # type: ignore[list-item]
    return [
        (column.field(), pa.array(data, type=column.field().type))
        for column, data in zip(layout.CHANGE, values, strict=True)
    ]


def _toast_problem(row: int, column: str, start: int) -> Problem:
    return line_problem(
        row,
        f"change {start + row + 1}",
        f"leaves column {column} as an unchanged TOASTed value, which the log does not carry "
        "(ALTER TABLE … REPLICA IDENTITY FULL makes PostgreSQL send it)",
    )


def _array(values: list[Value], fld: pa.Field) -> pa.Array:
    """pgoutput's text of one column, in the form the contract's rule reads."""
    dtype = fld.type
    texts = [v if isinstance(v, str) else None for v in values]
    if pa.types.is_boolean(dtype):
        texts = [{"t": "true", "f": "false"}.get(v, v) if v else v for v in texts]
    elif pa.types.is_timestamp(dtype) and dtype.tz is not None:
        texts = [v + ":00" if v and _SHORT_ZONE.search(v) else v for v in texts]
    elif pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return pa.array([_bytea(v) for v in texts], pa.binary())
    return pa.array(texts, pa.string())


def _bytea(text: str | None) -> bytes | None:
    if text is None:
        return None
    if not text.startswith("\\x"):
        raise SourceError(
            "a bytea value is not in hex output (bytea_output = escape)",
            hint="SET bytea_output = 'hex' for the url's user (the default)",
        )
    return bytes.fromhex(text[2:])
