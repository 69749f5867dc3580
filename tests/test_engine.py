"""The engine seam, driven directly: a DuckDB session flags a batch, evaluates its checks,
loads it with each strategy and materializes a model's result with each mode — on real
Delta tables in tmp_path, through weir.engine.base's interface only (what a second engine
would have to pass too)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from weir import layout
from weir.engine.base import Session, Since, engine_for
from weir.engine.duckdb_engine import DuckDBSession
from weir.errors import ConfigError, TransformError
from weir.lake.materialize import Bound
from weir.lake.strategies import LoadSpec
from weir.lake.table import Commit, Table
from weir.quality.compile import compile_rules
from weir.spec import Pipeline, Project, load_project
from weir.spec.contract import Quality
from weir.spec.pipeline import Scd2
from weir.transform.silver import SilverSql
from weirtest import modelkit
from weirtest.projects import write_project

CONTRACT: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "things",
    "version": "1.0.0",
    "schema": [
        {
            "name": "things",
            "properties": [
                {"name": "id", "physicalType": "int64", "primaryKey": True},
                {"name": "day", "physicalType": "date", "required": True},
                {
                    "name": "amount",
                    "physicalType": "int64",
                    "quality": [
                        {"rule": "range", "mustBeBetween": [0, 100], "name": "amount.small"}
                    ],
                },
            ],
        }
    ],
}
APP = "weir:things"
STARTED = "2024-01-01T00:00:00+00:00"


def project(root: Path, **load: Any) -> Project:
    pipeline = {
        "name": "things",
        "owner": "me",
        "contract": "things",
        "extract": {"source": "memory", "dataset": "things"},
        "load": {"strategy": "merge", **load},
    }
    return load_project(
        write_project(root, contracts={"things": CONTRACT}, pipelines={"things": pipeline})
    )


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    with_session = engine_for(project(tmp_path / "p")).session(started_at=STARTED)
    yield with_session
    with_session.close()


def bronze(batch: int, rows: list[tuple[int, int, int | None]]) -> pa.RecordBatchReader:
    """Bronze-shaped rows (contract columns and weir's ingest columns): (id, day, amount)."""
    n = len(rows)
    stamp = dt.datetime(2024, 1, batch, tzinfo=dt.UTC)
    data = {
        "id": pa.array([r[0] for r in rows], pa.int64()),
        "day": pa.array([dt.date(2024, 1, r[1]) for r in rows], pa.date32()),
        "amount": pa.array([r[2] for r in rows], pa.int64()),
        layout.RUN_ID.name: pa.array(["run"] * n, layout.RUN_ID.type),
        layout.BATCH.name: pa.array([batch] * n, layout.BATCH.type),
        layout.ROW.name: pa.array(range(n), layout.ROW.type),
        layout.INGESTED_AT.name: pa.array([stamp] * n, layout.INGESTED_AT.type),
    }
    return pa.table(data).to_reader()


def plan(pipeline: Pipeline, reader: pa.RecordBatchReader) -> SilverSql:
    return SilverSql.plan(pipeline, reader.schema)


def load_batch(
    session: Session, pipeline: Pipeline, table: Table, batch: int, rows: list[Any]
) -> dict[str, Any]:
    reader = bronze(batch, rows)
    spec = pipeline.spec.load
    load = LoadSpec(spec.strategy, pipeline.keys, spec.partition_by, scd2=spec.scd2, evolve=True)
    with session.flag(plan(pipeline, reader), reader) as flagged:
        written, metrics = flagged.load(
            table, Commit(APP, batch, "run"), load, dedupe=False, counting=lambda r: r
        )
    assert written == len(rows)
    return metrics


def rows_of(table: Table, *columns: str) -> list[tuple[Any, ...]]:
    data = DeltaTable(table.uri).to_pyarrow_table(columns=list(columns)).to_pylist()
    return sorted(tuple(r[c] for c in columns) for r in data)


# ---------------------------------------------------------------- the silver transform
def test_a_flagged_batch_is_checked_quarantined_and_counted(tmp_path: Path) -> None:
    proj = project(tmp_path / "p")
    pipeline = proj.pipeline("things")
    session = engine_for(proj).session(started_at=STARTED)
    reader = bronze(1, [(1, 1, 5), (2, 1, 500), (2, 2, 7), (3, 2, None)])
    try:
        with session.flag(plan(pipeline, reader), reader) as flagged:
            total, errors, results = flagged.scan(batch=1, samples=5)
            assert (total, errors) == (4, 1)
            by_name = {r.name: r for r in results}
            small = by_name["amount.small"]
            assert (small.status, small.failing_rows, small.batch) == ("fail", 1, 1)
            assert [s["id"] for s in small.samples] == ["2"]
            quarantined = flagged.quarantine()
            assert quarantined.column("id").to_pylist() == [2]
            assert quarantined.column(layout.REASONS.name).to_pylist() == [["amount.small"]]
            assert flagged.distinct_keys() == 3  # the valid rows: ids 1, 2 (its second) and 3
            assert session.rows(f"SELECT count(*) FROM {flagged.relation}") == [(4,)]
        with pytest.raises(Exception, match="flagged"):
            session.rows("SELECT * FROM flagged")  # the block dropped it
    finally:
        session.close()


def test_a_failing_transform_is_a_transform_error_naming_the_pipeline(
    tmp_path: Path, session: Session
) -> None:
    pipeline = project(tmp_path / "q").pipeline("things")
    wrong = pa.table({"id": pa.array([1], pa.int64())}).to_reader()  # no day, no ingest columns
    with (
        pytest.raises(TransformError, match="the silver transform failed") as caught,
        session.flag(plan(pipeline, wrong), wrong),
    ):
        pass
    assert caught.value.where == str(pipeline.path)


# ---------------------------------------------------------------- writes: strategies
@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("append", [(1, 10), (2, 20), (2, 21), (3, 30)]),
        ("merge", [(1, 10), (2, 21), (3, 30)]),
        ("truncate-reload", [(2, 21), (3, 30)]),
        ("partition-swap", [(1, 10), (2, 21), (3, 30)]),
    ],
)
def test_each_strategy_writes_one_commit_per_batch(
    tmp_path: Path, strategy: str, expected: list[tuple[int, int]]
) -> None:
    extra = {"partition_by": ["day"]} if strategy == "partition-swap" else {}
    proj = project(tmp_path / "p", strategy=strategy, **extra)
    pipeline = proj.pipeline("things")
    table = Table(layout.table_uri(proj.lake, "silver", "things"), label="silver")
    session = engine_for(proj).session(started_at=STARTED)
    try:
        load_batch(session, pipeline, table, 1, [(1, 1, 10), (2, 2, 20)])
        load_batch(session, pipeline, table, 2, [(2, 2, 21), (3, 3, 30)])
    finally:
        session.close()
    assert rows_of(table, "id", "amount") == expected
    assert table.applied(APP) == 2
    assert table.version() == 1  # one commit per batch


def test_scd2_opens_a_version_per_change(tmp_path: Path) -> None:
    proj = project(tmp_path / "p", strategy="scd2", scd2={"tracked": ["amount"]})
    pipeline = proj.pipeline("things")
    table = Table(layout.table_uri(proj.lake, "silver", "things"), label="silver")
    session = engine_for(proj).session(started_at=STARTED)
    try:
        load_batch(session, pipeline, table, 1, [(1, 1, 10), (2, 1, 20)])
        session.at("2024-01-02T00:00:00+00:00")
        load_batch(session, pipeline, table, 2, [(1, 1, 10), (2, 1, 21)])
    finally:
        session.close()
    assert rows_of(table, "id", "amount", "is_current") == [
        (1, 10, True),
        (2, 20, False),
        (2, 21, True),
    ]
    assert table.applied(APP) == 2


# ---------------------------------------------------------------- writes: models
def silver_source(proj: Project) -> Table:
    """A silver table written through the seam, as a model's source."""
    table = Table(layout.table_uri(proj.lake, "silver", "things"), label="silver")
    session = engine_for(proj).session(started_at=STARTED)
    try:
        load_batch(session, proj.pipeline("things"), table, 1, [(1, 1, 10), (2, 1, 5), (3, 2, 7)])
    finally:
        session.close()
    return table


BY_DAY = "SELECT day, sum(amount) AS total, count(*) AS n FROM silver.things GROUP BY day"


def test_a_model_result_is_counted_checked_and_written_in_each_mode(tmp_path: Path) -> None:
    proj = project(tmp_path / "p")
    source = silver_source(proj)
    gold = Table(layout.table_uri(proj.lake, "gold", "by_day"), label="gold")
    session = engine_for(proj).session(started_at=STARTED)
    app = "weir:model:by_day"
    try:
        session.expose({"silver.things": source})
        assert session.columns(BY_DAY) == {"day": "DATE", "total": "HUGEINT", "n": "BIGINT"}
        assert "DATE" in session.time_types
        with session.compute(BY_DAY, None) as result:
            assert result.rows == 2 and result.columns() == ["day", "total", "n"]
            assert result.key_problems(["day"]) == (0, [])
            assert result.high("day") == dt.date(2024, 1, 2)
            result.fits(compile_rules([Quality(rule="not_null", column="total")], "by_day"))
            with pytest.raises(TransformError):
                result.fits(compile_rules([Quality(rule="not_null", column="nope")], "by_day"))
            metrics = result.write(
                gold,
                Commit(app, 1, "run"),
                materialized="table",
                partition_by=[],
                keys=[],
                bound=None,
            )
        assert metrics["num_target_rows_inserted"] == 2
        start = session.window_start("2024-01-02", "DATE", "1 day")
        assert start == dt.date(2024, 1, 1)
        bound = Bound("day", dt.date(2024, 1, 2))
        for batch, materialized in ((2, "incremental"), (3, "partition-swap")):
            with session.compute(BY_DAY, bound) as window:
                assert window.rows == 1
                window.write(
                    gold,
                    Commit(app, batch, "run"),
                    materialized=materialized,
                    partition_by=["day"],
                    keys=["day"],
                    bound=bound,
                )
        assert gold.applied(app) == 3
        assert rows_of(gold, "day", "n") == [(dt.date(2024, 1, 1), 2), (dt.date(2024, 1, 2), 1)]
        with session.checking(gold, bound) as checked:
            [result_check] = checked.scan(
                compile_rules([Quality(rule="not_null", column="n")], "by_day")
            )
            assert result_check.status == "pass"
            assert session.rows(f"SELECT count(*) FROM {checked.relation}") == [(1,)]
        assert session.read(gold).num_rows == 2
    finally:
        session.close()


def test_a_snapshot_merge_versions_the_result(tmp_path: Path) -> None:
    proj = project(tmp_path / "p")
    source = silver_source(proj)
    snap = Table(layout.table_uri(proj.lake, "gold", "snap"), label="gold")
    settings = Scd2(tracked=["amount"])
    session = engine_for(proj).session(started_at=STARTED)
    try:
        session.expose({"silver.things": source})
        for batch, sql in enumerate(
            (
                "SELECT id, amount FROM silver.things",
                "SELECT id, CASE WHEN id = 2 THEN 6 ELSE amount END AS amount FROM silver.things",
            ),
            start=1,
        ):
            session.at(f"2024-01-0{batch}T00:00:00+00:00")
            with session.compute(sql, None) as result:
                result.snapshot(
                    snap,
                    Commit("weir:model:snap", batch, "run"),
                    keys=["id"],
                    settings=settings,
                    partition_by=[],
                    evolve=False,
                    replace=False,
                )
        with session.checking(snap, "current") as checked:
            assert session.rows(f"SELECT count(*) FROM {checked.relation}") == [(3,)]
    finally:
        session.close()
    assert rows_of(snap, "id", "amount", "is_current") == [
        (1, 10, True),
        (2, 5, False),
        (2, 6, True),
        (3, 7, True),
    ]


# ---------------------------------------------------------------- the session
def test_settings_name_the_engine_and_what_changes_results(session: Session) -> None:
    settings = session.settings()
    assert settings["engine"] == "duckdb" and settings["TimeZone"] == "UTC"


def test_unseen_drops_the_rows_a_table_holds(tmp_path: Path) -> None:
    proj = project(tmp_path / "p")
    table = silver_source(proj)
    session = engine_for(proj).session(started_at=STARTED)
    try:
        names = ["id", "amount"]
        rows = pa.table(
            {"id": pa.array([1, 9], pa.int64()), "amount": pa.array([10, 9], pa.int64())}
        )
        with session.unseen(rows.to_reader(), table, names, None) as fresh:
            assert fresh.read_all().column("id").to_pylist() == [9]
        # only the table's rows from the bound on count as known
        later = Since("day", pa.date32(), "2024-01-02")
        with session.unseen(rows.to_reader(), table, names, later) as fresh:
            assert fresh.read_all().num_rows == 2
    finally:
        session.close()


def test_an_engine_that_is_not_implemented_is_a_config_error(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", project="name: test\nengine: spark\n")
    with pytest.raises(ConfigError, match=r"engine 'spark' is not implemented \(engines: duckdb\)"):
        load_project(root)


def test_running_out_of_memory_names_weirs_setting(tmp_path: Path) -> None:
    """A model that needs more memory than duckdb_memory_limit fails as a user error whose
    hint names weir.yml's setting (not DuckDB's own SET advice), and the run goes on."""
    root = modelkit.events_project(
        tmp_path / "p",
        {
            "big": """
                /* weir
                materialized: table
                */
                SELECT grp, list(repeat('x', 20000000)) AS l FROM silver.events GROUP BY grp
            """
        },
    )
    (root / "weir.yml").write_text("name: test\nthreads: 2\nduckdb_memory_limit: 8MB\n")
    modelkit.push([(i, modelkit.day(1), "a", i, modelkit.at(1)) for i in range(20)])
    records = modelkit.run(root)
    assert records["events"].status == "success"
    big = records["big"]
    assert big.status == "failed"
    message = big.error_message or ""
    assert "DuckDB ran out of memory" in message
    assert "raise duckdb_memory_limit in weir.yml" in message
    assert "SET memory_limit" not in message
    assert "internal error" not in message


def test_an_out_of_memory_error_outside_a_statement_is_translated(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path / "p"))
    engine = engine_for(project)
    known = engine.translate(duckdb.OutOfMemoryException("Out of Memory Error: x\nSET …"))
    assert isinstance(known, TransformError)
    assert known.hint is not None and "duckdb_memory_limit" in known.hint
    assert engine.translate(ValueError("a bug")) is None


def test_a_share_of_memory_lowers_the_limit_and_spills_what_does_not_fit(
    session: Session,
) -> None:
    """While bronze is written beside the transform the engine keeps to half its setting
    (256MB by default), and to an eighth while rows stream into a plain write."""

    def limit() -> str:
        [(value,)] = session.rows("SELECT current_setting('memory_limit')")
        return str(value)

    full = limit()
    session.rows(
        "CREATE TEMP TABLE held AS SELECT i, repeat('x', 200) || i AS s FROM range(300000) t(i)"
    )
    session.share_memory(0.5)
    assert limit() == "122.0 MiB" and full == "244.1 MiB"
    session.share_memory(0.125)  # DuckDB moves `held` to its spill files to get there
    assert limit() == "30.5 MiB"
    [(spilled,)] = session.rows(
        "SELECT sum(temporary_storage_bytes) FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'"
    )
    assert spilled > 0
    assert session.rows("SELECT count(*), max(i) FROM held") == [(300_000, 299_999)]
    session.share_memory(1.0)
    assert limit() == full


def test_a_share_leaves_room_to_scan_a_large_spilled_table(session: Session) -> None:
    """Scanning a spilled temp table keeps memory pinned in proportion to its values: a
    1M-row, 40-column table cannot be read back at an eighth of 256MB (30.5 MiB). A 5M-row
    sql batch failed so, streaming into its silver write."""
    assert isinstance(session, DuckDBSession)
    columns = ", ".join(f"i + {n} AS c{n}" for n in range(40))
    session.rows(f"CREATE TEMP TABLE wide AS SELECT {columns} FROM range(1000000) t(i)")
    session.share_memory(0.125)
    [(value,)] = session.rows("SELECT current_setting('memory_limit')")
    assert value != "30.5 MiB" and value.endswith("MiB") and float(value.split()[0]) > 40
    reader = session.con.sql("SELECT * FROM wide").to_arrow_reader(16_384)
    assert sum(batch.num_rows for batch in reader) == 1_000_000
    session.rows("DROP TABLE wide")
    session.refit()  # the table is gone: back to an eighth
    [(value,)] = session.rows("SELECT current_setting('memory_limit')")
    assert value == "30.5 MiB"
    session.share_memory(1.0)


def test_a_share_the_engine_cannot_reach_yet_is_not_an_error(session: Session) -> None:
    session.rows("SET max_temp_directory_size = '1MB'")  # no room to spill: DuckDB keeps it all
    session.rows(
        "CREATE TEMP TABLE held AS SELECT i, repeat('y', 200) || i AS s FROM range(300000) t(i)"
    )
    session.share_memory(0.125)  # 30.5 MiB: less than `held` needs, so DuckDB refuses
    [(value,)] = session.rows("SELECT current_setting('memory_limit')")
    assert value == "244.1 MiB"
    assert session.rows("SELECT count(*) FROM held") == [(300_000,)]
