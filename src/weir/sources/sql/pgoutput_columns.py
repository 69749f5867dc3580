"""pgoutput messages read a column at a time, in Arrow: the hot path of CDC.

A chunk of the slot's peek is one binary column of messages (their format:
:mod:`weir.sources.sql.pgoutput`). Rather than walking it message by message, each field is
read for all messages at once: the bytes at an array of positions (``take`` on the chunk's
buffer seen as ``uint8``), big-endian integers from them, and a tuple's values column by
column — the markers and lengths of column *j* give where column *j + 1* starts, in every
message together. A column's values become one binary array without a copy per value: its
(start, end) pairs, interleaved, are monotonic, so they are the offsets of an array over the
chunk's own buffer whose even elements are the values (the odd ones the bytes between), and
one ``take`` of the even elements copies them out.

Positions are checked before any array is built on them: a tuple must end inside its
message, so a short or malformed message is a :class:`DecodeError`, never a read of the
next message's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa
import pyarrow.compute as pc

from weir.sources.sql.pgoutput import DecodeError

TEXT, NULL, UNCHANGED = 0x74, 0x6E, 0x75
"""A tuple value's markers: ``t`` text, ``n`` NULL, ``u`` an unchanged TOASTed value."""
NEW, KEY, OLD = 0x4E, 0x4B, 0x4F
"""A change message's tuple markers: ``N`` new row, ``K`` old key, ``O`` old row."""
INSERT, UPDATE, DELETE = 0x49, 0x55, 0x44
BEGIN, COMMIT = 0x42, 0x43
CHANGES = pa.array([INSERT, UPDATE, DELETE], pa.uint8())


class Chunk:
    """A binary column of messages: its buffer as bytes, and each message's bounds."""

    def __init__(self, messages: pa.Array):
        if messages.null_count:
            raise DecodeError("a NULL pgoutput message")
        count = len(messages)
        _validity, offset_buffer, data_buffer = messages.buffers()
        width = pa.int64() if pa.types.is_large_binary(messages.type) else pa.int32()
        offsets = pa.Array.from_buffers(width, messages.offset + count + 1, [None, offset_buffer])
        offsets = offsets.slice(messages.offset, count + 1).cast(pa.int64())
        self.count = count
        self.buffer = data_buffer if data_buffer is not None else pa.py_buffer(b"")
        self.bytes = pa.Array.from_buffers(pa.uint8(), self.buffer.size, [None, self.buffer])
        self.starts = offsets.slice(0, count)
        self.ends = offsets.slice(1, count)

    @cached_property
    def kinds(self) -> pa.Array:
        """Each message's type byte (0 for an empty message)."""
        if not self.buffer.size:
            return pa.nulls(self.count, pa.uint8()).fill_null(0)
        first = self.at(self.inside(self.starts))
        return pc.if_else(pc.equal(self.starts, self.ends), pa.scalar(0, pa.uint8()), first)

    def at(self, positions: pa.Array) -> pa.Array:
        """The bytes at ``positions``."""
        try:
            return pc.take(self.bytes, positions)
        except (pa.ArrowIndexError, IndexError):
            raise DecodeError("a message runs past the end of its chunk") from None

    def inside(self, positions: pa.Array, size: int = 1) -> pa.Array:
        """``positions`` moved back where needed so that ``size`` bytes from each are in the
        buffer (for reads whose result is checked afterwards)."""
        return pc.max_element_wise(pc.min_element_wise(positions, self.buffer.size - size), 0)

    def uint(self, positions: pa.Array, size: int) -> pa.Array:
        """The big-endian unsigned integers of ``size`` bytes at ``positions`` (``uint64``)."""
        value = self.at(positions).cast(pa.uint64())
        for i in range(1, size):
            byte = self.at(pc.add(positions, i)).cast(pa.uint64())
            value = pc.bit_wise_or(pc.shift_left(value, 8), byte)
        return value

    def int64(self, positions: pa.Array) -> pa.Array:
        """The big-endian signed 64-bit integers at ``positions``."""
        return self.uint(positions, 8).cast(pa.int64(), safe=False)

    def values(self, starts: pa.Array, ends: pa.Array, present: pa.Array) -> pa.Array:
        """The binary values ``[start, end)`` of the buffer (NULL where not ``present``);
        the pairs must be in order, each ending before the next starts."""
        count = len(starts)
        if not count:
            return pa.array([], pa.binary())
        pairs = pc.take(pa.concat_arrays([starts, ends]), _interleaved(count))
        large = self.buffer.size >= 2**31
        kind, width = (pa.large_binary(), pa.int64()) if large else (pa.binary(), pa.int32())
        offsets = pairs.cast(width)
        spans = pa.Array.from_buffers(
            kind, 2 * count - 1, [None, offsets.buffers()[1], self.buffer]
        )
        evens = pc.multiply(arange(count), 2)
        chosen = pc.if_else(present, evens, pa.scalar(None, pa.int64()))
        return pc.take(spans, chosen).cast(pa.binary())


@dataclass(frozen=True)
class Tuples:
    """One tuple per message, read column by column."""

    markers: list[pa.Array]
    """Per column, each message's value marker (:data:`TEXT`, :data:`NULL`, :data:`UNCHANGED`)."""
    values: list[pa.Array]
    """Per column, the text values (NULL for ``n`` and ``u``)."""
    end: pa.Array
    """Where each message's tuple ends."""


def read_tuples(chunk: Chunk, at: pa.Array, width: int, ends: pa.Array) -> Tuples:
    """The tuples starting at ``at`` (their column count first) of messages ending at
    ``ends``, each of ``width`` columns."""
    count = chunk.uint(at, 2)
    if not pc.all(pc.equal(count, width)).as_py():
        raise DecodeError(f"a change's tuple does not have the relation's {width} columns")
    position = pc.add(at, 2)
    markers, starts, stops = [], [], []
    for _ in range(width):
        # reads stay inside the buffer; a tuple past its message's end fails below
        marker = chunk.at(chunk.inside(position))
        text = pc.equal(marker, TEXT)
        length = chunk.uint(chunk.inside(pc.add(position, 1), 4), 4)
        start = pc.if_else(text, pc.add(position, 5), pc.add(position, 1))
        stop = pc.add(start, pc.if_else(text, length.cast(pa.int64()), 0))
        markers.append(marker)
        starts.append(start)
        stops.append(stop)
        position = stop
    if len(at) and not pc.all(pc.less_equal(position, ends)).as_py():
        raise DecodeError("a tuple runs past the end of its message")
    for marker in markers:
        if not pc.all(pc.is_in(marker, _MARKERS)).as_py():
            raise DecodeError(
                "a tuple value marker other than t, n, u (binary values are not asked)"
            )
    values = [
        chunk.values(start, stop, pc.equal(marker, TEXT))
        for marker, start, stop in zip(markers, starts, stops, strict=True)
    ]
    return Tuples(markers, values, position)


@dataclass(frozen=True)
class Changes:
    """The events of change messages, in log order, in the relation's columns."""

    values: list[pa.Array]
    markers: list[pa.Array]
    op: pa.Array
    """``insert``, ``update`` or ``delete``."""
    message: pa.Array
    """Which message (as numbered by the caller) each event comes from."""


def read_changes(
    chunk: Chunk, at: pa.Array, end: pa.Array, messages: pa.Array, width: int
) -> Changes:
    """The change messages (``I``, ``U``, ``D``) of one relation of ``width`` columns at
    ``at``…``end``, in order; ``messages`` numbers them.

    An update that changed the key (it sends the old key, ``K``) is two events: a delete of
    the old key's row, then the update. An update that sends the old row (``O``, REPLICA
    IDENTITY FULL) takes its unchanged TOASTed values from it. Other unchanged values keep
    their :data:`UNCHANGED` marker (and a NULL value)."""
    count = len(at)
    kind = chunk.at(at)
    tag = chunk.at(pc.add(at, 5))
    is_new, is_old = pc.equal(tag, NEW), pc.is_in(tag, _OLD_TAGS)
    updates = pc.equal(kind, UPDATE)
    valid = pc.if_else(
        pc.equal(kind, INSERT), is_new, pc.if_else(updates, pc.or_(is_new, is_old), is_old)
    )
    if not pc.all(valid).as_py():
        raise DecodeError("a change message's tuples are not those of its kind")
    first = read_tuples(chunk, pc.add(at, 6), width, end)
    values, markers, done = first.values, first.markers, first.end
    op = pc.take(_OPS, pc.take(_OP_INDEX, kind.cast(pa.int64())))
    two = pc.and_(updates, is_old)
    """Updates that send the old key or row first, then the new row."""
    if not pc.any(two).as_py():
        _check_ends(done, end)
        return Changes(values, markers, op, messages)

    picked = pc.indices_nonzero(two).cast(pa.int64())
    after, stop = pc.take(first.end, picked), pc.take(end, picked)
    follows = pc.and_(pc.less(after, stop), pc.equal(chunk.at(chunk.inside(after)), NEW))
    if not pc.all(follows).as_py():
        raise DecodeError("an update's old tuple is not followed by its new row")
    second = read_tuples(chunk, pc.add(after, 1), width, stop)
    full = pc.equal(pc.take(tag, picked), OLD)
    new_values, new_markers = [], []
    for j in range(width):
        fill = pc.and_(full, pc.equal(second.markers[j], UNCHANGED))
        new_values.append(pc.if_else(fill, pc.take(values[j], picked), second.values[j]))
        new_markers.append(pc.if_else(fill, pc.take(markers[j], picked), second.markers[j]))
    # the two-tuple updates' new rows in their messages' places
    slot = pc.if_else(
        two,
        pc.add(pc.subtract(pc.cumulative_sum(two.cast(pa.int64())), 1), count),
        arange(count),
    )

    def spread(one: pa.Array, other: pa.Array) -> pa.Array:
        return pc.take(pa.concat_arrays([one, other]), slot)

    olds = values, markers
    values = [spread(v, n) for v, n in zip(values, new_values, strict=True)]
    markers = [spread(m, n) for m, n in zip(markers, new_markers, strict=True)]
    _check_ends(spread(done, second.end), end)
    keyed = pc.and_(two, pc.equal(tag, KEY))
    if not pc.any(keyed).as_py():
        return Changes(values, markers, op, messages)

    # the key changed: a delete of the old key's row comes before the update
    which = pc.indices_nonzero(keyed).cast(pa.int64())
    order, extra = [], count
    for m, is_keyed in enumerate(keyed.to_pylist()):
        if is_keyed:
            order.append(extra)
            extra += 1
        order.append(m)
    taken = pa.array(order, pa.int64())

    def before(one: pa.Array, old: pa.Array) -> pa.Array:
        return pc.take(pa.concat_arrays([one, pc.take(old, which)]), taken)

    deletes = pa.repeat(pa.scalar("delete"), len(which))
    return Changes(
        [before(v, o) for v, o in zip(values, olds[0], strict=True)],
        [before(m, o) for m, o in zip(markers, olds[1], strict=True)],
        pc.take(pa.concat_arrays([op, deletes]), taken),
        before(messages, messages),
    )


def _check_ends(done: pa.Array, end: pa.Array) -> None:
    if not pc.all(pc.equal(done, end)).as_py():
        raise DecodeError("a change message holds more than its tuples")


_OLD_TAGS = pa.array([KEY, OLD], pa.uint8())
_OPS = pa.array(["insert", "update", "delete"], pa.string())
_OP_INDEX = pa.array(
    [0 if b == INSERT else 1 if b == UPDATE else 2 for b in range(256)], pa.int64()
)
"""A change message's type byte → its index in :data:`_OPS`."""
_MARKERS = pa.array([TEXT, NULL, UNCHANGED], pa.uint8())
_RANGE: list[pa.Array] = [pa.array([], pa.int64())]


def arange(count: int) -> pa.Array:
    """0 … count − 1 (``int64``, from one growing array, sliced)."""
    if len(_RANGE[0]) < count:
        _RANGE[0] = pa.array(range(max(count, 2 * len(_RANGE[0]))), pa.int64())
    return _RANGE[0].slice(0, count)


def _interleaved(count: int) -> pa.Array:
    """Indices into ``starts ++ ends`` giving start₀, end₀, start₁, end₁, …"""
    doubled = arange(2 * count)
    return pc.add(pc.shift_right(doubled, 1), pc.multiply(pc.bit_wise_and(doubled, 1), count))
