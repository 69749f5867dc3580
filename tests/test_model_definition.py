"""A model's position carries the fingerprint of its definition (issue 7, item 2), and a
snapshot's table follows its columns (item 3): an edited model rebuilds (a snapshot runs and
applies the change from then on), an edit of whitespace or comments does not, new snapshot
columns evolve the table, removed ones are an error with a hint. Real DuckDB and Delta."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable, write_deltalake

from weir.engine.duckdb_engine import RESULT_SETTINGS, DuckDBEngine
from weir.lake.table import Commit, Table
from weir.spec import load_project
from weir.transform import definition as defs
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
    push,
    run,
    run_ok,
)
from weirtest.projects import weir_run

TOTALS = "SELECT grp, count(*) AS n, sum(amount) AS total FROM silver.events GROUP BY grp\n"
EVENTS = [
    (1, day(1), "a", 10, at(1)),
    (2, day(1), "b", 20, at(1)),
    (3, day(2), "b", 5, at(2)),
    (4, day(9), "a", 1, at(9)),
]


def _edit(root: Path, model: str, old: str, new: str) -> None:
    path = root / "models" / f"{model}.sql"
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))


def _version(root: Path, model: str) -> int:
    return DeltaTable(str(gold(root, model))).version()


def _changed(record: Any) -> list[str]:
    return [p for m in record.load_metrics for p in m.get("definition_changed", [])]


# ---------------------------------------------------------------- the two edits


def test_an_edit_naming_an_unknown_column_fails_loudly(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"totals": TOTALS})
    push(EVENTS)
    run_ok(root)
    before = gold_rows(root, "totals")
    version = _version(root, "totals")
    _edit(root, "totals", "sum(amount)", "sum(amountt)")
    record = run(root)["totals"]
    assert record.status == "failed"
    message = record.error_message or ""
    assert "amountt" in message and "totals.sql" in message
    assert gold_rows(root, "totals") == before and _version(root, "totals") == version


def test_an_edit_that_changes_the_values_rebuilds_the_table(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"totals": TOTALS})
    push(EVENTS)
    run_ok(root)
    _edit(root, "totals", "count(*)", "count(*) * 100")
    record = run_ok(root)["totals"]
    assert record.changed and _changed(record) == ["sql"]
    assert any("definition of model 'totals' changed (sql)" in w for w in record.warnings)
    assert gold_rows(root, "totals") == [
        {"grp": "a", "n": 200, "total": 11},
        {"grp": "b", "n": 200, "total": 25},
    ]
    versions = gold_versions(root)  # and then it is up to date again
    assert not run_ok(root)["totals"].changed and gold_versions(root) == versions


def test_whitespace_comments_and_checks_alone_stay_up_to_date(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"totals": TOTALS})
    push(EVENTS)
    run_ok(root)
    versions = gold_versions(root)
    path = root / "models" / "totals.sql"
    path.write_text(
        "/* weir\ndescription: per group\nchecks:\n  - {rule: not_null, column: grp}\n*/\n"
        "-- totals per group\nselect grp,\n    count(*)   AS n, /* rows */\n"
        "    sum(amount) AS total\nFROM silver.events\n\n  GROUP BY grp\n"
    )
    record = run_ok(root)["totals"]
    assert not record.changed and gold_versions(root) == versions
    assert [c.name for c in record.checks] == ["totals.grp.not_null"]  # checks still run


def test_a_header_change_rebuilds_an_incremental_model_in_full(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"daily": DAILY})
    push(EVENTS)
    run_ok(root)
    _edit(root, "daily", "lookback: 2 days}", "lookback: 3 days}\npartition_by: [grp]")
    # day 1 lies far before the window: only a full rebuild picks its change up
    push([(1, day(1), "a", 11, at(1)), *EVENTS[1:]])
    record = run_ok(root)["daily"]
    assert _changed(record) == ["partitioning", "window"]
    assert {"day": day(1), "grp": "a", "n": 1, "total": 11} in gold_rows(root, "daily")
    dt = DeltaTable(str(gold(root, "daily")))
    assert dt.metadata().partition_columns == ["grp"]
    assert dt.history(1)[0]["operationParameters"]["mode"] == "Overwrite"


def test_an_incremental_sql_edit_recomputes_rows_before_the_window(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"daily": DAILY})
    push(EVENTS)
    run_ok(root)
    _edit(root, "daily", "sum(amount) AS total", "sum(amount) * 2 AS total")
    record = run_ok(root)["daily"]
    assert _changed(record) == ["sql"]
    totals = {(r["day"], r["grp"]): r["total"] for r in gold_rows(root, "daily")}
    assert totals == {(day(1), "a"): 20, (day(1), "b"): 40, (day(2), "b"): 10, (day(9), "a"): 2}


def test_a_source_that_gains_a_column_rebuilds_a_select_star_model(tmp_path: Path) -> None:
    model = DAILY.replace(
        "SELECT day, grp, count(*) AS n, sum(amount) AS total\nFROM silver.events\nGROUP BY day, grp",
        "SELECT * FROM silver.events",
    ).replace("unique_key: [day, grp]", "unique_key: [event_id]")
    root = events_project(tmp_path / "p", {"stg": model})
    push(EVENTS)
    run_ok(root)
    stg = Table(str(gold(root, "stg")), label="gold")
    assert stg.schema() is not None
    # another writer adds a column to silver: the model's SQL is the same, its columns not
    silver = root / "lake" / "silver" / "events"
    data = DeltaTable(str(silver)).to_pyarrow_table()
    write_deltalake(
        str(silver),
        data.append_column("note", data.column("grp")),
        mode="overwrite",
        schema_mode="overwrite",
    )
    record = run_ok(root, "stg")["stg"]
    assert _changed(record) == ["columns"]
    assert "note" in gold_rows(root, "stg")[0]


def test_a_position_without_a_fingerprint_rebuilds_once(tmp_path: Path) -> None:
    """A position an earlier weir committed records no definition: rebuild, then record it."""
    root = events_project(tmp_path / "p", {"totals": TOTALS})
    push(EVENTS)
    run_ok(root)
    table = Table(str(gold(root, "totals")), label="gold")
    batch, position = table.position("weir:model:totals")
    assert position is not None
    old = {k: v for k, v in position.items() if k != "definition"}
    table.mark(Commit("weir:model:totals", batch + 1, "older-weir", "", old))
    record = run_ok(root)["totals"]
    assert _changed(record) == ["unrecorded"]
    assert any("an earlier weir wrote the position" in w for w in record.warnings)
    assert not run_ok(root)["totals"].changed


def test_the_fingerprint_holds_the_engine_settings_that_change_results(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"totals": TOTALS})
    project = load_project(root)
    model = project.models["totals"]
    session = DuckDBEngine(project).session(started_at="2024-01-01T00:00:00")
    try:
        settings = session.settings()
        # read once per process: they must be what a session's own connection has
        live = {
            name: str(session.rows(f"SELECT CAST(current_setting('{name}') AS VARCHAR)")[0][0])
            for name in RESULT_SETTINGS
        }
        assert settings == {"engine": "duckdb", **live}
        base = defs.model_fingerprint(model, settings)
        assert defs.model_fingerprint(model, session.settings()) == base
        # a DuckDB whose defaults differ (another version) computes other results
        elsewhere = settings | {"TimeZone": "America/New_York"}
        assert defs.model_changes(base, defs.model_fingerprint(model, elsewhere)) == ["engine"]
        spark = settings | {"engine": "spark"}
        assert defs.model_changes(base, defs.model_fingerprint(model, spark)) == ["engine"]
    finally:
        session.close()


# ---------------------------------------------------------------- snapshots

SNAP = """
/* weir
materialized: snapshot
unique_key: [event_id]
*/
SELECT event_id, amount FROM silver.events
"""
SNAP_TS = """
/* weir
materialized: snapshot
unique_key: [event_id]
snapshot: {strategy: timestamp, updated_at: updated_at}
*/
SELECT event_id, amount, updated_at FROM silver.events
"""


def _versions(root: Path, extra: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    columns = ["event_id", "amount", *extra, "is_current"]
    data = DeltaTable(str(gold(root, "snap"))).to_pyarrow_table(columns=columns).to_pylist()
    return sorted((tuple(r.values()) for r in data), key=str)


def test_a_new_snapshot_column_evolves_the_table_and_opens_versions(tmp_path: Path) -> None:
    """The issue's reproduction: a column added to a snapshot, run with --full-refresh."""
    root = events_project(tmp_path / "p", {"snap": SNAP})
    push(EVENTS)
    run_ok(root)
    _edit(root, "snap", "SELECT event_id, amount", "SELECT event_id, amount, grp")
    record = run_ok(root, full_refresh=True)["snap"]
    assert record.changed and _changed(record) == ["sql"]
    assert record.rows_loaded == 8  # 4 versions closed, 4 opened
    warnings = "\n".join(record.warnings)
    assert "--full-refresh does not rebuild snapshot 'snap'" in warnings
    assert "new column(s) grp added" in warnings and "every key opens a new version" in warnings
    assert record.schema_changes and "grp" in record.schema_changes[0]
    assert "grp" in DeltaTable(str(gold(root, "snap"))).schema().to_arrow().names
    assert _versions(root, ("grp",)) == sorted(
        [(k, a, None, False) for k, _, _, a, _ in EVENTS]
        + [(k, a, g, True) for k, _, g, a, _ in EVENTS],
        key=str,
    )


def test_a_new_untracked_column_waits_for_the_next_version(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"snap": SNAP_TS})
    push(EVENTS[:2])
    run_ok(root)
    _edit(root, "snap", "SELECT event_id, amount", "SELECT event_id, amount, grp")
    record = run_ok(root)["snap"]
    assert "not tracked, so a key records them when it next opens a version" in "\n".join(
        record.warnings
    )
    assert _versions(root, ("grp",)) == [(1, 10, None, True), (2, 20, None, True)]
    push([(1, day(1), "a", 12, at(3)), EVENTS[1]])
    run_ok(root)
    assert (1, 12, "a", True) in _versions(root, ("grp",))


def test_a_removed_snapshot_column_is_an_error_with_a_hint(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"snap": SNAP_TS})
    push(EVENTS)
    run_ok(root)
    version = _version(root, "snap")
    _edit(root, "snap", "SELECT event_id, amount, updated_at", "SELECT event_id, updated_at")
    record = run(root)["snap"]
    assert record.status == "failed"
    message = record.error_message or ""
    assert "no longer returns amount" in message and "snap.sql" in message
    assert "CAST(NULL AS BIGINT) AS amount" in message
    assert _version(root, "snap") == version
    _edit(root, "snap", "SELECT event_id,", "SELECT event_id, CAST(NULL AS BIGINT) AS amount,")
    run_ok(root)


def test_a_snapshot_definition_change_applies_from_this_run_on(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"snap": SNAP})
    push(EVENTS)
    run_ok(root)
    # same sources, a header change: a run (not "up to date") that keeps the history
    _edit(
        root,
        "snap",
        "*/",
        "snapshot: {check_cols: [amount], hard_deletes: close}\npartition_by: [amount]\n*/",
    )
    record = run_ok(root)["snap"]
    assert _changed(record) == ["partitioning", "snapshot"]
    assert any("history cannot be rebuilt" in w for w in record.warnings)
    dt = DeltaTable(str(gold(root, "snap")))
    assert dt.metadata().partition_columns == ["amount"]  # rewritten, every version kept
    assert _versions(root) == sorted([(k, a, True) for k, _, _, a, _ in EVENTS], key=str)
    assert not run_ok(root)["snap"].changed
    push(EVENTS[:3])  # from now on a missing key is closed
    run_ok(root)
    assert (4, 1, False) in _versions(root)


def test_a_table_model_turned_snapshot_starts_a_history(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {"snap": "SELECT event_id, amount FROM silver.events"})
    push(EVENTS)
    run_ok(root)
    (root / "models" / "snap.sql").write_text(SNAP)
    record = run_ok(root)["snap"]
    assert _changed(record) == ["materialization", "keys", "snapshot"]
    assert _versions(root) == sorted([(k, a, True) for k, _, _, a, _ in EVENTS], key=str)


# ---------------------------------------------------------------- crash safety

CRASH = {
    "daily": (DAILY, "sum(amount) AS total", "sum(amount) * 2 AS total"),
    "snap": (SNAP, "*/", "snapshot: {check_cols: [amount]}\npartition_by: [amount]\n*/"),
}
DROPS: list[list[Event]] = [EVENTS, [(1, day(1), "a", 11, at(1)), *EVENTS[1:]]]


def _crash_project(root: Path, model: str) -> Path:
    root = events_project(root, {model: CRASH[model][0]}, source="files")
    (root / "data" / "events.csv").write_text(events_csv(DROPS[0]))
    run_ok(root)
    _, old, new = CRASH[model]
    _edit(root, model, old, new)
    (root / "data" / "events_2.csv").write_text(events_csv(DROPS[1]))
    return root


def _content(root: Path, model: str) -> list[tuple[str, ...]]:
    """The model's rows as text, run times (valid_from/valid_to of check versions) left out."""
    data = DeltaTable(str(gold(root, model))).to_pyarrow_table().to_pylist()
    skip = {"valid_from", "valid_to", "surrogate_key"}
    return sorted(tuple(str(v) for k, v in r.items() if k not in skip) for r in data)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, ...]]]:
    out = {}
    for model in CRASH:
        root = _crash_project(tmp_path_factory.mktemp(f"clean-{model}") / "p", model)
        run_ok(root)
        out[model] = _content(root, model)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("point", ["gold.before_commit", "gold.after_commit"])
@pytest.mark.parametrize("model", sorted(CRASH))
def test_kill_while_rebuilding_an_edited_model_then_rerun_matches_a_clean_run(
    tmp_path: Path, clean: dict[str, Any], model: str, point: str
) -> None:
    root = _crash_project(tmp_path / "p", model)
    killed = weir_run(root, fault=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    run_ok(root)
    assert _content(root, model) == clean[model]
    versions = gold_versions(root)
    assert not any(r.changed for r in run_ok(root).values())
    assert gold_versions(root) == versions
