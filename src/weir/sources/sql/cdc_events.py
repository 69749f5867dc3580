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

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from weir import layout
from weir.errors import SourceError
from weir.sources.base import SourceContext, conform
from weir.sources.problems import Problem, line_problem
from weir.sources.sql import pgoutput
from weir.sources.sql import pgoutput_columns as columns
from weir.sources.sql.pgoutput import Relation

_SHORT_ZONE = r"([+-]\d\d)$"
"""A zone of hours only (``+02``), which the timestamp parser reads as ``+02:00``."""


@dataclass(frozen=True)
class Piece:
    """Change events in the contract's column order (values still pgoutput's text), not yet a
    batch: part of one transaction, or of several that committed (``lsn`` and ``committed``
    set: sealed)."""

    values: list[pa.Array]
    op: pa.Array
    seq: pa.Array
    tx_id: pa.Array
    toasted: pa.Array | None
    """Per row, the columns left as unchanged TOASTed values, NUL-separated (or NULL)."""
    lsn: pa.Array | None = None
    committed: pa.Array | None = None
    """Commit times, µs since 2000."""

    def __len__(self) -> int:
        return len(self.op)

    def filter(self, mask: pa.Array) -> Piece:
        def keep(array: pa.Array | None) -> pa.Array | None:
            return None if array is None else pc.filter(array, mask)

        return Piece(
            [pc.filter(v, mask) for v in self.values],
            pc.filter(self.op, mask),
            pc.filter(self.seq, mask),
            pc.filter(self.tx_id, mask),
            keep(self.toasted),
            keep(self.lsn),
            keep(self.committed),
        )

    def sealed(self, lsn: pa.Array, committed: pa.Array) -> Piece:
        return dataclasses.replace(self, lsn=lsn, committed=committed)


@dataclass(frozen=True)
class _Ours:
    """How the columns of one of our table's Relation messages land in the contract's order."""

    relation: Relation
    index: tuple[int, ...]
    """Per contract column, its position in the message's tuples (``-1``: not sent)."""


@dataclass(frozen=True)
class _Rows:
    """Our table's rows in a run of messages, in log order."""

    values: list[pa.Array]
    """Per contract column."""
    op: pa.Array
    message: pa.Array
    """The index in the run of the message each row comes from."""
    toasted: pa.Array | None


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
        self.sealed: list[Piece] = []
        """Events of committed transactions, not flushed yet."""
        self.open: list[Piece] = []
        """Events of the transaction not committed yet (its Commit is in a later chunk)."""
        self.reached = committed
        """The end LSN of the last transaction read (the position once they are in bronze)."""
        self.last_commit_us: int | None = None
        self.rows = 0
        self._xid: int | None = None
        self._seq = 0
        """The open transaction's xid, and how many of our events it holds."""

    @property
    def pending(self) -> int:
        """Events of committed transactions not flushed yet."""
        return sum(len(piece) for piece in self.sealed)

    def feed_chunk(self, messages: pa.Array) -> Iterator[pa.RecordBatch]:
        """The messages of one binary column, in order. Runs of Begin, Commit and changes
        are read a column at a time (:mod:`weir.sources.sql.pgoutput_columns`); the rare
        others one by one, between the runs."""
        chunk = columns.Chunk(messages)
        ordinary = pc.is_in(chunk.kinds, _ORDINARY)
        start = 0
        for rare in pc.indices_nonzero(pc.invert(ordinary)).to_pylist():
            yield from self._run(chunk, start, rare)
            at, end = chunk.starts[rare].as_py(), chunk.ends[rare].as_py()
            self._rare(chunk.buffer[at:end].to_pybytes())
            start = rare + 1
        yield from self._run(chunk, start, chunk.count)

    def feed(self, data: bytes) -> Iterator[pa.RecordBatch]:
        """One message."""
        yield from self.feed_chunk(pa.array([data], pa.binary()))

    def _rare(self, data: bytes) -> None:
        message = pgoutput.decode(data)
        if isinstance(message, pgoutput.Relation):
            self._relation(message)
        elif isinstance(message, pgoutput.Truncate) and any(
            oid in self.ours for oid in message.relations
        ):
            op = pa.array(["truncate"], pa.string())
            seq, xid = pa.array([self._seq], pa.int64()), pa.array([self._xid], pa.int64())
            self.open.append(Piece([_NOTHING] * len(self.names), op, seq, xid, None))
            self._seq += 1

    def _relation(self, relation: Relation) -> None:
        if (relation.schema, relation.name) != self.table:
            self.ours.pop(relation.oid, None)
            return
        at = {c.name: i for i, c in enumerate(relation.columns)}
        index = tuple(at.get(name, -1) for name in self.names)
        self.ours[relation.oid] = _Ours(relation, index)

    def _run(self, chunk: columns.Chunk, lo: int, hi: int) -> Iterator[pa.RecordBatch]:
        """Messages ``lo`` to ``hi`` of ``chunk``: Begins, Commits and changes only.

        Transaction 0 is the one open before the run (carried from an earlier chunk), the
        run's *n*-th Begin opens transaction *n*; a Commit closes the transaction open at it.
        """
        if hi <= lo:
            return
        kinds = chunk.kinds.slice(lo, hi - lo)
        starts, ends = chunk.starts.slice(lo, hi - lo), chunk.ends.slice(lo, hi - lo)
        sizes = pc.subtract(ends, starts)
        begins, commits = pc.equal(kinds, columns.BEGIN), pc.equal(kinds, columns.COMMIT)
        for marks, size, name in ((begins, BEGIN_SIZE, "Begin"), (commits, COMMIT_SIZE, "Commit")):
            if pc.any(pc.and_(marks, pc.not_equal(sizes, size))).as_py():
                raise pgoutput.DecodeError(f"a {name} message that is not {size} bytes")
        txn = pc.cumulative_sum(begins.cast(pa.int64()))
        xids = chunk.uint(pc.add(pc.filter(starts, begins), 17), 4).cast(pa.int64())
        at = pc.filter(starts, commits)
        end_lsn, committed_us = chunk.int64(pc.add(at, 10)), chunk.int64(pc.add(at, 18))
        closing = pc.filter(txn, commits)
        """The transaction each Commit closes."""
        carried = bool(self.open)
        rows = self._rows(chunk, kinds, starts, ends)

        # the carried transaction commits at the run's first Commit, if that one closes it
        if len(closing) and closing[0].as_py() == 0:
            lsn, at_us = end_lsn[0], committed_us[0]
            if lsn.as_py() > self.committed:
                for piece in self.open:
                    n = len(piece)
                    sealed = piece.sealed(_repeat(lsn, n), _repeat(at_us, n))
                    self.sealed.append(sealed)
            self.open = []
        elif carried and len(xids):
            raise pgoutput.DecodeError("a Begin before the open transaction's Commit")

        n_txn = len(xids)
        open_rows = 0
        if rows is not None:
            n = len(rows.op)
            row_txn = pc.take(txn, rows.message)
            previous = pa.concat_arrays([pa.array([-1], pa.int64()), row_txn.slice(0, n - 1)])
            index = columns.arange(n)
            first = pc.if_else(pc.not_equal(row_txn, previous), index, pa.scalar(None, pa.int64()))
            seq = pc.subtract(index, pc.fill_null_forward(first))
            seq = pc.add(seq, pc.if_else(pc.equal(row_txn, 0), self._seq, 0))
            by_txn = pa.concat_arrays([pa.array([self._xid], pa.int64()), xids])
            piece = Piece(rows.values, rows.op, seq, pc.take(by_txn, row_txn), rows.toasted)
            commit = pc.index_in(row_txn, value_set=closing)
            lsn, at_us = pc.take(end_lsn, commit), pc.take(committed_us, commit)
            sealed = piece.sealed(lsn, at_us)
            new = pc.greater(lsn, self.committed)
            if pc.any(new).as_py():
                self.sealed.append(sealed.filter(new))
            still_open = pc.is_null(lsn)
            open_rows = pc.sum(still_open.cast(pa.int64())).as_py() or 0
            if open_rows:
                if not pc.all(pc.equal(pc.filter(row_txn, still_open), n_txn)).as_py():
                    raise pgoutput.DecodeError("changes of a transaction that never committed")
                self.open.append(piece.filter(still_open))

        # where the run leaves the open transaction
        if len(closing) and closing[-1].as_py() == n_txn:
            self._xid, self._seq = None, 0
        elif n_txn:
            self._xid, self._seq = xids[-1].as_py(), open_rows
        else:
            self._seq += open_rows

        new_commits = pc.greater(end_lsn, self.committed)
        if pc.any(new_commits).as_py():
            self.reached = max(self.reached, pc.max(end_lsn).as_py())
            with_rows = [0] if carried else []
            if rows is not None:
                with_rows += pc.unique(pc.take(txn, rows.message)).to_pylist()
            ours = pc.and_(new_commits, pc.is_in(closing, pa.array(with_rows, pa.int64())))
            if pc.any(ours).as_py():
                self.last_commit_us = pc.filter(committed_us, ours)[-1].as_py()
        if self.pending >= self.chunk_rows:
            yield self.flush()

    def _rows(
        self,
        chunk: columns.Chunk,
        kinds: pa.Array,
        starts: pa.Array,
        ends: pa.Array,
    ) -> _Rows | None:
        """Our table's change events in a run (its messages' kinds and bounds)."""
        changes = pc.indices_nonzero(pc.is_in(kinds, columns.CHANGES)).cast(pa.int64())
        if not len(changes) or not self.ours:
            return None
        at, end = pc.take(starts, changes), pc.take(ends, changes)
        if not pc.all(pc.greater_equal(pc.subtract(end, at), 8)).as_py():
            raise pgoutput.DecodeError("a change message shorter than its header")
        oids = chunk.uint(pc.add(at, 1), 4).cast(pa.int64())
        groups = []
        for oid, ours in self.ours.items():
            mine = pc.equal(oids, oid)
            if pc.any(mine).as_py():
                bounds = pc.filter(at, mine), pc.filter(end, mine)
                groups.append(self._decode(chunk, ours, *bounds, pc.filter(changes, mine)))
        if not groups:
            return None
        if len(groups) == 1:
            return groups[0]
        order = pc.sort_indices(pa.concat_arrays([g.message for g in groups]))  # stable

        def merged(arrays: list[pa.Array]) -> pa.Array:
            return pc.take(pa.concat_arrays(arrays), order)

        toasted = None
        if any(g.toasted is not None for g in groups):
            toasted = merged([_or_nulls(g.toasted, len(g.op)) for g in groups])
        return _Rows(
            [merged([g.values[j] for g in groups]) for j in range(len(self.names))],
            merged([g.op for g in groups]),
            merged([g.message for g in groups]),
            toasted,
        )

    def _decode(
        self, chunk: columns.Chunk, ours: _Ours, at: pa.Array, end: pa.Array, messages: pa.Array
    ) -> _Rows:
        """The events of one relation's change messages (bounds ``at``, ``end``; indices
        in the run ``messages``), in the contract's columns."""
        found = columns.read_changes(chunk, at, end, messages, len(ours.relation.columns))
        rows = len(found.op)
        image = [found.values[i] if i >= 0 else pa.nulls(rows, pa.binary()) for i in ours.index]
        toasted = None
        for name, i in zip(self.names, ours.index, strict=True):
            unchanged = pc.equal(found.markers[i], columns.UNCHANGED) if i >= 0 else None
            if unchanged is not None and pc.any(unchanged).as_py():
                mark = pc.if_else(unchanged, name, pa.scalar(None, pa.string()))
                toasted = mark if toasted is None else _joined(toasted, mark)
        return _Rows(image, found.op, found.message, toasted)

    def flush(self) -> pa.RecordBatch:
        """The events of committed transactions not flushed yet, as one batch."""
        pieces, self.sealed = self.sealed, []
        names = self.names
        if pieces:
            values = [pa.concat_arrays([p.values[j] for p in pieces]) for j in range(len(names))]
        else:
            values = [pa.array([], pa.binary()) for _ in names]

        def joined(part: Callable[[Piece], pa.Array | None], dtype: pa.DataType) -> pa.Array:
            arrays = [_or_nulls(part(p), len(p)) for p in pieces]
            return pa.concat_arrays(arrays).cast(dtype) if arrays else pa.array([], dtype)

        arrays = [_array(v, f) for v, f in zip(values, self.schema, strict=True)]
        raw = pa.RecordBatch.from_arrays(arrays, names=list(names))
        start = self.rows
        self.rows += raw.num_rows
        toasted = joined(lambda p: p.toasted, pa.string())
        problems = []
        if toasted.null_count < len(toasted):
            for row in pc.indices_nonzero(pc.is_valid(toasted)).to_pylist():
                for name in str(toasted[row].as_py()).split("\x00"):
                    problems.append(_toast_problem(row, name, start))
        committed = joined(lambda p: p.committed, pa.int64())
        return conform(
            raw,
            self.schema,
            where=self.where,
            context=self.context,
            label=lambda i: f"change {start + i + 1}",
            meta=change_columns(
                joined(lambda p: p.op, pa.string()),
                joined(lambda p: p.lsn, pa.int64()),
                joined(lambda p: p.seq, pa.int64()),
                joined(lambda p: p.tx_id, pa.int64()),
                pc.add(committed, pgoutput.UNIX_OFFSET_US),
            ),
            problems=problems,
        )


BEGIN_SIZE, COMMIT_SIZE = 1 + pgoutput.BEGIN.size, 1 + pgoutput.COMMIT.size
_ORDINARY = pa.array(
    [columns.BEGIN, columns.COMMIT, columns.INSERT, columns.UPDATE, columns.DELETE], pa.uint8()
)
"""The messages read a run at a time."""


_NOTHING = pa.nulls(1, pa.binary())


def _joined(first: pa.Array, second: pa.Array) -> pa.Array:
    """Column names per row, NUL-separated (NULL: none)."""
    return pc.binary_join_element_wise(first, second, "\x00", null_handling="skip")


def _repeat(value: pa.Scalar, count: int) -> pa.Array:
    return pa.repeat(value, count)


def _or_nulls(array: pa.Array | None, count: int) -> pa.Array:
    return pa.nulls(count, pa.string()) if array is None else array


def change_columns(
    ops: pa.Array | list[str],
    lsn: pa.Array | list[int],
    seq: pa.Array | list[int],
    tx_id: pa.Array | list[int | None],
    committed_unix_us: pa.Array | list[int | None],
) -> list[tuple[pa.Field, pa.Array]]:
    """The :data:`weir.layout.CHANGE` columns, in order."""
    values = [ops, lsn, seq, tx_id, committed_unix_us]
    fields = [column.field() for column in layout.CHANGE]
    return [
        (f, data.cast(f.type) if isinstance(data, pa.Array) else pa.array(data, type=f.type))
        for f, data in zip(fields, values, strict=True)
    ]


def _toast_problem(row: int, column: str, start: int) -> Problem:
    return line_problem(
        row,
        f"change {start + row + 1}",
        f"leaves column {column} as an unchanged TOASTed value, which the log does not carry "
        "(ALTER TABLE … REPLICA IDENTITY FULL makes PostgreSQL send it)",
    )


def _array(values: pa.Array, fld: pa.Field) -> pa.Array:
    """pgoutput's text of one column (binary, UTF-8), in the form the contract's rule
    reads."""
    dtype = fld.type
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return pa.array([_bytea(v) for v in values.to_pylist()], pa.binary())
    try:
        texts = values.cast(pa.string())
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


def _bytea(text: bytes | None) -> bytes | None:
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
