"""A decoder of PostgreSQL's ``pgoutput`` messages, protocol version 1.

Each message is one row of ``pg_logical_slot_peek_binary_changes(…, 'proto_version', '1',
'publication_names', …)``: a type byte, then big-endian fields, as PostgreSQL's "Logical
Replication Message Formats" describe them. Version 1 has no streamed (in-progress)
transactions, so every change lies between a Begin and its Commit.

- Begin ``B``: final LSN of the transaction, commit time, xid.
- Commit ``C``: flags, commit LSN, end LSN, commit time.
- Relation ``R``: the table's id, schema, name, replica identity and columns (name, type oid,
  whether it is part of the key); sent before the first change of a table in a session and
  again after it changed (``ALTER TABLE``).
- Insert ``I`` / Update ``U`` / Delete ``D``: the table's id and tuples — the new one (``N``),
  and for an update or delete the old key (``K``) or the whole old row (``O``, with
  ``REPLICA IDENTITY FULL``).
- Truncate ``T``: the ids of the truncated tables.
- Origin ``O``, Type ``Y`` and logical decoding messages ``M``: carry no row change; decoded
  as :class:`Skipped`.

A tuple's values are text (PostgreSQL's output function of the column's type, as the
undecoded UTF-8 bytes: a column of them is decoded at once, in Arrow), NULL, or
:data:`UNCHANGED`: a TOASTed value an update did not touch, which the log does not carry.
Times are µs since 2000-01-01 UTC, PostgreSQL's epoch.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

UNIX_OFFSET_US = 946_684_800_000_000
"""µs between 1970-01-01 and PostgreSQL's epoch, 2000-01-01."""


class Unchanged:
    """The marker of an unchanged TOASTed value (``u``)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = Unchanged()
Value = bytes | None | Unchanged
Tuple = list[Value]


class DecodeError(ValueError):
    """A message that does not follow the format (a bug, or another protocol version)."""


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    committed_us: int
    xid: int


@dataclass(frozen=True)
class Commit:
    lsn: int
    end_lsn: int
    committed_us: int


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    key: bool


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    identity: str
    """``d`` default (the primary key), ``n`` nothing, ``f`` full, ``i`` an index."""
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Change:
    kind: str
    """``insert``, ``update`` or ``delete``."""
    relation: int
    new: Tuple | None
    old: Tuple | None
    """The old key (``K``) or row (``O``) of an update or delete, when sent."""
    old_is_key: bool = False


@dataclass(frozen=True)
class Truncate:
    relations: tuple[int, ...]


@dataclass(frozen=True)
class Skipped:
    kind: str


Message = Begin | Commit | Relation | Change | Truncate | Skipped

_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U16 = struct.Struct(">H")
BEGIN = struct.Struct(">QqI")
COMMIT = struct.Struct(">BQQq")


def decode(data: bytes) -> Message:
    """One message; :class:`DecodeError` when it is not one of protocol version 1."""
    if not data:
        raise DecodeError("empty pgoutput message")
    try:
        kind = data[0:1]
        if kind == b"B":
            final_lsn, committed, xid = BEGIN.unpack_from(data, 1)
            return Begin(final_lsn, committed, xid)
        if kind == b"C":
            _flags, lsn, end_lsn, committed = COMMIT.unpack_from(data, 1)
            return Commit(lsn, end_lsn, committed)
        if kind == b"R":
            return _relation(data)
        if kind in (b"I", b"U", b"D"):
            return _change(data)
        if kind == b"T":
            (count,) = _U32.unpack_from(data, 1)
            oids = struct.unpack_from(f">{count}I", data, 6)
            return Truncate(tuple(oids))
        if kind in (b"O", b"Y", b"M"):
            return Skipped(kind.decode())
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise DecodeError(f"malformed pgoutput message {data[:1]!r}: {exc}") from None
    raise DecodeError(f"unknown pgoutput message type {data[:1]!r} (protocol version 1 expected)")


def _string(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(b"\x00", at)
    return data[at:end].decode("utf-8"), end + 1


def _relation(data: bytes) -> Relation:
    (oid,) = _U32.unpack_from(data, 1)
    schema, at = _string(data, 5)
    name, at = _string(data, at)
    identity = chr(data[at])
    (count,) = _U16.unpack_from(data, at + 1)
    at += 3
    columns = []
    for _ in range(count):
        flags = data[at]
        column, at = _string(data, at + 1)
        (type_oid,) = _U32.unpack_from(data, at)
        at += 8  # type oid, type modifier
        columns.append(Column(column, type_oid, bool(flags & 1)))
    return Relation(oid, schema, name, identity, tuple(columns))


KINDS = {0x49: "insert", 0x55: "update", 0x44: "delete"}
"""The change messages' type bytes (``I``, ``U``, ``D``)."""

Parts = tuple[int, Tuple | None, Tuple | None, bool]
"""A change message's relation id, new tuple, old tuple, whether the old one is the key."""


def _change(data: bytes) -> Change:
    kind = KINDS[data[0]]
    oid, new, old, old_is_key = change_at(data, 0, len(data))
    return Change(kind, oid, new, old, old_is_key)


def change_at(data: bytes, at: int, end: int) -> Parts:
    """The change message (``I``, ``U`` or ``D``) at ``data[at:end]``, without building a
    :class:`Change`. (CDC itself reads a chunk's changes a column at a time:
    :mod:`weir.sources.sql.pgoutput_columns`.)"""
    (oid,) = _U32.unpack_from(data, at + 1)
    at += 5
    old: Tuple | None = None
    old_is_key = False
    new: Tuple | None = None
    while at < end:
        part = data[at]
        values, at = tuple_at(data, at + 1, end)
        if part == 0x4E:  # 'N'
            new = values
        elif part == 0x4B or part == 0x4F:  # 'K', 'O'
            old, old_is_key = values, part == 0x4B
        else:
            raise DecodeError(f"unknown tuple marker {chr(part)!r} in a change message")
    return oid, new, old, old_is_key


def tuple_at(data: bytes, at: int, end: int) -> tuple[Tuple, int]:
    """The tuple at ``at`` (its column count first) of a message ending at ``end``, and where
    the tuple ends. ``data`` may hold many messages."""
    count = (data[at] << 8) | data[at + 1]
    at += 2
    values: list[Value] = []
    append = values.append
    unpack = _I32.unpack_from
    for _ in range(count):
        marker = data[at]
        if marker == 0x74:  # 't': text
            (length,) = unpack(data, at + 1)
            at += 5 + length
            append(data[at - length : at])
        elif marker == 0x6E:  # 'n': NULL
            at += 1
            append(None)
        elif marker == 0x75:  # 'u': unchanged TOASTed value
            at += 1
            append(UNCHANGED)
        else:
            raise DecodeError(f"tuple value marker {chr(marker)!r} (binary values are not asked)")
    if at > end:
        raise DecodeError("a tuple runs past the end of its message")
    return values, at


def lsn_text(lsn: int) -> str:
    """``0/19257C8``: how PostgreSQL writes an LSN."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def unix_us(pg_us: int) -> int:
    """A PostgreSQL time (µs since 2000) as µs since 1970."""
    return pg_us + UNIX_OFFSET_US
