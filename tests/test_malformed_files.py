"""Malformed files, generated: the files source never crashes and never loses a line silently.

Hypothesis writes CSV, NDJSON, JSON and Parquet files with wrong types, bad encodings, deep
nesting, huge fields, garbage bytes, NULLs, mixed shapes, and then truncates, splices or
compresses some of them. At source level, for every file:

- ``fail``: reading succeeds or raises a weir error whose message starts with the file name
  and holds no PII; nothing else escapes (a crash would end the test run);
- ``quarantine``: reading succeeds (or stops at breaking drift: a required column the file
  does not have), every reason follows one of the documented forms, a value reason's column
  is NULL in its row, PII is masked, and every input line (NDJSON) or record (CSV, JSON,
  Parquet, while the file is intact) is one yielded row: clean, or with its reasons;
- ``probe``: only weir errors, and none in ``quarantine`` for unreadable content.

Fixed budget, derandomised, no example database: CI stays fast and deterministic.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weir.errors import SchemaDriftError, WeirError
from weir.sources.base import SourceContext
from weir.sources.files import FilesConfig, FilesSource

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("email", pa.string()),
        pa.field("amount", pa.float64()),
        pa.field("day", pa.date32()),
        pa.field("at", pa.timestamp("us")),
        pa.field("ok", pa.bool_()),
        pa.field("price", pa.decimal128(10, 2)),
    ]
)
NAMES = SCHEMA.names
PII = "email"
SECRET = "SECRET"
SHAPED = [*NAMES, "_source_file", "_parse_errors"]
REASON = re.compile(
    r"parse: (?:column (?P<column>\w+), value '(?P<value>.*)' \((?:line|row) \d+\)"
    r"|line (?P<line>\d+) (?:is|has|nests) .+"
    r"|line \d+: .+|row \d+ .+|a row .+"
    r"|the (?:file|header line|first line|JSON array) .+|not a readable Parquet file .+)",
    re.DOTALL,
)
BUDGET = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- values ------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
ODD = st.sampled_from(
    ["0x10", "1e999999", "inf", "nan", "-Infinity", "", "NA", "null", "true", "FALSE", "yes",
     "2024-02-29", "2023-02-29", "2013-01-01T06:30:00", "2013-01-01T06:30:00Z", "10.255",
     " 7 ", "+5", "1.0", "1e3", "9" * 30, '"', ",", "\n", "\r\n", "\\udcff", "\x00"]
)  # fmt: skip
TEXT_VALUE = st.one_of(
    ODD,
    TEXT,
    st.integers(-(10**20), 10**20).map(str),
    st.floats().map(repr),
    st.just("x" * 3000),
)
CELL = st.one_of(
    TEXT_VALUE.map(lambda text: text.encode()),
    st.binary(min_size=1, max_size=6),  # mostly invalid UTF-8
)
JSON_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), TEXT_VALUE
)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


def record(values: dict[str, Any]) -> dict[str, Any]:
    """A record with the PII marker in its PII column (so a leak is visible)."""
    if PII in values:
        values[PII] = f"{SECRET}-{values[PII]!s}"[:40]
    return values


RECORD = st.fixed_dictionaries(
    {"id": st.one_of(st.integers(-5, 5), JSON_VALUE)},
    optional={name: JSON_VALUE for name in NAMES[1:]} | {"extra": JSON_VALUE},
).map(record)

# --- damage ------------------------------------------------------------------------------------


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> tuple[bytes, bool]:
    """``data`` intact, truncated, spliced with garbage or garbage altogether; True: intact."""
    how = draw(st.sampled_from(["intact", "intact", "truncate", "splice", "garbage"]))
    if how == "intact" or not data:
        return data, True
    if how == "garbage":
        garbage = draw(st.binary(min_size=1, max_size=200))
        return garbage, garbage == data
    at = draw(st.integers(0, len(data)))
    if how == "truncate":
        return data[:at], at == len(data)
    return data[:at] + draw(st.binary(min_size=1, max_size=20)) + data[at:], False


# --- reading -----------------------------------------------------------------------------------


def make(root: Path, name: str, mode: str, **config: Any) -> FilesSource:
    context = SourceContext("p", str(root), "r", pii=(PII,), on_parse_error=mode)  # type: ignore[arg-type]
    return FilesSource(FilesConfig(path=name, **config), context)


def check(root: Path, name: str, data: bytes, **config: Any) -> list[dict[str, Any]] | None:
    """Read ``data`` as file ``name`` in both modes; the quarantined rows, or None for drift."""
    (root / name).write_bytes(data)
    for mode in ("fail", "quarantine"):
        try:
            make(root, name, mode, **config).probe(None, SCHEMA)
        except WeirError as exc:
            assert mode == "fail", f"probe in quarantine mode raised {exc}"
            assert_named(exc, name)
    try:
        list(make(root, name, "fail", **config).extract(None, SCHEMA).batches())
    except WeirError as exc:
        assert_named(exc, name)
    rows: list[dict[str, Any]] = []
    try:
        for batch in make(root, name, "quarantine", **config).extract(None, SCHEMA).batches():
            assert batch.schema.names == SHAPED
            rows += batch.to_pylist()
    except SchemaDriftError as exc:
        assert_named(exc, name)
        assert "missing" in str(exc), str(exc)
        return None
    for row in rows:
        assert row["_source_file"] == name
        for reason in row["_parse_errors"] or ():
            assert_reason(reason, row)
    return rows


def assert_named(exc: WeirError, name: str) -> None:
    assert str(exc).startswith(f"{name}: "), str(exc)
    assert SECRET not in str(exc), str(exc)
    assert "Traceback" not in str(exc)


def assert_reason(reason: str, row: dict[str, Any]) -> None:
    match = REASON.fullmatch(reason)
    assert match is not None, reason
    assert SECRET not in reason, reason
    if match["column"] is not None:
        assert match["column"] in NAMES, reason
        assert row[match["column"]] is None, (reason, row)
        if match["column"] == PII:
            assert match["value"] == "***", reason


def lines_of(data: bytes) -> list[int]:
    """The numbers of an NDJSON file's non-blank lines."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    return [n for n, line in enumerate(data.split(b"\n"), 1) if line.strip(b" \t\r")]


def line_of(reasons: list[str]) -> set[int]:
    found = set()
    for reason in reasons:
        match = re.search(r"\(line (\d+)\)$|^parse: line (\d+)[ :]", reason)
        if match:
            found.add(int(match[1] or match[2]))
    return found


# --- NDJSON ------------------------------------------------------------------------------------


@st.composite
def ndjson_line(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["record"] * 6 + ["odd", "deep", "two", "utf8", "blank", "long"]))
    if kind == "record":
        return json.dumps(draw(RECORD), ensure_ascii=draw(st.booleans())).encode()
    if kind == "odd":
        return draw(
            st.sampled_from([b"null", b"[1]", b"1", b'"x"', b"{", b"}", b"{}", b"{garbage"])
        )
    if kind == "deep":
        depth = draw(st.integers(1, 3000))
        return b'{"id": 1, "name": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == "two":
        return json.dumps(draw(RECORD)).encode() + draw(st.sampled_from([b" ", b""])) + b'{"id": 2}'
    if kind == "utf8":
        return (
            b'{"id": 3, "name": "'
            + draw(st.binary(min_size=1, max_size=4)).replace(b'"', b"")
            + b'"}'
        )
    if kind == "blank":
        return draw(st.sampled_from([b"", b"  ", b"\r", b"\t"]))
    return json.dumps({"id": 4, "name": "y" * draw(st.integers(1000, 5000))}).encode()


@BUDGET
@given(
    lines=st.lists(ndjson_line(), max_size=30),
    end=st.sampled_from([b"\n", b"\r\n"]),
    damage=st.data(),
    block=st.sampled_from([1024, 4096, 1 << 20]),
)
def test_malformed_ndjson(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    end: bytes,
    damage: st.DataObject,
    block: int,
) -> None:
    data, _ = damage.draw(damaged(end.join(lines) + (end if lines else b"")))
    rows = check(tmp_path_factory.mktemp("nd"), "a.ndjson", data, block_size_bytes=block)
    if rows is None:
        return
    expected = lines_of(data)
    assert len(rows) == len(expected), "every non-blank line is one row"
    for row, number in zip(rows, expected, strict=True):
        assert line_of(row["_parse_errors"] or []) <= {number}, (number, row["_parse_errors"])


@settings(BUDGET, max_examples=30)
@given(lines=st.lists(ndjson_line(), min_size=1, max_size=20), cut=st.integers(0, 40))
def test_malformed_ndjson_gzip(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], cut: int
) -> None:
    body = b"\n".join(lines) + b"\n"
    data = gzip.compress(body)
    rows = check(tmp_path_factory.mktemp("gz"), "a.ndjson.gz", data[: len(data) - cut])
    if rows is not None and cut == 0:
        assert len(rows) == len(lines_of(body))


# --- CSV ---------------------------------------------------------------------------------------


def csv_cell(cell: bytes) -> bytes:
    if any(c in cell for c in b',"\r\n'):
        return b'"' + cell.replace(b'"', b'""') + b'"'
    return cell


@st.composite
def csv_file(draw: st.DrawFn) -> tuple[bytes, int]:
    """A CSV file and its number of records (rows after the header, blank lines aside)."""
    header = draw(st.permutations(NAMES)) + draw(st.sampled_from([[], ["extra"]]))
    width = len(header)
    records = 0
    lines = [b",".join(name.encode() for name in header)]
    for _ in range(draw(st.integers(0, 25))):
        if draw(st.integers(0, 9)) == 0:
            lines.append(b"")  # blank
            continue
        count = width if draw(st.integers(0, 5)) else draw(st.integers(1, width + 2))
        cells = draw(st.lists(CELL, min_size=count, max_size=count))
        if PII in header and count == width:
            at = header.index(PII)
            cells[at] = SECRET.encode() + cells[at]
        lines.append(b",".join(csv_cell(cell) for cell in cells))
        records += 1 if lines[-1] else 0  # one empty field is a blank line
    end = draw(st.sampled_from([b"\n", b"\r\n"]))
    return end.join(lines) + end, records


def python_records(data: bytes) -> int:
    """Records Python's csv module sees (the oracle for intact files)."""
    text = io.StringIO(data.decode("utf-8", "replace"), newline="")
    return sum(1 for row in list(csv.reader(text))[1:] if row)


@BUDGET
@given(file=csv_file(), damage=st.data(), block=st.sampled_from([1024, 1 << 20]))
def test_malformed_csv(
    tmp_path_factory: pytest.TempPathFactory,
    file: tuple[bytes, int],
    damage: st.DataObject,
    block: int,
) -> None:
    body, records = file
    data, intact = damage.draw(damaged(body))
    rows = check(tmp_path_factory.mktemp("csv"), "a.csv", data, block_size_bytes=block)
    if rows is not None and intact:
        assert records == python_records(data)
        assert len(rows) == records, "every record is one row"


# --- JSON --------------------------------------------------------------------------------------


@st.composite
def json_file(draw: st.DrawFn) -> tuple[bytes, int]:
    kind = draw(st.sampled_from(["array"] * 4 + ["deep", "object"]))
    if kind == "deep":
        return b"[" * draw(st.integers(1, 60_000)), -1
    elements = draw(st.lists(st.one_of(RECORD, RECORD, JSON_VALUE), max_size=25))
    if kind == "object":
        return json.dumps(draw(RECORD)).encode(), -1
    indent = draw(st.sampled_from([None, 1]))
    return json.dumps(elements, indent=indent).encode(), len(elements)


@BUDGET
@given(file=json_file(), damage=st.data())
def test_malformed_json(
    tmp_path_factory: pytest.TempPathFactory, file: tuple[bytes, int], damage: st.DataObject
) -> None:
    body, elements = file
    data, intact = damage.draw(damaged(body))
    rows = check(tmp_path_factory.mktemp("json"), "a.json", data)
    if rows is None:
        return
    if intact and elements >= 0:
        assert len(rows) == elements, "every element is one row"
    elif data.removeprefix(b"\xef\xbb\xbf").strip() and not empty_array(data):
        assert rows, "a file with content is never zero rows silently"


def empty_array(data: bytes) -> bool:
    try:
        return bool(json.loads(data) == [])
    except (ValueError, RecursionError):
        return False


# --- Parquet -----------------------------------------------------------------------------------

PARQUET_COLUMNS = {
    "id": st.sampled_from([pa.int64(), pa.int8(), pa.float64(), pa.string()]),
    "name": st.sampled_from([pa.string(), pa.binary(), pa.int64()]),
    "email": st.just(pa.string()),
    "amount": st.sampled_from([pa.float64(), pa.float32(), pa.string()]),
    "day": st.sampled_from([pa.date32(), pa.string(), pa.timestamp("ns")]),
}


@st.composite
def parquet_file(draw: st.DrawFn) -> tuple[bytes, int]:
    rows = draw(st.integers(0, 30))
    columns = {}
    for name, kinds in PARQUET_COLUMNS.items():
        if name != "id" and not draw(st.booleans()):
            continue
        kind = draw(kinds)
        values = draw(st.lists(_parquet_value(kind), min_size=rows, max_size=rows))
        if name == PII:
            values = [None if v is None else f"{SECRET}{v}" for v in values]
        columns[name] = pa.array(values, kind)
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink, row_group_size=max(1, draw(st.integers(1, 10))))
    return sink.getvalue(), rows


def _parquet_value(kind: pa.DataType) -> st.SearchStrategy[Any]:
    if pa.types.is_integer(kind):
        bits = kind.bit_width - 1
        return st.none() | st.integers(-(2**bits), 2**bits - 1)
    if pa.types.is_floating(kind):
        return st.none() | st.floats(width=kind.bit_width)
    if pa.types.is_binary(kind):
        return st.none() | st.binary(max_size=6)
    if pa.types.is_date(kind):
        return st.none() | st.dates()
    if pa.types.is_timestamp(kind):
        return st.none() | st.datetimes(
            min_value=dt.datetime(1700, 1, 1), max_value=dt.datetime(2200, 1, 1)
        )
    return st.none() | TEXT_VALUE


@BUDGET
@given(file=parquet_file(), damage=st.data())
def test_malformed_parquet(
    tmp_path_factory: pytest.TempPathFactory, file: tuple[bytes, int], damage: st.DataObject
) -> None:
    body, records = file
    data, intact = damage.draw(damaged(body))
    rows = check(tmp_path_factory.mktemp("pq"), "a.parquet", data)
    if rows is None:
        return
    if intact:
        assert len(rows) == records, "every record is one row"
    elif records:
        assert rows, "a damaged file is never zero rows silently"
