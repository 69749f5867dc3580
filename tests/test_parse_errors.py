"""Unparsable input at source level, in both ``on_parse_error`` modes (issue 7, items 4a-8).

``fail`` (the default): the first problem raises a weir error naming the file, the column,
the line and the value (masked for PII). ``quarantine``: every line or record is yielded,
clean or with its reasons in ``_parse_errors``; the values that parsed are kept.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from weir.errors import SchemaDriftError, SourceError, TransientSourceError, WeirError
from weir.sources import memory
from weir.sources.base import SourceContext
from weir.sources.files import FilesConfig, FilesSource
from weir.sources.memory import MemoryConfig, MemorySource

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("email", pa.string()),
        pa.field("amount", pa.float64()),
    ]
)
PII = ("email",)


def source(tmp_path: Path, mode: str, **config: Any) -> FilesSource:
    # The fail mode is the default: not naming it keeps these tests runnable on old code.
    extra: dict[str, Any] = {"on_parse_error": mode} if mode != "fail" else {}
    context = SourceContext(pipeline="p", project_dir=str(tmp_path), run_id="r", pii=PII, **extra)
    return FilesSource(FilesConfig(**config), context)


def read(
    tmp_path: Path, name: str, data: bytes, mode: str = "quarantine", **config: Any
) -> list[dict[str, Any]]:
    (tmp_path / name).write_bytes(data)
    found = source(tmp_path, mode, path=name, **config)
    return [row for batch in found.extract(None, SCHEMA).batches() for row in batch.to_pylist()]


def failure(tmp_path: Path, name: str, data: bytes, **config: Any) -> WeirError:
    with pytest.raises(WeirError) as info:
        read(tmp_path, name, data, mode="fail", **config)
    assert str(info.value).startswith(f"{name}: "), str(info.value)
    assert "Traceback" not in str(info.value)
    return info.value


def reasons(rows: list[dict[str, Any]]) -> list[list[str] | None]:
    return [row["_parse_errors"] for row in rows]


# --- item 5: wrong values are not accepted -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "line"),
    [
        ("a.csv", b"id,amount\n1,2.5\n0x10,1\n", 3),
        ("a.ndjson", b'{"id": 1, "amount": 2.5}\n{"id": "0x10", "amount": 1}\n', 2),
        ("a.json", b'[{"id": 1, "amount": 2.5},\n {"id": "0x10", "amount": 1}]', 2),
    ],
)
def test_hex_is_not_an_integer(tmp_path: Path, name: str, data: bytes, line: int) -> None:
    error = failure(tmp_path, name, data)
    assert isinstance(error, SchemaDriftError)
    assert f"{name}: column id, value '0x10' (line {line}) is not a valid int64" in str(error)
    rows = read(tmp_path, name, data)
    assert [(r["id"], r["amount"]) for r in rows] == [(1, 2.5), (None, 1.0)]
    assert reasons(rows) == [None, [f"parse: column id, value '0x10' (line {line})"]]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.csv", b"id,amount\n1,1e999999\n2,inf\n3,nan\n4,1.5\n"),
        (
            "a.ndjson",
            b'{"id":1,"amount":1e999999}\n{"id":2,"amount":"inf"}\n{"id":3,"amount":NaN}\n{"id":4,"amount":1.5}\n',
        ),
    ],
)
def test_floats_must_be_finite(tmp_path: Path, name: str, data: bytes) -> None:
    first = 2 if name.endswith(".csv") else 1
    error = failure(tmp_path, name, data)
    assert f"{name}: column amount, value '1e999999' (line {first}) is not a valid" in str(error)
    rows = read(tmp_path, name, data)
    assert [(r["id"], r["amount"]) for r in rows] == [(1, None), (2, None), (3, None), (4, 1.5)]
    shown = ["1e999999", "inf", "nan" if name.endswith(".csv") else "NaN"]
    assert reasons(rows) == [
        *[[f"parse: column amount, value '{v}' (line {first + n})"] for n, v in enumerate(shown)],
        None,
    ]


def test_parquet_floats_must_be_finite_and_fit(tmp_path: Path) -> None:
    table = pa.table({"id": pa.array([1.0, 2.5, 3.0]), "amount": [1.0, float("inf"), 2.0]})
    pq.write_table(table, tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes((tmp_path / "a.parquet").read_bytes())
    error = failure(tmp_path, "a.parquet", (tmp_path / "b.parquet").read_bytes())
    assert "column id, value '2.5' (row 2) is not a valid int64" in str(error)
    rows = read(tmp_path, "a.parquet", (tmp_path / "b.parquet").read_bytes())
    assert [(r["id"], r["amount"]) for r in rows] == [(1, 1.0), (None, None), (3, 2.0)]
    assert reasons(rows)[1] == [
        "parse: column id, value '2.5' (row 2)",
        "parse: column amount, value 'inf' (row 2)",
    ]


@pytest.mark.parametrize("name", ["a.ndjson", "a.json", "a.csv", "a.parquet"])
def test_random_bytes_are_never_zero_rows_silently(tmp_path: Path, name: str) -> None:
    data = b"\xff\xfe" + bytes(range(256)) * 4 + b"\n\x00\xff{\n[[["
    error = failure(tmp_path, name, data)
    assert isinstance(error, SourceError | SchemaDriftError)
    rows = read(tmp_path, name, data)
    assert rows, "the file must not be skipped silently"
    assert all(r["_parse_errors"] for r in rows)
    assert all(r["_source_file"] == name for r in rows)


def test_random_bytes_ndjson_has_one_row_per_line(tmp_path: Path) -> None:
    data = b"\x8f\xff garbage\n\n{not json\n\xc3\x28\n"
    rows = read(tmp_path, "a.ndjson", data)
    assert reasons(rows) == [
        ["parse: line 1 is not valid UTF-8"],
        ["parse: line 3 is not valid JSON"],
        ["parse: line 4 is not valid UTF-8"],
    ]


# --- item 6: consistent handling; the rest of the file loads ------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.csv", b"id,name\n,a\n2,b\n"),
        ("a.ndjson", b'{"id": null, "name": "a"}\n{"id": 2, "name": "b"}\n'),
        ("b.ndjson", b'{"name": "a"}\n{"id": 2, "name": "b"}\n'),
        ("a.json", b'[{"id": null, "name": "a"}, {"id": 2, "name": "b"}]'),
    ],
)
@pytest.mark.parametrize("mode", ["fail", "quarantine"])
def test_a_null_key_never_fails_a_read(tmp_path: Path, name: str, data: bytes, mode: str) -> None:
    rows = read(tmp_path, name, data, mode=mode)
    assert [(r["id"], r["name"]) for r in rows] == [(None, "a"), (2, "b")]
    if mode == "quarantine":
        assert reasons(rows) == [None, None]  # the engine's required rule quarantines it


def test_one_bad_value_quarantines_its_row_only(tmp_path: Path) -> None:
    data = b"id,name,email,amount\n1,a,x@example.com,1.5\n2,b,secret@example.com,warm\n3,c,,2\n"
    rows = read(tmp_path, "a.csv", data)
    assert [(r["id"], r["name"], r["amount"]) for r in rows] == [
        (1, "a", 1.5),
        (2, "b", None),
        (3, "c", 2.0),
    ]
    assert reasons(rows) == [None, ["parse: column amount, value 'warm' (line 3)"], None]


def test_pii_values_are_masked(tmp_path: Path) -> None:
    data = b'{"id": 1, "email": {"user": "secret@example.com"}}\n'
    error = failure(tmp_path, "a.ndjson", data)
    assert "secret" not in str(error)
    assert "column email, value '***' (line 1)" in str(error)
    rows = read(tmp_path, "a.ndjson", data)
    assert reasons(rows) == [["parse: column email, value '***' (line 1)"]]


def test_json_values_are_read_by_the_column_type(tmp_path: Path) -> None:
    data = b'{"id": "42", "name": 5, "amount": "1.5"}\n{"id": 1.0, "name": true, "amount": [1]}\n'
    rows = read(tmp_path, "a.ndjson", data)
    assert [(r["id"], r["name"], r["amount"]) for r in rows] == [
        (42, "5", 1.5),
        (None, "true", None),
    ]
    assert reasons(rows) == [
        None,
        ["parse: column id, value '1.0' (line 2)", "parse: column amount, value '[1]' (line 2)"],
    ]


def test_csv_names_the_column_and_the_physical_line(tmp_path: Path) -> None:
    data = b'id,name,amount\n1,"two\nlines",1\n\n2,b,x\n3,c\n4,d,1,extra\n'
    error = failure(tmp_path, "a.csv", data)
    assert "column amount, value 'x' (line 5)" in str(error)
    assert "CSV column #" not in str(error)
    rows = read(tmp_path, "a.csv", data)
    assert sorted(r for r in reasons(rows) if r) == [
        ["parse: column amount, value 'x' (line 5)"],
        ["parse: line 6 has 2 fields, expected 3"],
        ["parse: line 7 has 4 fields, expected 3"],
    ]
    assert len(rows) == 4


def test_a_short_row_that_is_not_utf8(tmp_path: Path) -> None:
    """pyarrow's CSV reader cannot report it (its invalid-row handler fails on the bytes):
    the rest of the file is read by Python's csv module instead."""
    data = b"id,name,amount\n1,a,1\n\x80\n" + b"".join(b"%d,b,2\n" % n for n in range(2, 50))
    error = failure(tmp_path, "a.csv", data)
    assert str(error).startswith("a.csv: line 3 has 1 field, expected 3")
    rows = read(tmp_path, "a.csv", data)
    assert [r["id"] for r in rows] == [1, None, *range(2, 50)]
    assert reasons(rows)[1] == ["parse: line 3 has 1 field, expected 3"]
    assert reasons(rows)[2:] == [None] * 48


def test_csv_lines_are_exact_across_many_batches(tmp_path: Path) -> None:
    """Batches are converted on several threads; each reason still names its own line."""
    lines, expected, line = ["id,name,amount"], [], 2
    for n in range(3000):
        name = '"two\nlines"' if n % 7 == 0 else "a"
        amount = "x" if n % 97 == 0 else "1.5"
        if amount == "x":
            expected.append(f"parse: column amount, value 'x' (line {line})")
        lines.append(f"{n},{name},{amount}")
        line += 2 if n % 7 == 0 else 1
    data = ("\n".join(lines) + "\n").encode()
    rows = read(tmp_path, "a.csv", data, block_size_bytes=1024)
    assert [r["id"] for r in rows] == list(range(3000))
    assert [reason for r in reasons(rows) if r for reason in r] == expected


# --- item 7: nothing crashes the process --------------------------------------------------------

SEGFAULT = """
import sys
import pyarrow as pa
from weir.sources.base import SourceContext
from weir.sources.files import FilesConfig, FilesSource
schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])
context = SourceContext("p", sys.argv[1], "r", **({{"on_parse_error": sys.argv[2]}} if sys.argv[2] != "fail" else {{}}))
source = FilesSource(FilesConfig(path="a.ndjson"), context)
try:
    source.probe(None, schema)
    rows = [r for b in source.extract(None, schema).batches() for r in b.to_pylist()]
    print(rows)
except Exception as exc:
    print(type(exc).__name__, exc)
"""


@pytest.mark.parametrize("mode", ["fail", "quarantine"])
def test_a_non_object_first_line_does_not_crash(tmp_path: Path, mode: str) -> None:
    """A subprocess: on the old code pyarrow's JSON reader took the process down (-11)."""
    (tmp_path / "a.ndjson").write_bytes(b'null\n{"id": 1, "name": "a"}\n')
    result = subprocess.run(
        [sys.executable, "-c", SEGFAULT.format(), str(tmp_path), mode],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    if mode == "fail":
        assert result.stdout.startswith("SourceError a.ndjson: line 1 is not a JSON object")
    else:
        assert "'_parse_errors': ['parse: line 1 is not a JSON object']" in result.stdout
        assert (
            "{'id': 1, 'name': 'a', '_source_file': 'a.ndjson', '_parse_errors': None}"
            in result.stdout
        )


@pytest.mark.parametrize(
    "line", [b"null", b"[1]", b"1", b'"x"', b'{"id": 1} null', b'{"id": 1} {"id": 2}']
)
def test_every_line_that_is_not_one_object_is_a_problem(tmp_path: Path, line: bytes) -> None:
    data = b'{"id": 1}\n' + line + b'\n{"id": 3}\n'
    rows = read(tmp_path, "a.ndjson", data)
    assert [r["id"] for r in rows] == [1, None, 3]
    (problem,) = [r for r in reasons(rows) if r]
    assert problem in (["parse: line 2 is not a JSON object"], ["parse: line 2 is not valid JSON"])
    assert isinstance(failure(tmp_path, "a.ndjson", data), SourceError)


# --- item 8 (data files): deep nesting is a parse error, not RecursionError ---------------------


def test_deeply_nested_json_array(tmp_path: Path) -> None:
    error = failure(tmp_path, "a.json", b"[" * 50_000)
    assert "nests deeper than" in str(error)
    rows = read(tmp_path, "a.json", b"[" * 50_000)
    assert reasons(rows) == [
        [
            "parse: line 1 nests deeper than the JSON parser allows "
            f"(about {sys.getrecursionlimit()} levels); the rest of the file is not read"
        ]
    ]


def test_deeply_nested_ndjson_line(tmp_path: Path) -> None:
    deep = b'{"id": 2, "name": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    data = b'{"id": 1}\n' + deep + b'\n{"id": 3}\n'
    rows = read(tmp_path, "a.ndjson", data)
    assert [r["id"] for r in rows] == [1, None, 3]
    assert reasons(rows)[1] == [
        f"parse: line 2 nests deeper than the JSON parser allows (about {sys.getrecursionlimit()} levels)"
    ]
    assert "line 2 nests deeper" in str(failure(tmp_path, "a.ndjson", data))


# --- item 4a (source side): invalid UTF-8 never reaches bronze ----------------------------------


def test_invalid_utf8_in_ndjson_is_a_problem_of_that_value(tmp_path: Path) -> None:
    data = b'{"id": 1, "name": "a"}\n{"id": 2, "name": "\xfe\xff"}\n'
    error = failure(tmp_path, "a.ndjson", data)
    assert "column name, value '\\xfe\\xff' (line 2)" in str(error)
    rows = read(tmp_path, "a.ndjson", data)
    assert [(r["id"], r["name"]) for r in rows] == [(1, "a"), (2, None)]
    assert reasons(rows) == [None, ["parse: column name, value '\\xfe\\xff' (line 2)"]]
    escaped = b'{"id": 3, "name": "\\udcff"}\n'  # valid UTF-8 text, an invalid string
    assert reasons(read(tmp_path, "b.ndjson", escaped)) == [
        ["parse: column name, value '\\xff' (line 1)"]
    ]


def test_invalid_utf8_inside_a_nested_value_is_shown_escaped(tmp_path: Path) -> None:
    data = b'{"id": 1, "name": {"\x80": 1}}\n'
    assert "column name, value '{\"\\x80\": 1}' (line 1)" in str(
        failure(tmp_path, "a.ndjson", data)
    )
    assert reasons(read(tmp_path, "a.ndjson", data)) == [
        ["parse: column name, value '{\"\\x80\": 1}' (line 1)"]
    ]


def test_invalid_utf8_in_csv_is_a_problem_of_that_value(tmp_path: Path) -> None:
    data = b"id,name,amount\n1,\xfe\xff,1.5\n2,b,2\n"
    assert "column name, value '\\xfe\\xff' (line 2)" in str(failure(tmp_path, "a.csv", data))
    rows = read(tmp_path, "a.csv", data)
    assert [(r["id"], r["name"], r["amount"]) for r in rows] == [(1, None, 1.5), (2, "b", 2.0)]
    assert reasons(rows)[0] == ["parse: column name, value '\\xfe\\xff' (line 2)"]


# --- long lines, broken files, I/O --------------------------------------------------------------


def test_ndjson_lines_longer_than_a_block_are_read(tmp_path: Path) -> None:
    long = "x" * 5000
    data = "".join(
        json.dumps({"id": n, "name": long if n == 2 else "a"}) + "\n" for n in range(1, 4)
    )
    for mode in ("fail", "quarantine"):
        rows = read(tmp_path, "a.ndjson", data.encode(), mode=mode, block_size_bytes=1024)
        assert [(r["id"], len(r["name"])) for r in rows] == [(1, 1), (2, 5000), (3, 1)]


def test_csv_rows_longer_than_a_block_are_read(tmp_path: Path) -> None:
    data = "id,name\n" + "".join(f"{n},{'x' * (5000 if n == 50 else 1)}\n" for n in range(100))
    for mode in ("fail", "quarantine"):
        rows = read(tmp_path, "a.csv", data.encode(), mode=mode, block_size_bytes=1024)
        assert [r["id"] for r in rows] == list(range(100))
        assert len(rows[50]["name"]) == 5000


def test_ndjson_line_beyond_the_cap_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weir.sources.files import ndjson_reader

    monkeypatch.setattr(ndjson_reader, "MAX_LINE_BYTES", 16 * 1024)
    data = b'{"id": 1}\n{"id": 2, "name": "' + b"x" * 40_000 + b'"}\n{"id": 3}\n'
    rows = read(tmp_path, "a.ndjson", data, block_size_bytes=1024)
    assert [r["id"] for r in rows] == [1, None, 3]
    assert reasons(rows)[1] == ["parse: line 2 is longer than 16 KiB"]
    assert "line 2 is longer than 16 KiB" in str(
        failure(tmp_path, "a.ndjson", data, block_size_bytes=1024)
    )


@pytest.mark.parametrize("name", ["a.csv.gz", "a.ndjson.gz", "a.json.gz"])
def test_a_truncated_compressed_file_is_a_problem_of_the_file(tmp_path: Path, name: str) -> None:
    body = b"id,name\n" + b"1,a\n" * 1000 if ".csv" in name else b'{"id": 1}\n' * 1000
    if ".json." in name:
        body = b"[" + b",".join([b'{"id": 1}'] * 1000) + b"]"
    data = gzip.compress(body)[:-20]
    assert "the file is corrupt or truncated" in str(failure(tmp_path, name, data))
    rows = read(tmp_path, name, data)
    assert reasons(rows)[-1] == [
        "parse: the file is corrupt or truncated (Truncated compressed stream)"
    ]


def test_a_file_that_is_not_parquet(tmp_path: Path) -> None:
    assert "not a readable Parquet file" in str(failure(tmp_path, "a.parquet", b"PAR1 not really"))
    rows = read(tmp_path, "a.parquet", b"PAR1 not really")
    assert [r["id"] for r in rows] == [None]
    assert rows[0]["_parse_errors"][0].startswith("parse: not a readable Parquet file")


def test_a_parquet_file_that_breaks_off(tmp_path: Path) -> None:
    """pyarrow reports a corrupt page as an OSError: of a local file, that is its content."""
    table = pa.table({"id": list(range(300)), "name": [f"n{n}" for n in range(300)]})
    pq.write_table(table, tmp_path / "good.parquet", row_group_size=100, compression="none")
    data = bytearray((tmp_path / "good.parquet").read_bytes())
    offset = (
        pq.ParquetFile(tmp_path / "good.parquet").metadata.row_group(2).column(0).data_page_offset
    )
    data[offset : offset + 8] = b"\xff" * 8  # the third row group's first page header
    error = failure(tmp_path, "a.parquet", bytes(data))
    assert "the file is corrupt or truncated" in str(error)
    rows = read(tmp_path, "a.parquet", bytes(data))
    assert [r["id"] for r in rows[:200]] == list(range(200))
    assert rows[-1]["_parse_errors"][0].startswith("parse: the file is corrupt or truncated (")
    assert rows[-1]["_parse_errors"][0].endswith("; read 200 rows, the rest is not read")


def test_a_json_file_that_is_not_an_array(tmp_path: Path) -> None:
    error = failure(tmp_path, "a.json", b'{"id": 1}\n{"id": 2}\n')
    assert isinstance(error, SourceError) and "ndjson" in str(error)
    rows = read(tmp_path, "a.json", b'[{"id": 1}, {"id": 2} {"id": 3}]')
    assert [r["id"] for r in rows] == [1, 2, None]
    assert reasons(rows)[2] == ["parse: line 1: expected ',' or ']' in the JSON array"]


@pytest.mark.parametrize("mode", ["fail", "quarantine"])
def test_io_failures_are_errors_not_parse_problems(tmp_path: Path, mode: str) -> None:
    (tmp_path / "a.csv").write_text("id\n1\n")
    extraction = source(tmp_path, mode, path="a.csv").extract(None, SCHEMA)
    (tmp_path / "a.csv").unlink()  # vanished between listing and reading
    with pytest.raises(SourceError, match=r"^a\.csv: could not read"):
        list(extraction.batches())


# --- probe: only weir errors, and never on quarantined garbage ----------------------------------


@pytest.mark.parametrize("name", ["a.csv", "a.ndjson", "a.json", "a.parquet", "a.csv.gz"])
def test_probe_of_garbage(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"\x1f\x8b\xff\xfe" + os.urandom(64) + b"\n" + b"[" * 5000)
    try:
        source(tmp_path, "fail", path=name).probe(None, SCHEMA)
    except WeirError as exc:
        assert str(exc).startswith(f"{name}: ")
    source(tmp_path, "quarantine", path=name).probe(None, SCHEMA)  # never raises


# --- the memory source and conform() ------------------------------------------------------------


def test_memory_source_conforms_strictly(tmp_path: Path) -> None:
    memory.register("bad-floats", [pa.record_batch({"id": [1, 2], "amount": [1.5, float("inf")]})])
    config = MemoryConfig(dataset="bad-floats")
    failing = MemorySource(config, SourceContext("p", str(tmp_path), "r"))
    with pytest.raises(
        SchemaDriftError, match=r"^memory:bad-floats#0: column amount, value 'inf' \(row 2\)"
    ):
        list(failing.extract(None, SCHEMA).batches())
    context = SourceContext("p", str(tmp_path), "r", on_parse_error="quarantine")
    (batch,) = MemorySource(config, context).extract(None, SCHEMA).batches()
    assert batch.schema.names == [*SCHEMA.names, "_parse_errors"]
    assert batch.column("amount").to_pylist() == [1.5, None]
    assert batch.column("_parse_errors").to_pylist() == [
        None,
        ["parse: column amount, value 'inf' (row 2)"],
    ]


def test_quarantine_batches_end_with_the_reasons_column(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,name\n1,a\n")
    (batch,) = source(tmp_path, "quarantine", path="a.csv").extract(None, SCHEMA).batches()
    assert batch.schema.names == [*SCHEMA.names, "_source_file", "_parse_errors"]
    assert batch.schema.field("_parse_errors").type == pa.list_(pa.string())
    (batch,) = source(tmp_path, "fail", path="a.csv").extract(None, SCHEMA).batches()
    assert batch.schema.names == [*SCHEMA.names, "_source_file"]


class _Flaky(pafs.FileSystemHandler):
    """A local tree standing in for an object store whose connection drops after the first
    read of a file (the network edge is the one thing faked)."""

    def __init__(self, root: Path):
        self.local = pafs.SubTreeFileSystem(str(root), pafs.LocalFileSystem())

    def get_type_name(self) -> str:
        return "flaky"

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return self.local.get_file_info(selector)

    def open_input_stream(self, path: str) -> pa.NativeFile:
        return pa.PythonFile(_Dropping(self.local.open_input_stream(path).read()), mode="r")

    def open_input_file(self, path: str) -> pa.NativeFile:
        return self.open_input_stream(path)

    def normalize_path(self, path: str) -> str:
        return path

    def _read_only(self, *args: Any) -> Any:
        raise OSError("read-only")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only


class _Dropping(io.RawIOBase):
    def __init__(self, data: bytes):
        self.data, self.reads = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        if self.reads > 1:
            raise OSError("AWS Error NETWORK_CONNECTION during GetObject operation")
        chunk = self.data[: min(len(buffer), 64)]
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("name", ["a.csv", "a.ndjson"])
def test_a_dropped_connection_is_transient_not_a_parse_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    from weir.sources.files import listing

    store = tmp_path / "store"
    store.mkdir()
    data = b"id\n" + b"1\n" * 100 if name.endswith(".csv") else b'{"id": 1}\n' * 100
    (store / name).write_bytes(data)
    flaky = pafs.PyFileSystem(_Flaky(store))
    monkeypatch.setattr(listing, "filesystem", lambda location: (flaky, ""))
    for mode in ("fail", "quarantine"):
        extraction = source(tmp_path, mode, path=f"s3://bucket/{name}").extract(None, SCHEMA)
        with pytest.raises(TransientSourceError, match="NETWORK_CONNECTION"):
            list(extraction.batches())
