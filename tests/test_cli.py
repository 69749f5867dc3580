"""The command line: help text everywhere, --json everywhere, the init → run → verify flow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from weir.cli import build_parser, main
from weir.commands import COMMANDS
from weir.scaffold import scaffold


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> dict:
    assert main([*argv, "--json"]) == code
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_and_shared_flags(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert COMMANDS[command][0].split(":")[0][:30] in text.replace("\n", " ").replace("  ", " ")
    assert "--project" in text and "--json" in text


def test_init_validate_run_status_history_verify_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "shop"
    created = _json(capsys, ["init", str(root)])
    assert any(f.endswith("pipelines/orders.yml") for f in created["files"])
    assert _json(capsys, ["validate", "--project", str(root)])["pipelines"] == ["orders"]

    first = _json(capsys, ["run", "--project", str(root)])["runs"][0]
    assert first["status"] == "partial"  # loaded, with one row in quarantine
    assert first["rows_extracted"] == 5 == first["rows_loaded"] + first["rows_quarantined"]
    assert first["rows_quarantined"] == 1  # the negative amount breaks an error-level rule
    flagged = {c["name"] for c in first["checks"] if not c["passed"]}
    assert "status.accepted_values" in flagged

    second = _json(capsys, ["run", "--project", str(root)])["runs"][0]
    assert second["changed"] is False and second["table_versions"] == first["table_versions"]

    status = _json(capsys, ["status", "--project", str(root)])
    assert status["ok"] is True and status["failing"] == []
    [node] = status["nodes"]
    assert node["kind"] == "pipeline" and node["name"] == "orders"
    assert node["status"] == "success" and node["stale"] is False  # the re-run

    history = _json(capsys, ["history", "orders", "--project", str(root)])
    assert [v["batch"] for v in history["versions"]] == ["1"]
    assert history["versions"][0]["run_id"] == first["run_id"]

    verified = _json(capsys, ["verify", "orders", "--project", str(root)])
    assert verified["idempotent"] is True

    diff = _json(capsys, ["schema", "diff", "orders", "--project", str(root)])
    assert diff["breaking"] is False


def test_new_file_is_ingested_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "shop"
    main(["init", str(root)])
    main(["run", "--project", str(root)])
    capsys.readouterr()
    (root / "data/orders/orders_2024_01_02.csv").write_text(
        "id,status,amount,updated_at\n2,shipped,5.00,2024-01-02T08:00:00\n6,placed,1.00,2024-01-02T09:00:00\n"
    )
    run = _json(capsys, ["run", "--project", str(root)])["runs"][0]
    assert run["rows_extracted"] == 2 and run["batches"] == [2]
    assert "orders_2024_01_02.csv" in run["watermark_after"]


def test_breaking_drift_exit_code_and_schema_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "shop"
    main(["init", str(root)])
    main(["run", "--project", str(root)])
    capsys.readouterr()
    (root / "data/orders/orders_2024_01_02.csv").write_text(
        "id,state,amount,updated_at\n9,placed,1.00,2024-01-02T09:00:00\n"
    )
    assert main(["schema", "diff", "orders", "--project", str(root)]) == 1
    out = capsys.readouterr().out
    assert "- status" in out and "+ state" in out and "status → state" in out
    assert main(["run", "--project", str(root)]) == 1
    assert "no longer matches contract" in capsys.readouterr().out


def test_run_failure_exit_code_1_and_json_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "shop"
    main(["init", str(root)])
    (root / "data/orders/orders_2024_01_01.csv").write_text(
        "id,status,amount,updated_at\nx,placed,1,2024\n"
    )
    with (root / "pipelines/orders.yml").open("a") as pipeline:
        pipeline.write("on_parse_error: fail\n")  # by default the row is quarantined
    capsys.readouterr()
    result = _json(capsys, ["run", "--project", str(root)], code=1)
    run = result["runs"][0]
    assert run["status"] == "failed" and "orders_2024_01_01.csv" in run["error_message"]
    assert "Traceback" not in run["error_message"]

    # a monitoring probe sees it: status exits 1 naming the node, unless told not to
    status = _json(capsys, ["status", "--project", str(root)], code=1)
    assert status["ok"] is False and status["failing"] == ["orders"]
    assert main(["status", "--project", str(root), "--fail-on", "none"]) == 0
    assert "failing" not in capsys.readouterr().out


def test_status_fails_on_stale_data_and_never_run_nodes_as_asked(tmp_path: Path) -> None:
    """Freshness against the contract's SLA (24 h for the scaffold), at a later clock."""
    from datetime import UTC, datetime, timedelta

    from weir.observe.health import health
    from weir.spec import load_project

    root = tmp_path / "shop"
    main(["init", str(root)])
    project = load_project(root)
    [never] = health(project)
    assert never.status == "never" and never.stale is None
    assert not never.failing("stale") and never.failing("never")

    assert main(["run", "--project", str(root)]) == 0
    [fresh] = health(project)
    assert fresh.stale is False and not fresh.failing("stale")
    later = datetime.now(UTC) + timedelta(hours=25)
    [stale] = health(project, now=later)
    assert stale.freshness_sla_hours == 24 and stale.stale is True
    assert stale.failing("stale") and not stale.failing("failed")


def test_history_of_missing_table_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "shop"
    main(["init", str(root)])
    assert main(["history", "orders", "--project", str(root)]) == 2
    assert "does not exist yet" in capsys.readouterr().err


def test_no_project_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--project", str(tmp_path)]) == 2
    assert "weir init" in capsys.readouterr().err


def test_init_names_the_project_after_its_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("my_shop", "Shop data"):
        main(["init", str(tmp_path / name)])
        capsys.readouterr()
        assert _json(capsys, ["validate", "--project", str(tmp_path / name)])["name"] == name


def test_shared_options_work_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "shop"
    main(["init", str(root)])
    capsys.readouterr()
    assert main(["--json", "--project", str(root), "validate"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main(["validate", "--project", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == before
    # given before the command, a subcommand's own default does not reset it
    assert main(["--project", str(root), "-q", "run"]) == 0
    captured = capsys.readouterr()
    assert "…" not in captured.err and "orders" in captured.out  # quiet: results, no progress
    assert main(["run", "--project", str(root)]) == 0
    assert "…" in capsys.readouterr().err


def test_a_closed_output_pipe_is_quiet(tmp_path: Path) -> None:
    """`weir status --json | head`: no 'internal error', exit 141 as for SIGPIPE."""
    root = tmp_path / "shop"
    main(["init", str(root)])
    child = subprocess.Popen(
        [sys.executable, "-m", "weir.cli", "status", "--json", "--project", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # before the child has imported anything, so every write fails
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141, err
    assert "internal error" not in err and "Traceback" not in err and err == ""


def test_every_json_document_says_ok_as_the_exit_code_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "shop"
    p = ["--project", str(root)]
    commands = [
        ["init", str(root)],
        ["validate", *p],
        ["run", *p],
        ["status", *p],
        ["batches", "orders", *p],
        ["history", "orders", *p],
        ["lineage", *p],
        ["verify", "orders", *p],
        ["schema", "diff", "orders", *p],
        ["repair", "silver.orders", *p],
        ["history", "nothing", *p],  # a usage error: ok false, with the error
        ["run", "nothing", *p],
    ]
    seen = set()
    for argv in commands:
        code = main([*argv, "--json"])
        document = json.loads(capsys.readouterr().out)
        assert document["ok"] is (code == 0), (argv, code, document)
        if code != 0:
            assert document["error"] and document["kind"].endswith("Error"), document
        seen.add(code == 0)
    assert seen == {True, False}


def test_help_imports_no_engine() -> None:
    """`weir --help` and argument parsing stay instant: no pyarrow, DuckDB, sqlglot, pydantic,
    delta-rs or rich until a command needs them (bench (f) measures the time)."""
    probe = (
        "import sys; from weir.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('pyarrow', 'duckdb', 'sqlglot', 'pydantic', 'deltalake', "
        "'pandas', 'httpx', 'yaml', 'rich') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_no_op_run_imports_neither_numpy_nor_pandas(tmp_path: Path) -> None:
    """pyarrow would import numpy (and pandas, on its first table) for every command; weir
    uses neither. A no-op run imports neither; a load imports numpy only when it first needs
    pyarrow.compute (which takes numpy if it can), never pandas, and works through every layer
    (CSV → bronze → silver with checks)."""
    root = tmp_path / "shop"
    scaffold(root)
    probe = (
        "import sys; from weir.cli import main; code = main(sys.argv[1:]); "
        "print(code, sorted(m for m in ('numpy', 'pandas') if m in sys.modules))"
    )
    seen = []
    for _ in range(2):  # the load, then a no-op
        done = subprocess.run(
            [sys.executable, "-c", probe, "run", "-q", "--project", str(root)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        seen.append(done.stdout.strip().splitlines()[-1])
    assert seen[0].startswith("0 ") and "pandas" not in seen[0]
    assert seen[1] == "0 []"  # the no-op
    assert (root / "lake" / "silver" / "orders" / "_delta_log").is_dir()


# ---------------------------------------------------------------- output: terminal, pipe, NDJSON
def _weir(argv: list[str], *, terminal: bool, env: dict[str, str] | None = None) -> str:
    """Run the real CLI in a child process, its stdout and stderr a terminal (a pty) or
    pipes; returns what it wrote (both streams)."""
    import os
    import pty
    import select

    environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    environ |= {"TERM": "xterm-256color", "COLUMNS": "120"} | (env or {})
    command = [sys.executable, "-m", "weir.cli", *argv]
    if not terminal:
        done = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=300)
        return done.stdout + done.stderr
    leader, follower = pty.openpty()
    child = subprocess.Popen(command, stdout=follower, stderr=follower, env=environ)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif child.poll() is not None:
            break
    child.wait(timeout=300)
    os.close(leader)
    return b"".join(chunks).decode()


COLOUR = "\x1b[32m"  # green: the ✓ of a loaded pipeline
BARS = "\x1b[?25l"  # rich hides the cursor while it draws progress bars


def test_a_terminal_gets_colour_and_progress_bars_a_pipe_plain_lines(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    main(["init", str(root), "-q"])
    shown = _weir(["run", "--project", str(root)], terminal=True)
    assert BARS in shown and COLOUR in shown and "✓ partial" in shown
    assert "orders ·" in shown  # a bar names the node and its stage

    (root / "data/orders/orders_2024_01_02.csv").write_text(
        "id,status,amount,updated_at\n7,placed,3.00,2024-01-02T09:00:00\n"
    )
    piped = _weir(["run", "--project", str(root)], terminal=False)
    assert "\x1b[" not in piped and "  … bronze: appending 1 rows" in piped and "✓ success" in piped

    for env, flag in (({"NO_COLOR": "1"}, []), ({}, ["--no-color"])):
        plain = _weir(["status", "--project", str(root), *flag], terminal=True, env=env)
        assert "orders" in plain and COLOUR not in plain and "\x1b[1m" not in plain


def test_the_counts_column_shows_rate_and_eta_once_a_total_is_known() -> None:
    from rich.progress import Progress

    from weir.commands.display import _counts_column

    bars = Progress(_counts_column(), disable=True)
    task = bars.add_task("orders · silver", total=None, unit="rows")
    assert str(_counts_column().render(bars.tasks[0])) == ""
    clock = iter(range(100))
    bars.get_time = lambda: float(next(clock))  # type: ignore[method-assign]
    bars.reset(task, total=5000, completed=0)
    bars.update(task, completed=1000)
    bars.update(task, completed=2000)
    text = str(_counts_column().render(bars.tasks[0]))
    assert text.startswith("2,000 of 5,000 rows · ") and " rows/s · ETA 0:00:0" in text
    unknown = bars.add_task("orders · extract", total=None, completed=1234, unit="rows")
    assert str(_counts_column().render(bars.tasks[unknown])) == "1,234 rows"  # no ETA


def test_log_format_json_streams_one_event_a_line_on_stderr(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    main(["init", str(root), "-q"])
    done = subprocess.run(
        [sys.executable, "-m", "weir.cli", "--log-format", "json", "run", "--project", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]  # nothing but NDJSON
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and events[0]["nodes"] == ["orders"]
    assert kinds[1] == "node_started" and events[1]["outputs"][1] == "silver.orders"
    stages = [e["stage"] for e in events if e["event"] == "node_stage"]
    assert stages[:2] == ["position", "extract"] and "bronze" in stages and stages[-1] == "silver"
    assert all(e["time"] and e.get("node", "orders") == "orders" for e in events)
    finished = events[-1]
    assert finished["event"] == "node_finished" and finished["record"]["status"] == "partial"
    assert finished["record"]["run_id"] == events[1]["run_id"]
    assert "■ orders (pipeline)" in done.stdout  # results stay on stdout

    # after the command too; a user error is an event, not a line of text
    argv = ["run", "nothing", "--project", str(root), "--log-format", "json"]
    done = subprocess.run(
        [sys.executable, "-m", "weir.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )
    [error] = [json.loads(line) for line in done.stderr.splitlines()]
    assert done.returncode == 2 and error["event"] == "error" and "nothing" in error["error"]


def test_verbose_shows_debug_logging_and_quiet_hides_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "shop"
    main(["init", str(root), "-q"])
    capsys.readouterr()
    assert main(["run", "--project", str(root), "-v"]) == 0
    err = capsys.readouterr().err
    assert "debug: orders (pipeline) entered stage extract" in err
    assert main(["-v", "run", "--project", str(root)]) == 0
    assert "entered stage up-to-date" in capsys.readouterr().err
    assert main(["run", "--project", str(root)]) == 0
    assert "debug:" not in capsys.readouterr().err


def test_rest_retries_are_warnings_through_the_one_logging_setup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_rest_pipeline import CONTRACT, TOKEN, pipeline
    from weirtest.projects import write_project
    from weirtest.restserver import Fault, RestServer, sample_records

    monkeypatch.setenv("API_TOKEN", TOKEN)
    with RestServer(sample_records(5), token=TOKEN, faults={1: Fault.error(503)}) as server:
        root = write_project(
            tmp_path / "p",
            contracts={"items": CONTRACT},
            pipelines={"items": pipeline(server.url)},
        )
        capsys.readouterr()
        assert main(["run", "--project", str(root)]) == 0
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "retrying in" in line]
    assert line.startswith("warning: items: ") and "HTTP 503" in line and TOKEN not in err
