"""The state store's schema version and migrations, on real SQLite files: old stores open and
keep their history, newer ones are refused, and a migration that fails or is killed half-way
leaves the store as it was."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from contextlib import closing
from pathlib import Path

import pytest

from weir.errors import ConfigError
from weir.observe.record import RunRecord
from weir.state.sqlite import _COLUMNS, MIGRATIONS, SCHEMA_VERSION, StateStore, schema_version
from weirtest.projects import write_project

# The layout weir wrote before stores had versions (user_version 0), as it generated it.
V1_RUNS = (
    "CREATE TABLE IF NOT EXISTS runs (pipeline_name TEXT, run_id TEXT, started_at TEXT, "
    "completed_at TEXT, status TEXT, stage TEXT, rows_extracted INTEGER, rows_transformed "
    "INTEGER, rows_loaded INTEGER, rows_rejected INTEGER, quality_checks_passed INTEGER, "
    "quality_checks_failed INTEGER, duration_seconds REAL, error_message TEXT, "
    "watermark_before TEXT, watermark_after TEXT, detail TEXT, PRIMARY KEY (run_id, "
    "pipeline_name))"
)
V1_AUDIT = (
    "CREATE TABLE IF NOT EXISTS audit (audit_id TEXT PRIMARY KEY, action TEXT NOT NULL, "
    "started_at TEXT NOT NULL, completed_at TEXT, status TEXT NOT NULL, detail TEXT NOT NULL)"
)
V1_INDEX = "CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline_name, started_at)"


def unversioned_store(path: Path) -> Path:
    """A store as the weir before versions left it: two runs and an audit entry."""
    with closing(sqlite3.connect(path)) as con, con:
        for sql in (V1_RUNS, V1_AUDIT, V1_INDEX):
            con.execute(sql)
        for run_id, status in (("r1", "success"), ("r2", "failed")):
            con.execute(
                "INSERT INTO runs (pipeline_name, run_id, started_at, status, rows_loaded, "
                "detail) VALUES ('orders', ?, ?, ?, 3, '{\"kind\": \"pipeline\"}')",
                [run_id, f"2024-01-0{run_id[1]}T00:00:00+00:00", status],
            )
        con.execute(
            "INSERT INTO audit VALUES ('a1', 'forget', '2024-01-03', NULL, 'done', "
            '\'{"audit_id": "a1", "action": "forget"}\')'
        )
    return path


def tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def add_notes(con: sqlite3.Connection) -> None:
    """A version from the future: a table and a column."""
    con.execute("CREATE TABLE notes (run_id TEXT, note TEXT)")
    con.execute("ALTER TABLE runs ADD COLUMN kind TEXT")


def test_a_store_from_before_versions_is_migrated_and_keeps_its_history(tmp_path: Path) -> None:
    path = unversioned_store(tmp_path / "state.db")
    assert schema_version(path) == 0
    store = StateStore(path)
    assert schema_version(path) == SCHEMA_VERSION
    runs = store.runs("orders")
    assert [(r["run_id"], r["status"], r["rows_loaded"], r["kind"]) for r in runs] == [
        ("r2", "failed", 3, "pipeline"),
        ("r1", "success", 3, "pipeline"),
    ]
    assert store.audit() == [{"audit_id": "a1", "action": "forget"}]
    record = RunRecord(pipeline_name="orders", run_id="r3", kind="pipeline")
    record.finish("success")
    store.save(record)
    assert len(StateStore(path).runs("orders")) == 3


def test_a_new_store_has_the_current_version_and_the_columns_records_fill(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new" / "state.db"
    StateStore(path)
    assert schema_version(path) == SCHEMA_VERSION
    with closing(sqlite3.connect(path)) as con:
        columns = [r[1] for r in con.execute("PRAGMA table_info(runs)")]
    assert columns == [*_COLUMNS, "detail"]  # what save() writes is what the migrations made


def test_a_store_from_a_newer_weir_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = unversioned_store(tmp_path / "state.db")
    with closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA user_version = 7")
    before = path.read_bytes()
    with pytest.raises(ConfigError) as info:
        StateStore(path)
    text = str(info.value)
    assert str(path) in text and "schema version 7" in text and f"version {SCHEMA_VERSION})" in text
    assert "newer weir" in text and info.value.hint and "state:" in info.value.hint
    assert path.read_bytes() == before


def test_weir_status_on_a_newer_store_is_a_clean_error(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    store = root / ".weir" / "state.db"
    StateStore(store)
    with closing(sqlite3.connect(store)) as con:
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    done = subprocess.run(
        [sys.executable, "-m", "weir.cli", "status", "--project", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    newer = SCHEMA_VERSION + 1
    assert (
        f"schema version {newer}, newer than this weir knows (version {SCHEMA_VERSION})"
        in done.stderr
    )
    assert "state.db" in done.stderr and "Traceback" not in done.stderr


def test_a_failing_migration_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    path = unversioned_store(tmp_path / "state.db")
    StateStore(path)

    def broken(con: sqlite3.Connection) -> None:
        add_notes(con)
        raise RuntimeError("migration bug")

    with pytest.raises(RuntimeError, match="migration bug"):
        StateStore(path, migrations=(*MIGRATIONS, broken))
    assert schema_version(path) == SCHEMA_VERSION and "notes" not in tables(path)
    assert len(StateStore(path).runs()) == 2  # today's weir still reads it

    StateStore(path, migrations=(*MIGRATIONS, add_notes))
    assert schema_version(path) == SCHEMA_VERSION + 1 and "notes" in tables(path)
    assert len(StateStore(path, migrations=(*MIGRATIONS, add_notes)).runs()) == 2


def test_a_process_killed_mid_migration_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    path = unversioned_store(tmp_path / "state.db")
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from weir.state.sqlite import MIGRATIONS, StateStore

        def add_notes(con):
            con.execute("CREATE TABLE notes (run_id TEXT, note TEXT)")
            con.execute("ALTER TABLE runs ADD COLUMN kind TEXT")

        StateStore(Path({str(path)!r}), migrations=(*MIGRATIONS, add_notes))
        """
    )
    # killed after every step ran (0 → … → SCHEMA_VERSION + 1), before the commit
    env = {**os.environ, "WEIR_FAULT": f"state.migrate@{SCHEMA_VERSION + 1}"}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=120)
    assert done.returncode == -9
    assert schema_version(path) == 0 and tables(path) == {"runs", "audit"}
    store = StateStore(path)
    assert schema_version(path) == SCHEMA_VERSION and len(store.runs()) == 2


def test_stores_opened_at_once_migrate_once(tmp_path: Path) -> None:
    path = unversioned_store(tmp_path / "state.db")
    start = threading.Barrier(6, timeout=10)
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            StateStore(path).runs()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (
        errors == []
        and schema_version(path) == SCHEMA_VERSION
        and len(StateStore(path).runs()) == 2
    )
