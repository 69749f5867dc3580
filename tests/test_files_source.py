"""The files source on real files in tmp_path: CSV, NDJSON, JSON and Parquet."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weir import sources
from weir.errors import ConfigError, SchemaDriftError, SourceError
from weir.sources.base import Extraction, SourceContext
from weir.sources.files import FilesConfig, FilesSource, listing

CONTRACT = pa.schema(
    [
        pa.field("station", pa.string(), nullable=False),
        pa.field("day", pa.date32()),
        pa.field("observed_at", pa.timestamp("us")),
        pa.field("temp", pa.float64()),
        pa.field("count", pa.int64()),
        pa.field("ok", pa.bool_()),
        pa.field("amount", pa.decimal128(10, 2)),
    ]
)
SHAPED = CONTRACT.append(pa.field("_source_file", pa.string()))
HEADER = "station,day,observed_at,temp,count,ok,amount"
ROW_A = "A,2013-01-01,2013-01-01T06:30:00,12.5,3,true,10.25"
ROW_B = "B,2013-01-02,2013-01-02 07:00:00,NA,,false,"
EXPECTED_A = {
    "station": "A",
    "day": dt.date(2013, 1, 1),
    "observed_at": dt.datetime(2013, 1, 1, 6, 30),
    "temp": 12.5,
    "count": 3,
    "ok": True,
    "amount": Decimal("10.25"),
}
EXPECTED_B = {
    "station": "B",
    "day": dt.date(2013, 1, 2),
    "observed_at": dt.datetime(2013, 1, 2, 7, 0),
    "temp": None,
    "count": None,
    "ok": False,
    "amount": None,
}


def make(tmp_path: Path, **config: Any) -> FilesSource:
    context = SourceContext(pipeline="p", project_dir=str(tmp_path), run_id="r1")
    return FilesSource(FilesConfig(**config), context)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def csv_file(path: Path, *rows: str, header: str = HEADER) -> Path:
    return write(path, "\n".join([header, *rows]) + "\n")


def drain(extraction: Extraction) -> pa.Table:
    return pa.Table.from_batches(list(extraction.batches()), schema=SHAPED)


def rows(extraction: Extraction) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = drain(extraction).to_pylist()
    return got


# --- formats, read with exact types -------------------------------------------------------


def test_csv_is_read_with_the_contract_types(tmp_path: Path) -> None:
    csv_file(tmp_path / "data" / "w.csv", ROW_A, ROW_B)
    extraction = make(tmp_path, path="data").extract(None, CONTRACT)
    table = drain(extraction)
    assert table.schema == SHAPED
    assert table.to_pylist() == [
        {**EXPECTED_A, "_source_file": "data/w.csv"},
        {**EXPECTED_B, "_source_file": "data/w.csv"},
    ]
    assert extraction.warnings == []


def test_ndjson_is_read_with_the_contract_types(tmp_path: Path) -> None:
    lines = [
        {
            "station": "A",
            "day": "2013-01-01",
            "observed_at": "2013-01-01T06:30:00",
            "temp": 12.5,
            "count": 3,
            "ok": True,
            "amount": "10.25",
            "unknown": {"nested": [1]},
        },
        {"station": "B", "day": "2013-01-02", "observed_at": "2013-01-02 07:00:00", "ok": False},
    ]
    write(tmp_path / "in" / "w.ndjson", "\n".join(json.dumps(line) for line in lines) + "\n")
    table = drain(make(tmp_path, path="in/*.ndjson").extract(None, CONTRACT))
    assert table.schema == SHAPED
    assert table.to_pylist() == [
        {**EXPECTED_A, "_source_file": "in/w.ndjson"},
        {**EXPECTED_B, "_source_file": "in/w.ndjson"},
    ]


def test_json_array_is_read_with_the_contract_types(tmp_path: Path) -> None:
    records = [{"station": "A", "count": 3, "temp": 1}, {"station": "B", "day": "2013-01-02"}]
    (tmp_path / "w.json").write_text(json.dumps(records))
    got = rows(make(tmp_path, path="w.json").extract(None, CONTRACT))
    assert [(r["station"], r["count"], r["temp"], r["day"]) for r in got] == [
        ("A", 3, 1.0, None),
        ("B", None, None, dt.date(2013, 1, 2)),
    ]


def test_json_that_is_not_an_array_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "w.json").write_text('{"station": "A"}\n{"station": "B"}\n')
    extraction = make(tmp_path, path="w.json").extract(None, CONTRACT)
    with pytest.raises(SourceError, match=r"w\.json") as info:
        drain(extraction)
    assert "ndjson" in str(info.value)


def test_parquet_columns_are_cast_safely_and_extra_columns_not_read(tmp_path: Path) -> None:
    table = pa.table(
        {
            "extra": pa.array(["x", "y"]),
            "count": pa.array([1, None], pa.int32()),
            "station": pa.array(["A", "B"]),
            "temp": pa.array([1.5, 2.5], pa.float32()),
        }
    )
    (tmp_path / "p").mkdir()
    pq.write_table(table, tmp_path / "p" / "part-0.parquet")
    source = make(tmp_path, path="p")
    assert source.probe(None) == table.schema  # the footer, native types
    got = drain(source.extract(None, CONTRACT))
    assert got.schema == SHAPED
    assert got.column("count").to_pylist() == [1, None]
    assert got.column("temp").to_pylist() == [1.5, 2.5]
    assert got.column("day").null_count == 2


def test_parquet_value_that_does_not_fit_the_contract_is_drift(tmp_path: Path) -> None:
    pq.write_table(pa.table({"station": ["A"], "count": [1.5]}), tmp_path / "x.parquet")
    with pytest.raises(SchemaDriftError, match=r"x\.parquet: column count, value '1\.5' \(row 1\)"):
        drain(make(tmp_path, path="*.parquet").extract(None, CONTRACT))


def test_gzip_compressed_csv(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "w.csv.gz", "wt") as handle:
        handle.write(f"{HEADER}\n{ROW_A}\n")
    source = make(tmp_path, path="*.csv.gz")
    assert source.probe(None, CONTRACT) == CONTRACT
    assert rows(source.extract(None, CONTRACT)) == [{**EXPECTED_A, "_source_file": "w.csv.gz"}]


def test_headerless_csv_with_other_options(tmp_path: Path) -> None:
    write(tmp_path / "w.csv", "A;'x;y';-\nB;'z';7\n")
    schema = pa.schema([("station", pa.string()), ("note", pa.string()), ("count", pa.int64())])
    source = make(
        tmp_path,
        path="w.csv",
        csv={"header": False, "delimiter": ";", "quote_char": "'", "null_values": ["-"]},
    )
    assert source.probe(None) is None  # column names are unknown without the contract
    got = pa.Table.from_batches(list(source.extract(None, schema).batches())).to_pylist()
    assert [(r["station"], r["note"], r["count"]) for r in got] == [
        ("A", "x;y", None),
        ("B", "z", 7),
    ]


def test_timestamps_with_zone_need_an_offset(tmp_path: Path) -> None:
    schema = pa.schema([("at", pa.timestamp("us", tz="UTC"))])
    write(tmp_path / "ok.csv", "at\n2013-01-01T06:00:00Z\n2013-01-01T08:00:00+01:00\n")
    got = pa.Table.from_batches(list(make(tmp_path, path="ok.csv").extract(None, schema).batches()))
    utc = dt.UTC
    assert got.column("at").to_pylist() == [
        dt.datetime(2013, 1, 1, 6, tzinfo=utc),
        dt.datetime(2013, 1, 1, 7, tzinfo=utc),
    ]
    write(tmp_path / "naive.csv", "at\n2013-01-01T06:00:00\n")
    with pytest.raises(
        SchemaDriftError, match=r"naive\.csv: column at, value .* \(line 2\).*zone offset"
    ):
        list(make(tmp_path, path="naive.csv").extract(None, schema).batches())


# --- listing: directory, glob, URL ---------------------------------------------------------


def test_directory_lists_its_own_files_in_sorted_order_skipping_hidden(tmp_path: Path) -> None:
    csv_file(tmp_path / "d" / "b.csv", "B", header="station")
    csv_file(tmp_path / "d" / "a.csv", "A", header="station")
    csv_file(tmp_path / "d" / "sub" / "c.csv", "C", header="station")
    csv_file(tmp_path / "d" / ".hidden.csv", "H", header="station")
    write(tmp_path / "d" / "_SUCCESS", "")
    got = rows(make(tmp_path, path="d").extract(None, CONTRACT))
    assert [(r["station"], r["_source_file"]) for r in got] == [("A", "d/a.csv"), ("B", "d/b.csv")]


def test_glob_patterns(tmp_path: Path) -> None:
    csv_file(tmp_path / "d" / "2013" / "x_01.csv", "A", header="station")
    csv_file(tmp_path / "d" / "2013" / "x_02.csv", "B", header="station")
    csv_file(tmp_path / "d" / "2014" / "deep" / "x_01.csv", "C", header="station")
    csv_file(tmp_path / "d" / "2014" / "y_01.csv", "D", header="station")

    def stations(path: str) -> list[str]:
        return [r["station"] for r in rows(make(tmp_path, path=path).extract(None, CONTRACT))]

    assert stations("d/*/x_*.csv") == ["A", "B"]
    assert stations("d/**/x_01.csv") == ["A", "C"]
    assert stations("d/**/*.csv") == ["A", "B", "C", "D"]
    assert stations("d/201[4]/*.csv") == ["D"]
    assert stations("d/2013/x_0?.csv") == ["A", "B"]
    assert stations(str(tmp_path / "d" / "2013" / "x_01.csv")) == ["A"]  # absolute file


def test_file_url_takes_the_url_code_path(tmp_path: Path) -> None:
    csv_file(tmp_path / "d" / "a.csv", "A", header="station")
    got = rows(make(tmp_path, path=f"file://{tmp_path}/d/*.csv").extract(None, CONTRACT))
    assert [(r["station"], r["_source_file"]) for r in got] == [("A", "d/a.csv")]


def test_object_store_urls_name_files_by_full_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only FileSystem.from_uri is faked (a local tree stands in for the bucket)."""
    store = tmp_path / "store"
    csv_file(store / "bucket" / "weather" / "2013" / "a.csv", "A", header="station")
    csv_file(store / "bucket" / "weather" / "2013" / "b.txt", "B", header="station")
    seen: list[str] = []

    def from_uri(location: Any) -> tuple[Any, str]:
        seen.append(location.base + location.query)
        return pafs.SubTreeFileSystem(str(store), pafs.LocalFileSystem()), "bucket/weather"

    monkeypatch.setattr(listing, "filesystem", from_uri)
    source = make(tmp_path, path="s3://bucket/weather/*/*.csv?region=eu-west-1")
    extraction = source.extract(None, CONTRACT)
    assert [r["_source_file"] for r in rows(extraction)] == ["s3://bucket/weather/2013/a.csv"]
    assert list(extraction.position()["files"]) == ["s3://bucket/weather/2013/a.csv"]
    assert seen == ["s3://bucket/weather?region=eu-west-1"]


def test_files_outside_the_project_are_named_by_absolute_path(tmp_path: Path) -> None:
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    csv_file(outside / "a.csv", "A", header="station")
    extraction = make(project, path="../outside").extract(None, CONTRACT)
    assert [r["_source_file"] for r in rows(extraction)] == [f"{outside}/a.csv"]
    assert list(extraction.position()["files"]) == [f"{outside}/a.csv"]


def test_missing_directory_gives_no_batches_and_a_warning(tmp_path: Path) -> None:
    position = {"files": {"gone/a.csv": {"size": 1, "mtime_ns": 2}}}
    source = make(tmp_path, path="gone")
    extraction = source.extract(position, CONTRACT)
    assert list(extraction.batches()) == []
    assert extraction.position() == position
    assert extraction.warnings == ["gone does not exist; no files"]
    assert source.probe(position) is None
    extraction = make(tmp_path, path="gone/*.csv").extract(None, CONTRACT)
    assert extraction.warnings == ["gone does not exist; no files"]


def test_empty_directory_and_empty_files_give_no_batches(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    extraction = make(tmp_path, path="d").extract(None, CONTRACT)
    assert (list(extraction.batches()), extraction.position(), extraction.warnings) == (
        [],
        {"files": {}},
        [],
    )
    (tmp_path / "d" / "empty.csv").write_text("")
    extraction = make(tmp_path, path="d").extract(None, CONTRACT)
    assert list(extraction.batches()) == []
    assert list(extraction.position()["files"]) == ["d/empty.csv"]  # ingested, zero rows


def test_format_is_inferred_and_must_be_unambiguous(tmp_path: Path) -> None:
    csv_file(tmp_path / "d" / "a.csv", "A", header="station")
    pq.write_table(pa.table({"station": ["B"]}), tmp_path / "d" / "b.parquet")
    with pytest.raises(ConfigError, match=r"several formats \(csv, parquet\)"):
        make(tmp_path, path="d").extract(None, CONTRACT)
    assert [r["station"] for r in rows(make(tmp_path, path="d/*.csv").extract(None, CONTRACT))] == [
        "A"
    ]
    write(tmp_path / "e" / "notes.txt", "station\nA\n")
    with pytest.raises(ConfigError, match=r"cannot tell the format of e/notes\.txt"):
        make(tmp_path, path="e").extract(None, CONTRACT)
    got = rows(make(tmp_path, path="e", format="csv").extract(None, CONTRACT))
    assert [r["station"] for r in got] == ["A"]


# --- position ------------------------------------------------------------------------------


def test_second_extract_reads_only_the_new_file(tmp_path: Path) -> None:
    source = make(tmp_path, path="d/*.csv")
    csv_file(tmp_path / "d" / "weather_2013_01.csv", "A", header="station")
    first = source.extract(None, CONTRACT)
    assert [r["station"] for r in rows(first)] == ["A"]
    committed = json.loads(json.dumps(first.position()))  # as stored in the Delta commit
    assert first.watermark() == "1 file (latest weather_2013_01.csv)"

    csv_file(tmp_path / "d" / "weather_2013_02.csv", "B", "C", header="station")
    assert source.probe(committed) is not None
    second = source.extract(committed, CONTRACT)
    assert [(r["station"], r["_source_file"]) for r in rows(second)] == [
        ("B", "d/weather_2013_02.csv"),
        ("C", "d/weather_2013_02.csv"),
    ]
    files = second.position()["files"]
    assert list(files) == ["d/weather_2013_01.csv", "d/weather_2013_02.csv"]
    stat = (tmp_path / "d" / "weather_2013_02.csv").stat()
    assert files["d/weather_2013_02.csv"] == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    assert second.watermark() == "2 files (latest weather_2013_02.csv)"
    assert FilesSource.describe(second.position()) == "2 files (latest weather_2013_02.csv)"
    assert FilesSource.describe(None) is None

    third = source.extract(second.position(), CONTRACT)  # nothing new: idempotent
    assert list(third.batches()) == []
    assert third.position() == second.position()
    assert source.probe(second.position()) is None


@settings(max_examples=25, deadline=None)
@given(rounds=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=5))
def test_every_file_is_ingested_exactly_once(
    tmp_path_factory: pytest.TempPathFactory, rounds: list[int]
) -> None:
    """Files dropped in rounds, each round read from the last committed position."""
    root = tmp_path_factory.mktemp("drops")
    source = make(root, path="in/*.csv")
    position: dict[str, Any] | None = None
    dropped: list[str] = []
    seen: list[tuple[str, str]] = []
    for new in rounds:
        for _ in range(new):
            name = f"in/f{len(dropped):03d}.csv"
            csv_file(root / name, f"{name}#1", f"{name}#2", header="station")
            dropped.append(name)
        extraction = source.extract(position, CONTRACT)
        seen += [(r["_source_file"], r["station"]) for r in rows(extraction)]
        position = json.loads(json.dumps(extraction.position()))
    assert seen == [(name, f"{name}#{n}") for name in dropped for n in (1, 2)]
    assert position is not None and list(position["files"]) == dropped


def test_changed_file_is_not_reread_but_warned_about(tmp_path: Path) -> None:
    path = csv_file(tmp_path / "a.csv", "A", header="station")
    source = make(tmp_path, path="*.csv")
    first = source.extract(None, CONTRACT)
    drain(first)
    csv_file(path, "A", "A2", header="station")
    os.utime(path, ns=(1, 1_000_000_000))
    second = source.extract(first.position(), CONTRACT)
    assert list(second.batches()) == []
    assert second.position() == first.position()
    assert second.warnings == ["a.csv changed since it was ingested; not re-read — use a backfill"]


def test_malformed_position_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="malformed"):
        make(tmp_path, path=".").extract({"files": ["a.csv"]}, CONTRACT)


# --- drift ---------------------------------------------------------------------------------


def test_missing_required_column_fails_before_any_batch_of_that_file(tmp_path: Path) -> None:
    csv_file(tmp_path / "a.csv", "A", header="station")
    csv_file(tmp_path / "b.csv", "2013-01-01", header="day")
    seen: list[str] = []
    with pytest.raises(SchemaDriftError) as info:
        for batch in make(tmp_path, path="*.csv").extract(None, CONTRACT).batches():
            seen.extend(batch.column("_source_file").to_pylist())
    assert seen == ["a.csv"]
    assert str(info.value).startswith("b.csv: required column 'station' missing")


def test_missing_required_columns_in_ndjson_and_parquet(tmp_path: Path) -> None:
    write(tmp_path / "a.ndjson", '{"temp": 1.0}\n')
    pq.write_table(pa.table({"temp": [1.0]}), tmp_path / "b.parquet")
    for path in ("a.ndjson", "b.parquet"):
        with pytest.raises(SchemaDriftError, match=f"{path}: required column 'station'"):
            list(make(tmp_path, path=path).extract(None, CONTRACT).batches())


def test_missing_nullable_column_reads_as_nulls(tmp_path: Path) -> None:
    csv_file(tmp_path / "a.csv", "A,1.5", header="station,temp")
    (row,) = rows(make(tmp_path, path="a.csv").extract(None, CONTRACT))
    assert row == {
        "station": "A",
        "day": None,
        "observed_at": None,
        "temp": 1.5,
        "count": None,
        "ok": None,
        "amount": None,
        "_source_file": "a.csv",
    }


def test_probe_unions_the_pending_files_and_reports_extra_columns(tmp_path: Path) -> None:
    csv_file(tmp_path / "a.csv", "A,1", header="station,count")
    csv_file(tmp_path / "b.csv", "B,2,x", header="station,count,region")
    source = make(tmp_path, path="*.csv")
    assert source.probe(None) == pa.schema(
        [("station", pa.string()), ("count", pa.string()), ("region", pa.string())]
    )
    assert source.probe(None, CONTRACT) == pa.schema(
        [
            pa.field("station", pa.string(), nullable=False),
            ("count", pa.int64()),
            ("region", pa.string()),
        ]
    )
    # the extra column is not read until the contract (the requested schema) has it
    assert rows(source.extract(None, CONTRACT))[1]["count"] == 2
    evolved = pa.schema([("station", pa.string()), ("region", pa.string())])
    got = pa.Table.from_batches(list(source.extract(None, evolved).batches()))
    assert got.column("region").to_pylist() == [None, "x"]


def test_ndjson_keys_that_first_appear_after_the_first_block_are_read(tmp_path: Path) -> None:
    lines = [{"station": f"S{n}"} for n in range(200)] + [{"station": "Z", "count": 7}]
    write(tmp_path / "a.ndjson", "".join(json.dumps(line) + "\n" for line in lines))
    source = make(tmp_path, path="a.ndjson", block_size_bytes=1024)
    probed = source.probe(None)
    assert probed is not None
    assert "count" not in probed.names
    got = rows(source.extract(None, CONTRACT))
    assert len(got) == 201
    assert got[-1]["count"] == 7


def test_probe_of_ndjson_uses_the_first_block(tmp_path: Path) -> None:
    write(tmp_path / "a.ndjson", '{"station": "A", "n": 1, "tags": ["x"]}\n{"station": "B"}\n')
    assert make(tmp_path, path="a.ndjson").probe(None) == pa.schema(
        [("station", pa.string()), ("n", pa.int64()), ("tags", pa.list_(pa.string()))]
    )


def test_unparsable_csv_value_names_file_column_and_value(tmp_path: Path) -> None:
    csv_file(tmp_path / "a.csv", ROW_A, "C,2013-01-03,2013-01-03T00:00:00,warm,1,true,1")
    with pytest.raises(SchemaDriftError) as info:
        drain(make(tmp_path, path="a.csv").extract(None, CONTRACT))
    message = str(info.value)
    assert message.startswith("a.csv: column temp, value 'warm' (line 3) is not a valid float64")
    assert "Traceback" not in message
    assert "In CSV column" not in message


def test_unparsable_ndjson_value_is_drift(tmp_path: Path) -> None:
    write(tmp_path / "a.ndjson", '{"station": "A", "count": 1}\n{"station": "B", "count": "x"}\n')
    with pytest.raises(SchemaDriftError, match=r"a\.ndjson: column count, value 'x' \(line 2\)"):
        drain(make(tmp_path, path="a.ndjson").extract(None, CONTRACT))


def test_malformed_csv_does_not_echo_the_row(tmp_path: Path) -> None:
    csv_file(tmp_path / "a.csv", "A,1", "secret@example.com,2,3", header="station,count")
    with pytest.raises(SourceError) as info:
        drain(make(tmp_path, path="a.csv").extract(None, CONTRACT))
    assert str(info.value).startswith("a.csv: line 3 has 3 fields, expected 2")
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("first", ["short", "long"])
@pytest.mark.parametrize("kind", ["csv", "ndjson"])
def test_row_longer_than_a_block_asks_for_a_bigger_block(
    tmp_path: Path, kind: str, first: str
) -> None:
    long = "x" * 5000
    stations = ["A", long] if first == "short" else [long, "A"]
    if kind == "csv":
        csv_file(tmp_path / "a.csv", *stations, header="station")
    else:
        write(tmp_path / "a.ndjson", "".join(json.dumps({"station": s}) + "\n" for s in stations))
    source = make(tmp_path, path=f"a.{kind}", block_size_bytes=1024)
    try:
        got = [r["station"] for r in rows(source.extract(None, CONTRACT))]
    except SourceError as exc:
        assert str(exc).startswith(f"a.{kind}: ")
        assert "block_size_bytes" in str(exc)
    else:  # pyarrow grows its first block to hold a long first row
        assert got == stations


# --- bounded batches and memory ------------------------------------------------------------


def test_batches_are_bounded_by_batch_size_rows(tmp_path: Path) -> None:
    csv_file(tmp_path / "a.csv", *[f"S{n}" for n in range(2500)], header="station")
    pq.write_table(pa.table({"station": [f"S{n}" for n in range(2500)]}), tmp_path / "b.parquet")
    for path in ("a.csv", "b.parquet"):
        source = make(tmp_path, path=path, batch_size_rows=1000, block_size_bytes=4096)
        sizes = [b.num_rows for b in source.extract(None, CONTRACT).batches()]
        assert sum(sizes) == 2500
        assert max(sizes) <= 1000


RSS_SCRIPT = """
import json, sys
import pyarrow as pa
from weir.sources.base import SourceContext
from weir.sources.files import FilesConfig, FilesSource

schema = pa.schema([("station", pa.string()), ("day", pa.date32()), ("temp", pa.float64()),
                    ("count", pa.int64()), ("note", pa.string())])

def peak():
    # VmHWM, not ru_maxrss: after fork+exec ru_maxrss still counts the parent (pytest).
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024

def rows(path):
    config = FilesConfig(path=path, block_size_bytes=int(sys.argv[2]))
    source = FilesSource(config, SourceContext("p", sys.argv[1], "r1"))
    return sum(batch.num_rows for batch in source.extract(None, schema).batches())

start = peak()
rows("warmup.csv")  # thread pools and allocator arenas reach their steady state
warm = peak()
count = rows("big.csv")
print(json.dumps({"rows": count, "warmup": warm - start, "increase": peak() - warm}))
"""


def write_big_csv(path: Path, count: int) -> None:
    row = "ST{:06d},2013-01-{:02d},{}.5,{},some free text that pads the row a little\n"
    with open(path, "w") as handle:
        handle.write("station,day,temp,count,note\n")
        for start in range(0, count, 100_000):
            chunk = range(start, min(start + 100_000, count))
            handle.write("".join(row.format(n, n % 28 + 1, n % 40, n) for n in chunk))


@pytest.mark.skipif(sys.platform != "linux", reason="reads VmHWM from /proc")
def test_memory_stays_bounded_on_a_large_csv(tmp_path: Path) -> None:
    """The peak RSS grows by far less than the file while its batches are iterated.

    pyarrow's CSV reader reads up to 32 blocks ahead, so the bound is about
    32 * block_size_bytes plus a few batches, whatever the file size."""
    write_big_csv(tmp_path / "warmup.csv", 250_000)
    write_big_csv(tmp_path / "big.csv", 1_200_000)
    size = (tmp_path / "big.csv").stat().st_size
    assert size > 80 * 2**20
    block = 256 * 1024
    # mimalloc, pyarrow's default allocator, keeps freed pages for reuse: 2-30 MiB of noise
    # that says nothing about the reader. The system allocator hands them back.
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}
    result = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(tmp_path), str(block)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    measured = json.loads(result.stdout)
    mib = {key: round(value / 2**20, 1) for key, value in measured.items() if key != "rows"}
    print(f"csv {size / 2**20:.0f} MiB, block {block // 1024} KiB, peak RSS MiB: {mib}")
    assert measured["rows"] == 1_200_000
    assert measured["increase"] < size / 4


# --- configuration -------------------------------------------------------------------------


def test_registry_and_config(tmp_path: Path) -> None:
    assert sources.get("files") is FilesSource
    assert FilesSource.meta_columns == {"_source_file": pa.string()}
    config = FilesConfig(path="data/*.csv")
    assert (config.source, config.format) == ("files", None)
    assert (config.batch_size_rows, config.block_size_bytes) == (65_536, 1 << 20)
    assert config.csv.null_values == ("", "NA", "NULL", "null")
    assert (config.csv.header, config.csv.delimiter, config.csv.encoding) == (True, ",", "utf8")
    with pytest.raises(ValueError, match="extra"):
        FilesConfig.model_validate({"path": "x", "delimiter": ";"})
    with pytest.raises(ValueError, match="unsupported URL scheme 'ftp'"):
        FilesConfig(path="ftp://host/x.csv")
    with pytest.raises(ValueError, match="unknown encoding"):
        FilesConfig.model_validate({"path": "x", "csv": {"encoding": "klingon"}})
    with pytest.raises(ValueError, match="format"):
        FilesConfig.model_validate({"path": "x", "format": "xlsx"})


def test_latin1_csv(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes("station,note\nZürich,café\n".encode("latin-1"))
    schema = pa.schema([("station", pa.string()), ("note", pa.string())])
    extraction = make(tmp_path, path="a.csv", csv={"encoding": "latin-1"}).extract(None, schema)
    assert pa.Table.from_batches(list(extraction.batches())).to_pylist() == [
        {"station": "Zürich", "note": "café", "_source_file": "a.csv"}
    ]


# --- I/O failures are not content problems --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("orders.parquet", "parquet"), ("corrupt_orders.csv", "csv"), ("thrift.ndjson", "ndjson")],
)
def test_a_file_that_vanishes_before_it_is_read_is_an_io_error_not_a_broken_file(
    tmp_path: Path, name: str, fmt: str
) -> None:
    """pyarrow's OSError for a missing file has an errno: I/O, whatever words the file's name
    holds. The run fails and the next one reads the file; it is never counted as read."""
    path = tmp_path / "data" / name
    path.parent.mkdir(parents=True)
    if fmt == "parquet":
        pq.write_table(pa.table({"station": ["A"]}), path)
    else:
        write(path, "station\nA\n" if fmt == "csv" else '{"station": "A"}\n')
    context = SourceContext(
        pipeline="p", project_dir=str(tmp_path), run_id="r1", on_parse_error="quarantine"
    )
    source = FilesSource(FilesConfig(path="data", format=fmt), context)
    extraction = source.extract(None, CONTRACT)
    path.unlink()
    with pytest.raises(SourceError, match="could not read") as info:
        list(extraction.batches())
    assert info.value.where == f"data/{name}"
