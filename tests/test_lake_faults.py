"""A damaged lake is a clear LakeError, never an internal error: a data file deleted from
under a Delta table names the table and the file and says what to do (`weir repair` drops
the dangling reference); a full disk is one clear message, without delta-rs's Rust panic."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from weir.cli import main
from weir.run.model import ModelRun
from weir.run.pipeline import PipelineRun
from weir.spec import load_project
from weirtest.projects import SALT, weir_run, write_models, write_project

CONTRACT: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "people",
    "version": "1.0.0",
    "schema": [
        {
            "name": "people",
            "properties": [
                {"name": "id", "physicalType": "int64", "primaryKey": True},
                {"name": "city", "physicalType": "string"},
            ],
        }
    ],
}
PIPELINE = {
    "name": "people",
    "owner": "me",
    "contract": "people",
    "extract": {"source": "files", "path": "data", "format": "csv"},
    "error_handling": {"max_retries": 0, "retry_delay_seconds": 0},
}


def _project(root: Path, *, lake: str = "lake") -> Path:
    write_project(
        root,
        contracts={"people": CONTRACT},
        pipelines={"people": PIPELINE},
        project=f"name: t\nlake: {lake}\n",
    )
    (root / "data").mkdir(exist_ok=True)
    return root


def _drop(root: Path, name: str, rows: str) -> None:
    (root / "data" / name).write_text("id,city\n" + rows)


def _run(root: Path, name: str = "people") -> Any:
    project = load_project(root)
    if name in project.models:
        return ModelRun(project, project.models[name]).execute()
    return PipelineRun(project, project.pipeline(name)).execute()


def _files_of(table: Path) -> list[str]:
    return DeltaTable(str(table)).file_uris()


def _assert_missing_file_error(message: str, table: str, path: str) -> None:
    assert "internal error" not in message and "ResourceInUse" not in message, message
    assert f"of {table}" in message and Path(path).name in message, message
    assert f"weir repair {table}" in message, message


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    """A project whose pipeline ran twice (two drops), and a gold model over silver."""
    root = _project(tmp_path / "proj")
    write_models(root, {"cities": "SELECT city, count(*) AS n FROM silver.people GROUP BY city"})
    _drop(root, "a.csv", "1,Oslo\n2,Rome\n")
    assert _run(root).status == "success"
    _drop(root, "b.csv", "2,Milan\n3,Bergen\n")
    assert _run(root).status == "success"
    return root


def test_deleted_silver_file_names_table_and_file(two_runs: Path) -> None:
    root = two_runs
    [gone] = _files_of(root / "lake/silver/people")  # the MERGE rewrote silver into one file
    os.remove(gone)
    _drop(root, "c.csv", "2,Paris\n")  # a key inside the lost file's range: the MERGE reads it
    record = _run(root)
    assert record.status == "failed"
    _assert_missing_file_error(record.error_message, "silver.people", gone)
    model = _run(root, "cities")  # a gold model reading the damaged table says the same
    assert model.status == "failed"
    _assert_missing_file_error(model.error_message, "silver.people", gone)


def test_deleted_bronze_file_stops_catch_up_with_a_clear_error(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    _drop(root, "a.csv", "1,Oslo\n")
    assert weir_run(root).returncode == 0
    _drop(root, "b.csv", "2,Rome\n")
    killed = weir_run(root, fault="silver.before_commit")  # batch 2 lands in bronze only
    assert killed.returncode != 0
    bronze = root / "lake/bronze/people"
    [gone] = [f for f in _files_of(bronze) if pq.read_table(f)["_batch"][0].as_py() == 2]
    os.remove(gone)
    result = weir_run(root)
    assert result.returncode == 1
    _assert_missing_file_error(result.stdout, "bronze.people", gone)
    assert "failed at catch-up" in result.stdout


def test_repair_drops_the_dangling_reference(
    two_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = two_runs
    silver = root / "lake/silver/people"
    [gone] = _files_of(silver)
    os.remove(gone)
    before = DeltaTable(str(silver)).version()
    assert main(["repair", "people", "--project", str(root)]) == 0  # a dry run
    out = capsys.readouterr().out
    assert Path(gone).name in out and "would drop 1 missing data files holding 3 rows" in out
    assert "those rows leave silver.people (bronze can rebuild silver)" in out and "--apply" in out
    assert DeltaTable(str(silver)).version() == before
    assert main(["repair", "silver.people", "--apply", "--json", "--project", str(root)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["applied"] and result["rows"] == 3 and result["version"] == before + 1
    assert [Path(f).name for f in result["files"]] == [Path(gone).name]
    assert DeltaTable(str(silver)).to_pyarrow_table().num_rows == 0
    _drop(root, "c.csv", "4,Paris\n")
    assert _run(root).status == "success"  # the pipeline continues
    assert main(["repair", "people", "--project", str(root)]) == 0
    assert "nothing to repair" in capsys.readouterr().out


# ---------------------------------------------------------------- disk full
def _can_mount_tmpfs(target: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         f"mount -t tmpfs -o size=64k tmpfs {target}"],
        capture_output=True,
    )  # fmt: skip
    return probe.returncode == 0


def test_disk_full_is_one_clear_error(tmp_path: Path) -> None:
    """The lake on a 1 MiB filesystem (tmpfs in a user namespace: no root needed where
    unprivileged namespaces are allowed); the bronze write runs out of space."""
    mount = tmp_path / "small"
    mount.mkdir()
    if not _can_mount_tmpfs(mount):
        pytest.skip("cannot mount a tmpfs in a user namespace here")
    root = _project(tmp_path / "proj", lake=str(mount / "lake"))
    rows = "".join(f"{i},{i * 7919 % 1000003}-{i}\n" for i in range(300_000))
    _drop(root, "big.csv", rows)
    env = {**os.environ, "WEIR_PII_SALT": SALT, "RUST_BACKTRACE": "1"}
    env.pop("WEIR_DEBUG", None)
    script = f"mount -t tmpfs -o size=1m tmpfs {mount} && exec {sys.executable} -m weir.cli run"
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "could not write the bronze table: no space left on the device" in result.stdout
    for noise in ("panicked", "stack backtrace", "Traceback", "internal error"):
        assert noise not in result.stdout + result.stderr


_WRITE_PAST_LIMIT = """
import resource, signal, sys
import pyarrow as pa
from weir.errors import LakeError
from weir.lake.table import Commit, Table

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
data = pa.table({"x": pa.array(range(400_000), pa.int64()).cast(pa.string())})
try:
    Table(sys.argv[1], label="bronze").write(data, Commit("weir:t", 1, "r1"))
except LakeError as exc:
    print(exc)
"""


def test_a_write_past_the_file_size_limit_prints_no_rust_panic(tmp_path: Path) -> None:
    """The same failure without any mount: RLIMIT_FSIZE makes the parquet write fail."""
    env = {**os.environ, "RUST_BACKTRACE": "1"}
    env.pop("WEIR_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_WRITE_PAST_LIMIT), str(tmp_path / "t")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "could not write the bronze table: a file grew past the size limit" in result.stdout
    assert "panicked" not in result.stderr and "backtrace" not in result.stderr, result.stderr


def test_the_panic_filter_keeps_everything_else() -> None:
    from weir.lake.native import PanicFilter

    lines = [
        b"  ... progress",
        b"",
        b"thread 'tokio-rt-worker' (15281) panicked at /x/object_store/src/buffered.rs:369:41:",
        b"Already shut down",
        b"stack backtrace:",
        b"   0: __rustc::rust_begin_unwind",
        b"             at /rustc/library/std/src/panicking.rs:697:5",
        b"note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
        b"",
        b"thread '<unnamed>' panicked at src/lib.rs:1:1:",
        b"boom",
        b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        b"error: the real message",
        b"",
        b"  hint: keep blank lines that are not a panic's",
    ]
    panic_filter = PanicFilter()
    out = b"".join(panic_filter.feed(line) for line in lines) + panic_filter.flush()
    assert out.decode().splitlines() == [
        "  ... progress",
        "error: the real message",
        "",
        "  hint: keep blank lines that are not a panic's",
    ]
    assert panic_filter.panics == 2


def _limited(size: int) -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def test_a_full_disk_while_staging_is_a_lake_error_not_a_source_error(tmp_path: Path) -> None:
    """Staging writes to .weir/; a write that fails there is not the source failing."""
    root = _project(tmp_path / "proj")
    _drop(root, "big.csv", "".join(f"{i},name-{i}-{i * 7919}\n" for i in range(200_000)))
    env = {**os.environ, "WEIR_PII_SALT": SALT}
    env.pop("WEIR_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "-m", "weir.cli", "run", "--project", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: _limited(1_000_000),
    )
    text = result.stdout + result.stderr
    assert result.returncode == 1, text
    assert "could not write the staging file" in text and "free space" in text
    assert "reading the source failed" not in text
    assert not (root / "lake" / "bronze").exists()
