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

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from weir import layout
from weir.errors import SourceError
from weir.sources.base import SourceContext, conform
from weir.sources.problems import Problem, line_problem
from weir.sources.sql import pgoutput
from weir.sources.sql.pgoutput import UNCHANGED, Relation, Value

_SHORT_ZONE = r"([+-]\d\d)$"
"""A zone of hours only (``+02``), which the timestamp parser reads as ``+02:00``."""


@dataclass
class Pending:
    """Change events collected row by row (values in the contract's column order), not yet
    turned into a batch; the rows of complete transactions first (``lsn`` and ``committed``
    are set for those only)."""

    width: int
    rows: list[list[Value]] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    tx_id: list[int | None] = field(default_factory=list)
    lsn: list[int] = field(default_factory=list)
    committed: list[int | None] = field(default_factory=list)
    toasted: list[tuple[int, str]] = field(default_factory=list)
    """(row, column) of unchanged TOASTed values that could not be filled."""

    def __len__(self) -> int:
        return len(self.ops)

    def truncate_to(self, rows: int) -> None:
        del self.rows[rows:], self.ops[rows:], self.seq[rows:], self.tx_id[rows:]
        self.toasted = [(r, c) for r, c in self.toasted if r < rows]

    def seal(self, lsn: int, committed_us: int) -> None:
        """The rows not sealed yet belong to the transaction that just committed."""
        open_rows = len(self.ops) - len(self.lsn)
        self.lsn.extend([lsn] * open_rows)
        self.committed.extend([committed_us] * open_rows)

    def columns(self) -> list[tuple[Value, ...]]:
        if not self.rows:
            return [() for _ in range(self.width)]
        return list(zip(*self.rows, strict=True))


@dataclass(frozen=True)
class _Ours:
    """How the columns of one of our table's Relation messages land in the contract's order."""

    relation: Relation
    index: tuple[int, ...]
    """Per contract column, its position in the message's tuples (``-1``: not sent)."""

    def image(self, values: pgoutput.Tuple) -> list[Value]:
        """A tuple's values in the contract's order (NULL where the log sends no column)."""
        return [values[i] if i >= 0 else None for i in self.index]


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
        self.names = tuple(schema.names)
        self.ours: dict[int, _Ours] = {}
        """Our table's relations by id (the other tables' changes are skipped)."""
        self.pending = Pending(len(self.names))
        self.reached = committed
        """The end LSN of the last transaction read (the position once they are in bronze)."""
        self.last_commit_us: int | None = None
        self.rows = 0
        self._xid: int | None = None
        self._start = 0
        self._seq = 0

    def feed_chunk(self, messages: pa.Array) -> Iterator[pa.RecordBatch]:
        """The messages of one binary column, in order. Begin, Commit and changes are read
        in place from the column's buffer (the hot path: no object per message); the rare
        others go through :func:`pgoutput.decode`."""
        data, offsets = _buffers(messages)
        kinds = pgoutput.KINDS
        for i in range(len(messages)):
            at, end = offsets[i], offsets[i + 1]
            kind = data[at] if end > at else 0
            try:
                if kind in kinds:
                    oid, new, old, old_is_key = pgoutput.change_at(data, at, end)
                    ours = self.ours.get(oid)
                    if ours is not None:
                        self._change(kinds[kind], ours, new, old, old_is_key)
                    continue
                if kind == 0x42 and end - at == 1 + pgoutput.BEGIN.size:  # 'B'
                    _final_lsn, _committed, xid = pgoutput.BEGIN.unpack_from(data, at + 1)
                    self._begin(xid)
                    continue
                if kind == 0x43 and end - at == 1 + pgoutput.COMMIT.size:  # 'C'
                    _flags, _lsn, end_lsn, committed = pgoutput.COMMIT.unpack_from(data, at + 1)
            except (struct.error, IndexError) as exc:
                raise pgoutput.DecodeError(
                    f"malformed pgoutput message {chr(kind)!r}: {exc}"
                ) from None
            if kind == 0x43 and end - at == 1 + pgoutput.COMMIT.size:
                yield from self._commit(end_lsn, committed)
            else:
                yield from self.feed(data[at:end])

    def feed(self, data: bytes) -> Iterator[pa.RecordBatch]:
        """One message, decoded whole."""
        message = pgoutput.decode(data)
        if isinstance(message, pgoutput.Begin):
            self._begin(message.xid)
        elif isinstance(message, pgoutput.Relation):
            self._relation(message)
        elif isinstance(message, pgoutput.Change):
            ours = self.ours.get(message.relation)
            if ours is not None:
                kind, new, old = message.kind, message.new, message.old
                self._change(kind, ours, new, old, message.old_is_key)
        elif isinstance(message, pgoutput.Truncate):
            if any(oid in self.ours for oid in message.relations):
                self._add("truncate", [None] * len(self.names))
        elif isinstance(message, pgoutput.Commit):
            yield from self._commit(message.end_lsn, message.committed_us)

    def _relation(self, relation: Relation) -> None:
        if (relation.schema, relation.name) != self.table:
            self.ours.pop(relation.oid, None)
            return
        at = {c.name: i for i, c in enumerate(relation.columns)}
        index = tuple(at.get(name, -1) for name in self.names)
        self.ours[relation.oid] = _Ours(relation, index)

    def _begin(self, xid: int) -> None:
        self._xid, self._start, self._seq = xid, len(self.pending), 0

    def _add(self, op: str, row: list[Value]) -> None:
        pending = self.pending
        if UNCHANGED in row:
            at = len(pending)
            for j, value in enumerate(row):
                if value is UNCHANGED:
                    pending.toasted.append((at, self.names[j]))
                    row[j] = None
        pending.rows.append(row)
        pending.ops.append(op)
        pending.seq.append(self._seq)
        pending.tx_id.append(self._xid)
        self._seq += 1

    def _change(
        self,
        kind: str,
        ours: _Ours,
        new: pgoutput.Tuple | None,
        old: pgoutput.Tuple | None,
        old_is_key: bool,
    ) -> None:
        width = len(ours.relation.columns)
        for values in (new, old):
            if values is not None and len(values) != width:
                raise pgoutput.DecodeError(
                    f"a {kind} of {len(values)} values for a relation of {width} columns"
                )
        if kind == "delete":
            self._add("delete", ours.image(old) if old is not None else [None] * len(self.names))
            return
        assert new is not None
        if old is not None:
            if old_is_key:  # the key changed: the old key's row is gone
                self._add("delete", ours.image(old))
            else:  # REPLICA IDENTITY FULL: the old row has the unchanged TOASTed values
                new = [old[i] if v is UNCHANGED else v for i, v in enumerate(new)]
        self._add(kind, ours.image(new))

    def _commit(self, end_lsn: int, committed_us: int) -> Iterator[pa.RecordBatch]:
        pending = self.pending
        if end_lsn <= self.committed:  # in bronze already
            pending.truncate_to(self._start)
        else:
            pending.seal(end_lsn, committed_us)
            self.reached = max(self.reached, end_lsn)
            if len(pending) > self._start:
                self.last_commit_us = committed_us
        self._xid = None
        if len(pending) >= self.chunk_rows:
            yield self.flush()

    def flush(self) -> pa.RecordBatch:
        """The pending events of complete transactions as one batch."""
        pending, self.pending = self.pending, Pending(len(self.names))
        pending.truncate_to(len(pending.lsn))  # an unfinished transaction is not read yet
        columns = pending.columns()
        arrays = [_array(v, f) for v, f in zip(columns, self.schema, strict=True)]
        raw = pa.RecordBatch.from_arrays(arrays, names=list(self.names))
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


def _buffers(messages: pa.Array) -> tuple[bytes, list[int]]:
    """A binary column's bytes and its messages' offsets into them."""
    if messages.null_count:
        raise pgoutput.DecodeError("a NULL pgoutput message")
    if not len(messages):
        return b"", [0]
    _validity, offset_buffer, data_buffer = messages.buffers()
    width = pa.int64() if pa.types.is_large_binary(messages.type) else pa.int32()
    count, first = len(messages) + 1, messages.offset
    starts = pa.Array.from_buffers(width, first + count, [None, offset_buffer])
    offsets = starts.slice(first, count).to_pylist()
    base = offsets[0]
    data = data_buffer.slice(base, offsets[-1] - base).to_pybytes() if data_buffer else b""
    return data, [o - base for o in offsets]


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


def _array(values: Sequence[Value], fld: pa.Field) -> pa.Array:
    """pgoutput's text of one column (UTF-8 bytes or None), in the form the contract's rule
    reads."""
    dtype = fld.type
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return pa.array([_bytea(v) for v in values], pa.binary())
    try:
        texts = pa.array(values, pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        raise SourceError(
            f"a change holds a value of column {fld.name} that is not UTF-8",
            hint="weir reads databases whose encoding is UTF8 (SHOW server_encoding)",
        ) from None
    if pa.types.is_boolean(dtype):
        spelled = pc.if_else(pc.equal(texts, "f"), "false", texts)
        return pc.if_else(pc.equal(texts, "t"), "true", spelled)
    if pa.types.is_timestamp(dtype) and dtype.tz is not None:
        return pc.replace_substring_regex(texts, pattern=_SHORT_ZONE, replacement=r"\1:00")
    return texts


def _bytea(text: Value) -> bytes | None:
    if not isinstance(text, bytes):
        return None
    if not text.startswith(b"\\x"):
        raise SourceError(
            "a bytea value is not in hex output (bytea_output = escape)",
            hint="SET bytea_output = 'hex' for the url's user (the default)",
        )
    try:
        return bytes.fromhex(text[2:].decode("ascii"))
    except ValueError:
        raise pgoutput.DecodeError("a bytea value is not hexadecimal") from None
