"""pgoutput messages → change events, without a database: streams of encoded protocol-1
messages (transactions of inserts, updates with and without the old key or row, deletes,
truncates, another table's changes, logical decoding messages, unchanged TOASTed values),
cut into chunks anywhere, against the events the stream encodes, built here one by one.

Both ways in are checked: ``feed_chunk`` (the binary column the slot's peek returns, read in
place) and ``feed`` (one message at a time, fully decoded)."""

from __future__ import annotations

import itertools
import struct
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weir.errors import SourceError
from weir.sources.base import PARSE_ERRORS, SourceContext
from weir.sources.sql.cdc_events import ChangeEvents
from weir.sources.sql.pgoutput import UNIX_OFFSET_US, DecodeError

OURS, OTHER = 16_384, 16_999
SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        ("name", pa.string()),
        ("flag", pa.bool_()),
        ("at", pa.timestamp("us", tz="UTC")),
    ]
)
RELATION_COLUMNS = ["name", "extra", "id", "at", "flag"]
"""Our table as the log sends it: another order, and a column the contract does not have."""
KEY = {"id"}
TOAST = object()
"""An unchanged TOASTed value in a generated change."""


# ---------------------------------------------------------------- encoding, as PostgreSQL does
def _tuple(values: list[Any]) -> bytes:
    out = struct.pack(">H", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is TOAST:
            out += b"u"
        else:
            out += b"t" + struct.pack(">i", len(value)) + value
    return out


def _relation(oid: int, name: str, columns: list[str]) -> bytes:
    out = b"R" + struct.pack(">I", oid) + b"public\x00" + name.encode() + b"\x00d"
    out += struct.pack(">H", len(columns))
    for column in columns:
        out += bytes([column in KEY]) + column.encode() + b"\x00" + struct.pack(">Ii", 25, -1)
    return out


def _texts(row: dict[str, Any], *, key_only: bool = False) -> list[Any]:
    """A row as the values of our relation's tuple (the key tuple: other columns NULL)."""
    values = []
    for column in RELATION_COLUMNS:
        value = row.get(column)
        if key_only and column not in KEY:
            values.append(None)
        elif value is None or value is TOAST:
            values.append(value)
        elif column == "flag":
            values.append(b"t" if value else b"f")
        elif column == "at":
            values.append(f"2025-01-{value:02d} 10:00:00+02".encode())
        else:
            values.append(str(value).encode())
    return values


def _change(kind: bytes, oid: int, *parts: tuple[bytes, list[Any]]) -> bytes:
    return kind + struct.pack(">I", oid) + b"".join(m + _tuple(v) for m, v in parts)


# ---------------------------------------------------------------- a generated stream
row = st.fixed_dictionaries(
    {
        "id": st.integers(1, 6),
        "name": st.one_of(st.none(), st.text(max_size=6)),
        "flag": st.one_of(st.none(), st.booleans()),
        "at": st.one_of(st.none(), st.integers(1, 28)),
    }
)
KINDS = [
    "insert",
    "update",
    "update_key",
    "update_full",
    "update_toast",
    "delete",
    "delete_full",
    "truncate",
    "other",
    "message",
]
change = st.tuples(st.sampled_from(KINDS), row, row)
stream = st.lists(st.lists(change, max_size=6), min_size=1, max_size=8)


def _encode(
    transactions: list[list[tuple[str, dict[str, Any], dict[str, Any]]]], committed_at: int
) -> tuple[list[bytes], list[dict[str, Any]], int, int | None]:
    """The messages; the events at or above ``committed_at`` (the index of the first
    transaction not in bronze yet) they must give; the committed LSN; the last commit time."""
    messages = [_relation(OTHER, "other", ["id"])]
    events: list[dict[str, Any]] = []
    committed, last_us = 0, None
    for number, changes in enumerate(transactions):
        xid, end_lsn, pg_us = 700 + number, 1_000 * (number + 1), 86_400_000_000 * (number + 1)
        messages.append(b"B" + struct.pack(">QqI", end_lsn - 8, pg_us, xid))
        if number == 0:  # the first change of a session is preceded by its relation
            messages.append(_relation(OURS, "orders", RELATION_COLUMNS))
        ours: list[dict[str, Any]] = []
        for kind, new, old in changes:
            ours += _one(messages, kind, new, old)
        messages.append(b"C" + struct.pack(">BQQq", 0, end_lsn - 8, end_lsn, pg_us))
        if number < committed_at:
            committed = end_lsn
            continue
        if ours:
            last_us = pg_us
        for seq, event in enumerate(ours):
            unix = pg_us + UNIX_OFFSET_US
            events.append({**event, "_lsn": end_lsn, "_seq": seq, "_tx_id": xid, "_at": unix})
    return messages, events, committed, last_us


def _one(messages: list[bytes], kind: str, new: dict[str, Any], old: dict[str, Any]) -> list[Any]:
    """Encode one change; the events it gives (columns of the contract, ``_op``, ``bad``)."""

    def event(op: str, image: dict[str, Any] | None, bad: bool = False) -> dict[str, Any]:
        values = {c: (image or {}).get(c) for c in SCHEMA.names}
        return {**values, "_op": op, "bad": bad}

    key_of_old = {"id": old["id"]}
    if kind == "insert":
        messages.append(_change(b"I", OURS, (b"N", _texts(new))))
        return [event("insert", new)]
    if kind == "update":
        messages.append(_change(b"U", OURS, (b"N", _texts(new))))
        return [event("update", new)]
    if kind == "update_key":
        messages.append(
            _change(b"U", OURS, (b"K", _texts(old, key_only=True)), (b"N", _texts(new)))
        )
        return [event("delete", key_of_old), event("update", new)]
    if kind == "update_full":  # REPLICA IDENTITY FULL: the unchanged name comes from the old row
        sent = {**new, "name": TOAST}
        messages.append(_change(b"U", OURS, (b"O", _texts(old)), (b"N", _texts(sent))))
        return [event("update", {**new, "name": old["name"]})]
    if kind == "update_toast":  # no old row: the value is unknown, the row a parse problem
        messages.append(_change(b"U", OURS, (b"N", _texts({**new, "name": TOAST}))))
        return [event("update", {**new, "name": None}, bad=True)]
    if kind == "delete":
        messages.append(_change(b"D", OURS, (b"K", _texts(old, key_only=True))))
        return [event("delete", key_of_old)]
    if kind == "delete_full":
        messages.append(_change(b"D", OURS, (b"O", _texts(old))))
        return [event("delete", old)]
    if kind == "truncate":
        messages.append(b"T" + struct.pack(">IBII", 2, 0, OTHER, OURS))
        return [event("truncate", None)]
    if kind == "other":
        messages.append(_change(b"I", OTHER, (b"N", [str(new["id"]).encode()])))
        return []
    messages.append(b"M\x01" + struct.pack(">Q", 1) + b"prefix\x00" + b"\x00\x00\x00\x01x")
    return []


# ---------------------------------------------------------------- reading them back
def _events(batches: list[pa.RecordBatch]) -> list[dict[str, Any]]:
    if not batches:
        return []
    table = pa.Table.from_batches(batches)
    out = []
    at = pc.cast(table.column("at"), pa.int64()).to_pylist()
    committed = pc.cast(table.column("_committed_at"), pa.int64()).to_pylist()
    for i, r in enumerate(table.to_pylist()):
        # the day of the encoded text back (10:00+02 is 08:00 UTC: the same day)
        day = None if at[i] is None else datetime.fromtimestamp(at[i] / 1e6, UTC).day
        out.append(
            {
                "id": r["id"],
                "name": r["name"],
                "flag": r["flag"],
                "at": day,
                "_op": r["_op"],
                "bad": r[PARSE_ERRORS] is not None,
                "_lsn": r["_lsn"],
                "_seq": r["_seq"],
                "_tx_id": r["_tx_id"],
                "_at": committed[i],
            }
        )
    return out


def _reader(committed: int, chunk_rows: int) -> ChangeEvents:
    context = SourceContext(
        pipeline="p", project_dir="/nowhere", run_id="r", on_parse_error="quarantine"
    )
    return ChangeEvents(
        SCHEMA, ("public", "orders"), committed, where="w", context=context, chunk_rows=chunk_rows
    )


@settings(max_examples=150, deadline=None)
@given(
    transactions=stream,
    committed_at=st.integers(0, 3),
    cuts=st.lists(st.integers(0, 80), max_size=5),
    chunk_rows=st.integers(1, 12),
)
def test_chunks_and_single_messages_give_the_encoded_events(
    transactions: list[list[tuple[str, dict[str, Any], dict[str, Any]]]],
    committed_at: int,
    cuts: list[int],
    chunk_rows: int,
) -> None:
    messages, expected, committed, last_us = _encode(transactions, committed_at)
    column = pa.array([b"padding", *messages, b"more"], pa.binary()).slice(1, len(messages))
    bounds = sorted({0, len(messages), *(c for c in cuts if c < len(messages))})

    chunked = _reader(committed, chunk_rows)
    batches = []
    for start, end in itertools.pairwise(bounds):
        batches += list(chunked.feed_chunk(column.slice(start, end - start)))
    if chunked.pending:
        batches.append(chunked.flush())

    single = _reader(committed, chunk_rows)
    one_by_one = [b for m in messages for b in single.feed(m)]
    if single.pending:
        one_by_one.append(single.flush())

    assert _events(batches) == expected
    assert _events(one_by_one) == expected
    last_end = 1_000 * len(transactions)
    for reader in (chunked, single):
        assert reader.reached == (last_end if committed_at < len(transactions) else committed)
        assert reader.last_commit_us == last_us
        assert reader.rows == len(expected)
    if chunk_rows == 1 and expected:  # a batch is flushed at each commit that reaches it
        assert len(one_by_one) == len({e["_lsn"] for e in expected})


def test_a_value_that_is_not_utf8_names_its_column() -> None:
    bad = {"id": 1, "name": None, "flag": None, "at": None}
    texts = _texts(bad)
    texts[0] = b"\xff\xfe"
    messages = [
        b"B" + struct.pack(">QqI", 8, 1, 9),
        _relation(OURS, "orders", RELATION_COLUMNS),
        _change(b"I", OURS, (b"N", texts)),
        b"C" + struct.pack(">BQQq", 0, 8, 16, 1),
    ]
    reader = _reader(0, 1)
    with pytest.raises(SourceError, match="column name"):
        list(reader.feed_chunk(pa.array(messages, pa.binary())))


def test_a_short_message_in_a_chunk_fails_instead_of_reading_the_next() -> None:
    insert = _change(b"I", OURS, (b"N", _texts({"id": 1, "name": "a", "flag": 1, "at": 2})))
    begin = b"B" + struct.pack(">QqI", 8, 1, 9)
    for short in (begin[:-3], insert[:-2]):
        messages = [begin, _relation(OURS, "orders", RELATION_COLUMNS), short, begin, insert]
        with pytest.raises(DecodeError):
            list(_reader(0, 1).feed_chunk(pa.array(messages, pa.binary())))


def test_messages_out_of_the_protocol_fail_to_decode() -> None:
    insert = _change(b"I", OURS, (b"N", _texts({"id": 1, "name": "a", "flag": 1, "at": 2})))
    begin, commit = b"B" + struct.pack(">QqI", 8, 1, 9), b"C" + struct.pack(">BQQq", 0, 8, 16, 1)
    relation = _relation(OURS, "orders", RELATION_COLUMNS)
    broken = {
        "trailing bytes": [begin, relation, insert + b"x", commit],
        "two Begins": [begin, relation, insert, begin, insert, commit],
        "a binary value": [begin, relation, insert.replace(b"t", b"b", 1), commit],
        "a Commit too long": [begin, relation, insert, commit + b"\x00"],
        "an insert of an old key": [begin, relation, b"I" + insert[1:5] + b"K" + insert[6:]],
    }
    for label, messages in broken.items():
        with pytest.raises(DecodeError):
            list(_reader(0, 1).feed_chunk(pa.array(messages, pa.binary())))
            pytest.fail(label)
