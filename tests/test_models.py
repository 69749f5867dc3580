"""Gold models end to end on small data: every materialization, checks, the DAG, config
errors, idempotency and crash safety. Real DuckDB, real Delta tables, no mocks."""

from __future__ import annotations

import datetime as dt
import functools
import json
import signal
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
import yaml
from deltalake import DeltaTable, write_deltalake

from weir.cli import main
from weir.errors import ConfigError
from weir.run.model import ModelRun
from weir.sources import memory
from weir.spec import load_project
from weirtest.modelkit import (
    DAILY,
    Event,
    at,
    day,
    events_csv,
    events_project,
    gold,
    gold_rows,
    gold_versions,
    naive,
    push,
    run,
    run_ok,
)
from weirtest.projects import weir_run, write_models, write_project

SWAP = """
/* weir
materialized: partition-swap
partition_by: [day]
incremental: {column: day, lookback: 3 days}
*/
SELECT day, grp, sum(amount) AS total FROM silver.events GROUP BY day, grp
"""
TOTALS = "SELECT grp, count(*) AS n, sum(amount) AS total FROM silver.events GROUP BY grp\n"


def ev(event_id: int, d: int, grp: str, amount: int, hour: int = 0) -> Event:
    return (event_id, day(d), grp, amount, at(d, hour))


def daily(events: list[Event]) -> list[dict[str, Any]]:
    """The daily model computed in Python from the source rows (what a full run returns)."""
    out: dict[tuple[dt.date, str], dict[str, Any]] = {}
    for _, d, grp, amount, _ in events:
        row = out.setdefault((d, grp), {"day": d, "grp": grp, "n": 0, "total": 0})
        row["n"] += 1
        row["total"] += amount
    return sorted(out.values(), key=lambda r: [str(v) for v in r.values()])


def history(root: Path, model: str) -> list[dict[str, Any]]:
    return DeltaTable(str(gold(root, model))).history()


# ---------------------------------------------------------------- table


def test_table_model_overwrites_with_the_current_result(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"totals": TOTALS})
    push([ev(1, 1, "a", 10), ev(2, 1, "b", 20), ev(3, 2, "b", 5)])
    run_ok(root)
    assert gold_rows(root, "totals") == [
        {"grp": "a", "n": 1, "total": 10},
        {"grp": "b", "n": 2, "total": 25},
    ]
    push([ev(2, 1, "b", 21), ev(4, 3, "c", 7)])  # group a is gone, b and c changed
    records = run_ok(root)
    assert records["totals"].changed
    assert gold_rows(root, "totals") == [
        {"grp": "b", "n": 1, "total": 21},
        {"grp": "c", "n": 1, "total": 7},
    ]
    assert [h["operation"] for h in history(root, "totals")][:2] == ["WRITE", "WRITE"]
    assert history(root, "totals")[0]["operationParameters"]["mode"] == "Overwrite"
    before = gold_versions(root)
    again = run_ok(root)
    assert not again["totals"].changed and gold_versions(root) == before


# ---------------------------------------------------------------- incremental


def test_incremental_picks_up_late_data_within_the_lookback_only(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"daily": DAILY})
    first = [ev(1, 1, "a", 10), ev(2, 5, "a", 20), ev(3, 8, "a", 5), ev(4, 9, "b", 7)]
    first.append(ev(5, 10, "a", 1))
    push(first)
    run_ok(root)
    assert gold_rows(root, "daily") == daily(first)
    v0 = DeltaTable(str(gold(root, "daily"))).version()
    # the last run saw day 10, lookback 2 days: the next run recomputes days >= 8
    second = [
        ev(1, 1, "a", 10),
        ev(2, 5, "a", 25),  # late update beyond the lookback: missed (the contract)
        ev(3, 8, "a", 6),  # late update inside the lookback: picked up
        # event 4 deleted: key (day 9, b) leaves the window's result
        ev(5, 10, "a", 1),
        ev(6, 11, "b", 3),  # a new day
    ]
    push(second)
    records = run_ok(root)
    assert records["daily"].changed
    expected = [r for r in daily(second) if r["day"] != day(5)]
    expected.append({"day": day(5), "grp": "a", "n": 1, "total": 20})  # kept as it was
    assert gold_rows(root, "daily") == sorted(expected, key=lambda r: [str(v) for v in r.values()])
    latest = history(root, "daily")[0]
    assert latest["version"] == v0 + 1 and latest["operation"] == "MERGE"
    metrics = records["daily"].load_metrics[-1]
    assert metrics["num_target_rows_deleted"] == 1
    assert metrics["num_target_rows_updated"] == 1 and metrics["num_target_rows_inserted"] == 1
    # an unchanged re-run creates no version
    before = gold_versions(root)
    again = run_ok(root)
    assert not again["daily"].changed and gold_versions(root) == before
    # --full-refresh rebuilds from the whole source, late row beyond the lookback included
    run_ok(root, "daily", full_refresh=True)
    assert gold_rows(root, "daily") == daily(second)


def test_incremental_history_equals_a_full_refresh(tmp_path: Path) -> None:
    """Runs whose late data all falls inside the lookback leave what one full run leaves."""
    root = events_project(tmp_path / "p", {"daily": DAILY})
    state = [ev(1, 1, "a", 1), ev(2, 2, "b", 2)]
    steps: list[list[Event]] = [
        [ev(3, 3, "a", 3), ev(4, 3, "b", 4)],
        [ev(5, 4, "a", 5), ev(6, 2, "b", 6)],  # day 2 >= 3 - 2: inside the window
        [ev(7, 6, "c", 7)],
        [ev(8, 4, "a", 8), ev(9, 5, "b", 9)],
    ]
    push(state)
    run_ok(root)
    for added in steps:
        state = [*state, *added]
        push(state)
        run_ok(root, "events", "daily")
    incremental = gold_rows(root, "daily")
    assert incremental == daily(state)
    v = DeltaTable(str(gold(root, "daily"))).version()
    run_ok(root, "daily", full_refresh=True)
    assert gold_rows(root, "daily") == incremental
    assert DeltaTable(str(gold(root, "daily"))).version() == v + 1  # one overwrite


def test_incremental_merge_scans_only_the_window_partitions(tmp_path: Path) -> None:
    """The incremental predicate: with the window column in the key, the MERGE reads only the
    target files that can hold window rows (invariant 7, right-size compute)."""
    model = DAILY.replace("*/", "partition_by: [day]\n*/")
    root = events_project(tmp_path / "p", {"daily": model})
    events = [ev(i, i, "a", 1) for i in range(1, 11)]  # days 1-10: ten partitions
    push(events)
    run_ok(root)
    push([*events[:-1], ev(10, 10, "a", 5)])  # a late change on day 10; window days 8-10
    metrics = run_ok(root)["daily"].load_metrics[-1]
    assert metrics["num_target_rows_updated"] == 1
    assert metrics["num_target_files_scanned"] <= 3
    assert metrics["num_target_files_skipped_during_scan"] >= 7


def test_incremental_row_moving_into_the_window_keeps_its_key_unique(tmp_path: Path) -> None:
    """A key whose window column changes from before the window into it is updated, not
    inserted a second time (the window column is not part of the key here)."""
    model = """
    /* weir
    materialized: incremental
    unique_key: [event_id]
    incremental: {column: day, lookback: 1 day}
    */
    SELECT event_id, day, amount FROM silver.events
    """
    root = events_project(tmp_path / "p", {"latest": model})
    push([ev(1, 1, "a", 10), ev(2, 5, "a", 20)])
    run_ok(root)
    push([ev(1, 6, "a", 11), ev(2, 5, "a", 20)])  # event 1 moves from day 1 to day 6
    run_ok(root)
    assert gold_rows(root, "latest") == [
        {"event_id": 1, "day": day(6), "amount": 11},
        {"event_id": 2, "day": day(5), "amount": 20},
    ]


# ---------------------------------------------------------------- partition-swap


def _files_by_partition(root: Path, model: str) -> dict[dt.date, set[str]]:
    actions = pa.table(DeltaTable(str(gold(root, model))).get_add_actions(flatten=True))
    out: dict[dt.date, set[str]] = {}
    for a in actions.select(["path", "partition.day"]).to_pylist():
        out.setdefault(a["partition.day"], set()).add(a["path"])
    return out


def test_partition_swap_rewrites_only_changed_partitions(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"swap": SWAP})
    state = [ev(i, i, "a", 10 * i) for i in range(1, 7)]
    push(state)
    run_ok(root)
    before = _files_by_partition(root, "swap")
    assert sorted(before) == [day(i) for i in range(1, 7)]
    # last high day 6, lookback 3 days: the window is days >= 3
    changed = [
        ev(1, 1, "a", 11),  # beyond the window: missed
        ev(2, 2, "a", 20),
        ev(3, 3, "a", 30),
        # day 4's only event deleted: its partition vanishes
        ev(5, 5, "a", 55),  # changed
        ev(6, 6, "a", 60),
    ]
    push(changed)
    records = run_ok(root)
    after = _files_by_partition(root, "swap")
    assert sorted(after) == [day(i) for i in (1, 2, 3, 5, 6)]
    for d in (1, 2, 3, 6):
        assert after[day(d)] == before[day(d)], f"partition {day(d)} was rewritten"
    assert after[day(5)].isdisjoint(before[day(5)])
    assert records["swap"].load_metrics[-1]["partitions_replaced"] == 2
    assert gold_rows(root, "swap") == [
        {"day": day(d), "grp": "a", "total": t}
        for d, t in [(1, 10), (2, 20), (3, 30), (5, 55), (6, 60)]
    ]
    write = history(root, "swap")[0]
    assert write["operation"] == "WRITE" and "predicate" in write["operationParameters"]
    versions = gold_versions(root)
    assert not run_ok(root)["swap"].changed and gold_versions(root) == versions


def test_partition_swap_on_a_column_other_than_the_window_keeps_older_rows(
    tmp_path: Path,
) -> None:
    """Partitions by group, window by day: a changed group's rows before the window stay."""
    model = """
    /* weir
    materialized: partition-swap
    partition_by: [grp]
    incremental: {column: day, lookback: 1 day}
    */
    SELECT day, grp, sum(amount) AS total FROM silver.events GROUP BY day, grp
    """
    root = events_project(tmp_path / "p", {"by_grp": model})
    state = [ev(i, i, "a", i) for i in range(1, 6)] + [ev(9, 5, "b", 9)]
    push(state)
    run_ok(root)
    state[4] = ev(5, 5, "a", 50)  # inside the window (days >= 4)
    push(state)
    run_ok(root)
    expected = [(d, "a", d) for d in range(1, 5)] + [(5, "a", 50), (5, "b", 9)]
    assert gold_rows(root, "by_grp") == [
        {"day": day(d), "grp": g, "total": t} for d, g, t in expected
    ]


def test_partition_swap_sees_a_repeated_row_disappear(tmp_path: Path) -> None:
    """Without a unique key a result may repeat a row; one copy fewer is a change."""
    model = """
    /* weir
    materialized: partition-swap
    partition_by: [day]
    incremental: {column: day, lookback: 1 day}
    */
    SELECT day, amount FROM silver.events
    """
    root = events_project(tmp_path / "p", {"amounts": model})
    push([ev(1, 5, "a", 10), ev(2, 5, "b", 10)])
    run_ok(root)
    push([ev(1, 5, "a", 10)])
    run_ok(root)
    assert gold_rows(root, "amounts") == [{"day": day(5), "amount": 10}]


# ---------------------------------------------------------------- snapshots


SNAP_CHECK = """
/* weir
materialized: snapshot
unique_key: [event_id]
snapshot: {strategy: check, check_cols: [amount], hard_deletes: close}
*/
SELECT event_id, grp, amount FROM silver.events
"""
SNAP_TS = """
/* weir
materialized: snapshot
unique_key: [event_id]
snapshot: {strategy: timestamp, updated_at: updated_at}
*/
SELECT event_id, amount, updated_at FROM silver.events
"""
HISTORY = ["event_id", "amount", "valid_from", "valid_to", "is_current"]


def _history(root: Path, model: str, extra: list[str] | None = None) -> list[tuple[Any, ...]]:
    columns = [*HISTORY, *(extra or [])]
    rows = DeltaTable(str(gold(root, model))).to_pyarrow_table(columns=columns).to_pylist()
    return sorted(
        (tuple(r[c] for c in columns) for r in rows),
        key=lambda t: (t[0], t[2]),
    )


def test_snapshot_check_strategy_with_hard_deletes_closed(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"snap": SNAP_CHECK})
    push([ev(1, 1, "a", 10), ev(2, 1, "a", 20), ev(3, 1, "b", 30)])
    r1 = naive(run_ok(root)["snap"].started_at)
    # 1 changes amount (tracked), 2 changes grp only (untracked), 3 disappears
    push([ev(1, 1, "a", 11), ev(2, 1, "c", 20)])
    r2 = naive(run_ok(root)["snap"].started_at)
    push([ev(1, 1, "a", 11), ev(2, 1, "c", 20), ev(3, 1, "b", 30)])  # 3 comes back
    r3 = naive(run_ok(root)["snap"].started_at)
    assert r1 < r2 < r3
    assert _history(root, "snap", ["grp"]) == [
        (1, 10, r1, r2, False, "a"),
        (1, 11, r2, None, True, "a"),
        (2, 20, r1, None, True, "a"),  # an untracked column opens no version
        (3, 30, r1, r2, False, "b"),
        (3, 30, r3, None, True, "b"),
    ]
    versions = gold_versions(root)
    assert not run_ok(root)["snap"].changed and gold_versions(root) == versions


def test_snapshot_timestamp_strategy_ignores_out_of_order_and_deletes(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"snap": SNAP_TS})
    push([ev(1, 1, "a", 10), ev(2, 1, "a", 20)])
    run_ok(root)
    # 1: a newer change; 2: a change dated before its current version; 3: new
    earlier = (2, day(1), "a", 21, at(1) - dt.timedelta(hours=1))
    push([ev(1, 3, "a", 11), earlier, ev(3, 2, "a", 30)])
    records = run_ok(root)
    assert any("out of order" in w for w in records["snap"].warnings)
    push([ev(1, 2, "a", 12), ev(3, 2, "a", 30)])  # 2 deleted (ignored), 1 older again
    run_ok(root)
    assert _history(root, "snap") == [
        (1, 10, at(1), at(3), False),
        (1, 11, at(3), None, True),
        (2, 20, at(1), None, True),
        (3, 30, at(2), None, True),
    ]


LABELS_CONTRACT: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "labels",
    "version": "1.0.0",
    "schema": [
        {
            "name": "labels",
            "properties": [
                {"name": "grp", "physicalType": "string", "primaryKey": True},
                {"name": "label", "physicalType": "string"},
                {"name": "updated_at", "physicalType": "timestamp", "required": True},
            ],
        }
    ],
}
LABELS_PIPELINE: dict[str, Any] = {
    "name": "labels",
    "owner": "data-eng",
    "contract": "labels",
    "extract": {"source": "memory", "dataset": "labels"},
    "load": {"strategy": "merge"},
}
DIM_LABELS = """
/* weir
materialized: snapshot
unique_key: [grp]
snapshot: {strategy: timestamp, updated_at: updated_at}
*/
SELECT grp, label, updated_at FROM silver.labels
"""
LABELLED = """
SELECT e.event_id, l.label
FROM silver.events e
LEFT JOIN gold.dim_labels l ON l.grp = e.grp AND valid_at(l, e.updated_at)
"""


def _labels(rows: list[tuple[str, str, dt.datetime]]) -> None:
    memory.append(
        "labels",
        pa.table(
            {
                "grp": [r[0] for r in rows],
                "label": [r[1] for r in rows],
                "updated_at": pa.array([r[2] for r in rows], pa.timestamp("us")),
            }
        ),
    )


def _labels_project(root: Path, models: dict[str, str]) -> Path:
    events_project(
        root,
        models,
        contracts={"labels": LABELS_CONTRACT},
        pipelines={"labels": LABELS_PIPELINE},
    )
    memory.register("labels")
    return root


def test_valid_at_joins_the_version_current_at_the_fact_time(tmp_path: Path) -> None:
    root = _labels_project(tmp_path / "p", {"dim_labels": DIM_LABELS, "labelled": LABELLED})
    push(
        [
            ev(1, 1, "a", 0),  # before any version of a
            ev(2, 3, "a", 0),  # a's first version
            ev(3, 5, "a", 0),  # exactly when the second version starts
            ev(4, 7, "a", 0),
            ev(5, 4, "b", 0),
            ev(6, 9, "b", 0),
        ]
    )
    _labels([("a", "A1", at(2)), ("b", "B1", at(1))])
    run_ok(root)
    _labels([("a", "A2", at(5)), ("b", "B2", at(8))])
    run_ok(root)
    got = {r["event_id"]: r["label"] for r in gold_rows(root, "labelled")}
    assert got == {1: None, 2: "A1", 3: "A2", 4: "A2", 5: "B1", 6: "B2"}


# ---------------------------------------------------------------- checks and failures


CHECKED = {
    "stg": """
    /* weir
    checks:
      - {rule: range, column: total, mustBeLessThanOrEqualTo: 100, severity: warn, name: total_small}
    */
    SELECT grp, sum(amount) AS total FROM silver.events GROUP BY grp
    """,
    "beside": "SELECT count(*) AS n FROM gold.stg",
    "gate": """
    /* weir
    checks:
      - {rule: range, column: amount, mustBeGreaterThanOrEqualTo: 0, severity: error, name: no_refunds}
    */
    SELECT event_id, amount FROM silver.events
    """,
    "after_gate": "SELECT count(*) AS n FROM gold.gate",
    "after_after": "SELECT n FROM gold.after_gate",
}


def test_model_checks_warn_and_error(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", CHECKED)
    push([ev(1, 1, "a", 150), ev(2, 1, "b", -5)])
    records = run(root)
    assert records["stg"].status == "success"
    assert "check total_small failed (warn)" in records["stg"].warnings
    assert records["beside"].status == "success"  # an independent branch still runs
    gate = records["gate"]
    assert gate.status == "failed" and "no_refunds" in (gate.error_message or "")
    assert gate.quality_checks_failed == 1
    assert gold_rows(root, "gate")  # the table is written; the run answers for it
    for name in ("after_gate", "after_after"):
        assert records[name].status == "skipped"
        assert not gold(root, name).exists()
    assert "gate" in (records["after_gate"].error_message or "")
    # a re-run with unchanged sources still fails: the checks run again
    again = run(root)
    assert again["gate"].status == "failed" and again["after_gate"].status == "skipped"
    assert main(["run", "--project", str(root)]) == 1


def test_key_not_unique_fails_naming_the_key(tmp_path: Path) -> None:
    model = """
    /* weir
    materialized: incremental
    unique_key: [grp]
    incremental: {column: day, lookback: 1 day}
    */
    SELECT grp, day, amount FROM silver.events
    """
    root = events_project(tmp_path / "p", {"by_grp": model})
    push([ev(1, 1, "a", 1), ev(2, 2, "a", 2), ev(3, 2, "b", 3)])
    record = run(root)["by_grp"]
    assert record.status == "failed"
    message = record.error_message or ""
    assert "unique_key (grp) is not unique" in message and '"grp": "a"' in message
    assert "by_grp.sql" in message
    assert not gold(root, "by_grp").exists()


def test_a_check_on_a_missing_column_fails_before_anything_is_written(tmp_path: Path) -> None:
    # `weir validate` cannot see every column of SELECT * over silver (tests/test_quality.py),
    # so the run finds it, before the write
    model = """
    /* weir
    checks:
      - {rule: not_null, column: totl}
    */
    SELECT * FROM silver.events
    """
    root = events_project(tmp_path / "p", {"by_grp": model})
    push([ev(1, 1, "a", 1)])
    record = run(root)["by_grp"]
    assert record.status == "failed" and record.stage == "transform"
    message = record.error_message or ""
    assert "checks of model 'by_grp' do not fit its result" in message
    assert "by_grp.sql:2" in message and "the model's columns are: event_id, day, grp" in message
    assert "derived" not in message  # weir's internal check SQL stays internal
    assert not gold(root, "by_grp").exists()


def test_incremental_model_with_new_columns_rebuilds_in_full(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"daily": DAILY})
    push([ev(1, 1, "a", 1)])
    run_ok(root)
    sql = root / "models" / "daily.sql"
    sql.write_text(sql.read_text().replace("AS total", "AS total, max(amount) AS top"))
    push([ev(1, 1, "a", 2)])
    record = run_ok(root)["daily"]
    assert record.load_metrics[-1]["definition_changed"] == ["sql"]
    assert gold_rows(root, "daily") == [{"day": day(1), "grp": "a", "n": 1, "total": 2, "top": 2}]


def test_model_whose_source_is_not_built_yet_says_what_to_run(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"daily": DAILY})
    record = run(root, "daily")["daily"]
    assert record.status == "failed"
    assert "silver.events, which does not exist yet" in (record.error_message or "")
    assert "weir run +daily" in (record.error_message or "")


# ---------------------------------------------------------------- the DAG


DAG = {
    "stg_events": """
    /* weir
    tags: [daily]
    */
    SELECT grp, amount FROM silver.events
    """,
    "fct_daily": "SELECT grp, sum(amount) AS total FROM gold.stg_events GROUP BY grp",
    "mrt_summary": "SELECT count(*) AS groups FROM gold.fct_daily",
    "other": """
    /* weir
    tags: [weekly]
    */
    SELECT count(*) AS n FROM silver.events
    """,
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("fct_daily", ["fct_daily"]),
        ("tag:daily", ["stg_events"]),
        ("+fct_daily", ["events", "stg_events", "fct_daily"]),
        ("stg_events+", ["stg_events", "fct_daily", "mrt_summary"]),
        ("+fct_daily+", ["events", "stg_events", "fct_daily", "mrt_summary"]),
        ("mrt_summary,other", ["other", "mrt_summary"]),  # other is ready first
    ],
)
def test_select(tmp_path: Path, selector: str, expected: list[str]) -> None:
    root = events_project(tmp_path / "p", DAG)
    push([ev(1, 1, "a", 1)])
    run_ok(root)
    push([ev(1, 1, "a", 1), ev(2, 1, "b", 2)])
    records = run_ok(root, selector)
    assert list(records) == expected  # in dependency order
    for name in {"events", "stg_events", "fct_daily", "mrt_summary", "other"} - set(expected):
        assert name not in records


def test_unknown_selector_exits_2_with_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = events_project(tmp_path / "p", DAG)
    assert main(["run", "--select", "fct_dialy", "--project", str(root)]) == 2
    err = capsys.readouterr().err
    assert "fct_dialy" in err and "did you mean 'fct_daily'?" in err
    assert main(["run", "tag:daly", "--project", str(root)]) == 2
    assert "did you mean 'daily'?" in capsys.readouterr().err
    assert not (root / "lake").exists()


# ---------------------------------------------------------------- config errors


def _config_error(tmp_path: Path, files: dict[str, str]) -> ConfigError:
    root = events_project(tmp_path / "p", {})
    for name, text in files.items():
        (root / "models" / name).write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(ConfigError) as info:
        load_project(root)
    return info.value


HEADER_INC = "/* weir\nmaterialized: incremental\n"


@pytest.mark.parametrize(
    ("files", "message", "where", "hint"),
    [
        pytest.param(
            {"m.sql": "SELECT grp,\n  amount\nFROM silver.event\n"},
            "unknown table 'silver.event'",
            "m.sql:3",
            "did you mean 'silver.events'?",
            id="unknown-table",
        ),
        pytest.param(
            {"a.sql": "SELECT * FROM gold.b\n", "b.sql": "SELECT * FROM gold.a\n"},
            "cycle: a → b → a",
            "a.sql",
            "cannot read itself",
            id="cycle",
        ),
        pytest.param(
            {"m.sql": "/* weir\nmaterialized: table\ntags: [a\n*/\nSELECT 1 AS x\n"},
            "invalid YAML",
            "m.sql:4",
            "indentation",
            id="bad-header-yaml",
        ),
        pytest.param(
            {"m.sql": "SELECT 1 AS x;\nSELECT 2 AS y\n"},
            "exactly one SELECT statement (found 2 statements)",
            "m.sql",
            "own model",
            id="two-statements",
        ),
        pytest.param(
            {
                "m.sql": HEADER_INC
                + "incremental: {column: day}\n*/\nSELECT day FROM silver.events\n"
            },
            "needs 'unique_key'",
            "m.sql:2",
            None,
            id="incremental-without-key",
        ),
        pytest.param(
            {
                "m.sql": HEADER_INC
                + "unique_key: [day]\nincremental:\n  column: day\n  lookback: soon\n*/\n"
                "SELECT day FROM silver.events\n"
            },
            "is not an interval",
            "m.sql:6",
            None,
            id="lookback-not-an-interval",
        ),
        pytest.param(
            {"events.sql": "SELECT 1 AS x\n"},
            "has the name of a pipeline",
            "events.sql",
            "rename one of them",
            id="named-like-a-pipeline",
        ),
        pytest.param(
            {"m.sql": "SELECT e.grp\nFROM silver.events e\nWHERE valid_at(e, e.day, 3)\n"},
            "valid_at takes two arguments",
            "m.sql:3",
            "valid_at(p, f.time_hour)",
            id="valid-at-arity",
        ),
        pytest.param(
            {"m.sql": "SELECT * FROM read_csv('x.csv')\n"},
            "models read silver and gold tables only",
            "m.sql:1",
            None,
            id="table-function",
        ),
        pytest.param(
            {"m.sql": "/* weir\ntags: [x]\n*/\nSELECT 1 AS x\n", "m.yml": "tags: [y]\n"},
            "has both a header and a sidecar m.yml",
            "m.sql",
            "keep one",
            id="header-and-sidecar",
        ),
        pytest.param(
            {"m.sql": "SELECT 1 AS x\nFROM silver.events\nWHERE (\n"},
            "does not parse",
            "m.sql:3",
            "one SELECT",
            id="sql-does-not-parse",
        ),
    ],
)
def test_config_errors_name_file_and_line(
    tmp_path: Path, files: dict[str, str], message: str, where: str, hint: str | None
) -> None:
    error = _config_error(tmp_path, files)
    text = str(error)  # validation errors carry file:line in the message, others in `where`
    assert message in error.message
    assert f"/models/{where}" in text, text
    if hint is not None:
        assert error.hint is not None and hint in error.hint


def test_bad_header_yaml_points_at_its_line(tmp_path: Path) -> None:
    error = _config_error(
        tmp_path, {"m.sql": "\n/* weir\nmaterialized: table\ntags: [a\nowner: x\n*/\nSELECT 1\n"}
    )
    assert error.where is not None and "invalid YAML" in error.message
    line = int(error.where.rsplit(":", 1)[1])
    assert line in (4, 5), error  # the bad line (file lines: the header starts on line 2)


def test_validate_exits_2_on_a_model_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = events_project(tmp_path / "p", {"m": "SELECT * FROM silver.evnts"})
    assert main(["validate", "--project", str(root)]) == 2
    err = capsys.readouterr().err
    assert "m.sql:1" in err and "did you mean 'silver.events'?" in err


# ---------------------------------------------------------------- idempotency


ALL_MODELS = {
    "totals": TOTALS,
    "daily": DAILY,
    "swap": SWAP,
    "snap": SNAP_CHECK,
    "snap_ts": SNAP_TS,
    "dim_labels": DIM_LABELS,
    "labelled": LABELLED,
    "rollup": "SELECT grp, sum(total) AS total FROM gold.daily GROUP BY grp",
}


def test_running_the_project_twice_changes_nothing(tmp_path: Path) -> None:
    root = _labels_project(tmp_path / "p", ALL_MODELS)
    steps = [
        ([ev(1, 1, "a", 10), ev(2, 2, "b", 20), ev(3, 4, "a", 30)], [("a", "A1", at(1))]),
        ([ev(1, 1, "a", 11), ev(3, 4, "a", 30), ev(4, 5, "b", 40)], [("a", "A2", at(4))]),
    ]
    for events, labels in steps:
        push(events)
        _labels(labels)
        first = run_ok(root)
        assert all(first[m].changed for m in ALL_MODELS)
        versions = gold_versions(root)
        contents = {m: gold_rows(root, m) for m in ALL_MODELS}
        second = run_ok(root)
        assert not any(r.changed for r in second.values())
        assert gold_versions(root) == versions
        assert {m: gold_rows(root, m) for m in ALL_MODELS} == contents


# ---------------------------------------------------------------- crash safety

CRASH_MODELS = {
    "daily": DAILY,
    "snap": """
    /* weir
    materialized: snapshot
    unique_key: [event_id]
    snapshot: {strategy: timestamp, updated_at: updated_at, hard_deletes: close}
    */
    SELECT event_id, grp, amount, updated_at FROM silver.events
    """,
}
DROPS = [
    [ev(1, 1, "a", 10), ev(2, 2, "b", 20), ev(3, 4, "a", 30), ev(4, 5, "b", 5)],
    [ev(1, 1, "a", 10), ev(2, 4, "b", 21, 1), ev(3, 4, "a", 31, 2), ev(5, 6, "a", 7, 3)],
]


def _crash_project(root: Path, model: str) -> Path:
    return events_project(root, {model: CRASH_MODELS[model]}, source="files")


def _drop(root: Path, n: int) -> None:
    (root / "data" / f"events_{n}.csv").write_text(events_csv(DROPS[n]))


def _gold_content(root: Path, model: str) -> list[tuple[str, ...]]:
    """The model's rows as text. The snapshot is dated by ``updated_at``, hard deletes
    included (the batch's as-of time), so a recovered run equals a clean one exactly."""
    data = DeltaTable(str(gold(root, model))).to_pyarrow_table().to_pylist()
    return sorted(tuple(str(v) for v in row.values()) for row in data)


@pytest.fixture(scope="module")
def clean_gold(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, ...]]]:
    out = {}
    for model in CRASH_MODELS:
        root = _crash_project(tmp_path_factory.mktemp(f"clean-{model}") / "p", model)
        for n in range(len(DROPS)):
            _drop(root, n)
            run_ok(root)
        out[model] = _gold_content(root, model)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("point", ["gold.before_commit", "gold.after_commit"])
@pytest.mark.parametrize("model", sorted(CRASH_MODELS))
def test_kill_at_gold_commit_then_rerun_matches_a_clean_run(
    tmp_path: Path, clean_gold: dict[str, Any], model: str, point: str
) -> None:
    """Only the killed run is a subprocess; the runs around it run in this process."""
    root = _crash_project(tmp_path / "p", model)
    _drop(root, 0)
    run_ok(root)
    _drop(root, 1)
    killed = weir_run(root, fault=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert run_ok(root)[model].changed == (point == "gold.before_commit")
    assert _gold_content(root, model) == clean_gold[model]
    versions = gold_versions(root)
    assert not any(r.changed for r in run_ok(root).values())
    assert gold_versions(root) == versions


def test_sidecar_yaml_configures_a_model(tmp_path: Path) -> None:
    """A sidecar ``<name>.yml`` configures a model like a header does."""
    root = events_project(tmp_path / "p", {"snap": "SELECT event_id, amount FROM silver.events"})
    (root / "models" / "snap.yml").write_text(
        yaml.safe_dump({"materialized": "snapshot", "unique_key": ["event_id"]})
    )
    push([ev(1, 1, "a", 10)])
    run_ok(root)
    push([ev(1, 1, "a", 12)])
    run_ok(root)
    assert [r[1] for r in _history(root, "snap")] == [10, 12]


def test_validate_status_and_history_show_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = events_project(tmp_path / "p", {"daily": DAILY})
    assert main(["validate", "--project", str(root)]) == 0
    assert "daily: silver.events → gold.daily (incremental)" in capsys.readouterr().out
    push([ev(1, 1, "a", 1)])
    run_ok(root)
    push([ev(2, 2, "a", 1)])
    run_ok(root)
    capsys.readouterr()
    assert main(["history", "gold.daily", "--project", str(root), "--json"]) == 0
    versions = json.loads(capsys.readouterr().out)["versions"]
    assert [v["version"] for v in versions] == [1, 0]
    assert versions[0]["operation"] == "MERGE" and versions[0]["batch"] == "2"
    assert main(["status", "--project", str(root), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["nodes"]}
    assert rows["daily"]["status"] == "success" and rows["events"]["status"] == "success"
    assert rows["daily"]["kind"] == "model" and rows["events"]["kind"] == "pipeline"


def test_a_string_filter_reads_files_a_merge_wrote(tmp_path: Path) -> None:
    """delta-rs MERGE writes ``string_view`` files; pyarrow datasets cannot filter them on a
    ``string`` table schema (apache/arrow#49368). Models read through DuckDB's parquet reader."""
    root = write_project(tmp_path / "p")
    write_models(root, {"stg_ua": "SELECT order_id FROM silver.orders WHERE carrier = 'UA'"})
    uri = str(root / "lake" / "silver" / "orders")
    write_deltalake(uri, pa.table({"order_id": [1, 2, 3], "carrier": ["UA", "AA", "DL"]}))
    changes = pa.table({"order_id": [2, 4], "carrier": ["B6", "UA"]})
    merge = DeltaTable(uri).merge(changes, "t.order_id = s.order_id", "s", "t")
    merge.when_matched_update_all().when_not_matched_insert_all().execute()
    project = load_project(root)
    record = ModelRun(project, project.models["stg_ua"]).execute()
    assert record.status == "success", record.error_message
    assert sorted(r["order_id"] for r in gold_rows(root, "stg_ua")) == [1, 4]


def test_checks_cover_every_row_a_full_build_wrote(tmp_path: Path) -> None:
    model = DAILY.replace(
        "*/",
        "checks:\n  - {rule: range, column: total, mustBeLessThanOrEqualTo: 5, severity: warn}\n*/",
    )
    root = events_project(tmp_path / "p", {"daily": model})
    push([ev(1, 1, "a", 9), ev(2, 2, "a", 9), ev(3, 9, "a", 1)])
    [check] = run(root)["daily"].checks
    assert check.failing_rows == 2  # days 1 and 2, far before the window of day 9
    push([ev(1, 1, "a", 9), ev(2, 2, "a", 9), ev(3, 9, "a", 1), ev(4, 9, "b", 1)])
    [check] = run(root)["daily"].checks  # incremental: the window (days 7-9) only
    assert check.failing_rows == 0


def test_compile_prints_the_sql_a_run_executes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = events_project(tmp_path / "p", {"daily": DAILY})
    assert main(["compile", "daily", "--project", str(root), "--json"]) == 0
    compiled = json.loads(capsys.readouterr().out)
    assert compiled["reads"] == ["silver.events"]
    assert "FROM silver.events" in compiled["sql"] and "/* weir" not in compiled["sql"]
    project = load_project(root)
    executed = ModelRun(project, project.models["daily"])._sql()
    parse = functools.partial(sqlglot.parse_one, dialect="duckdb")
    assert parse(compiled["sql"]) == parse(executed)  # the same query, pretty-printed


def test_show_previews_a_model_without_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = events_project(tmp_path / "p", {"daily": DAILY})
    assert main(["show", "daily", "--project", str(root)]) == 1  # silver does not exist yet
    assert "does not exist yet" in capsys.readouterr().err
    push([ev(1, 1, "a", 1), ev(2, 1, "b", 2), ev(3, 2, "a", 5)])
    run_ok(root, "events")  # the pipeline only: the model is never built
    assert main(["show", "daily", "--limit", "2", "--project", str(root), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["columns"] == ["day", "grp", "n", "total"] and len(shown["rows"]) == 2
    assert main(["show", "daily", "--project", str(root)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == ["day", "grp", "n", "total"]
    assert "(3 rows shown, at most 20; nothing was written)" in text
    assert not (root / "lake" / "gold").exists()  # nothing written
    assert main(["show", "dialy", "--project", str(root)]) == 2
    assert "did you mean 'daily'?" in capsys.readouterr().err
