"""REST → bronze → silver end to end against the real local HTTP server: incremental with a
lookback window, no new versions on re-runs, secrets kept out of everything, and crash safety.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from weir.cli import main
from weirtest.projects import lake_content, table_rows, weir_run, write_project
from weirtest.restserver import Fault, RestServer, sample_records

TOKEN = "tok_9d8c7b6a5f4e3d2c1b0a"

CONTRACT: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "items",
    "version": "1.0.0",
    "schema": [
        {
            "name": "items",
            "properties": [
                {
                    "name": "item_id",
                    "physicalName": "id",
                    "physicalType": "int64",
                    "primaryKey": True,
                },
                {"name": "name", "physicalType": "string"},
                {
                    "name": "amount",
                    "physicalType": "float64",
                    "quality": [
                        {"rule": "range", "mustBeLessThanOrEqualTo": 100, "severity": "warn"}
                    ],
                },
                {"name": "updated_at", "physicalType": "timestamptz", "required": True},
            ],
        }
    ],
}


def pipeline(url: str, **extract: Any) -> dict[str, Any]:
    return {
        "name": "items",
        "owner": "api-team",
        "contract": "items",
        "extract": {
            "source": "rest",
            "url": url,
            "records_path": "data",
            "pagination": {"style": "page", "size_param": "per_page"},
            "page_size": 10,
            "auth": {"header": "Authorization", "value": "Bearer ${env:API_TOKEN}"},
            "incremental": {
                "param": "updated_since",
                "field": "updated_at",
                "lookback_seconds": 600,
            },
            "backoff_seconds": 0.01,
            **extract,
        },
        "transform": {"dedupe_order_by": "updated_at"},
        "load": {"strategy": "merge"},
        "error_handling": {"max_retries": 1, "retry_delay_seconds": 0},
    }


@pytest.fixture
def server() -> Iterator[RestServer]:
    with RestServer(sample_records(35), token=TOKEN) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", TOKEN)


def _project(root: Path, url: str, **extract: Any) -> Path:
    return write_project(
        root, contracts={"items": CONTRACT}, pipelines={"items": pipeline(url, **extract)}
    )


def _versions(root: Path) -> dict[str, int]:
    return {p.parent.name: DeltaTable(str(p)).version() for p in (root / "lake").glob("*/items")}


def _run(root: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    import json

    capsys.readouterr()
    main(["run", "--project", str(root), "--json"])
    runs: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["runs"]
    return runs[0]


def test_incremental_lookback_rerun_and_late_update(
    tmp_path: Path, server: RestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path / "p", server.url)
    first = _run(root, capsys)
    assert first["status"] == "success", first["error_message"]
    assert first["rows_extracted"] == 35 and first["watermark_after"].startswith(
        "2024-01-01T00:35:00"
    )
    versions = _versions(root)

    again = _run(root, capsys)  # re-reads the 10-minute lookback window: all known rows
    assert again["status"] == "success" and again["changed"] is False
    assert again["rows_extracted"] == 0 and again["rows_already_ingested"] == 11
    assert _versions(root) == versions
    since = [r.query.get("updated_since") for r in server.data_requests][-1]
    assert since is not None and since.startswith("2024-01-01T00:25:00")  # watermark − lookback

    # a late update inside the lookback window and one brand-new record
    server.records[30] = {
        **server.records[30],
        "name": "renamed",
        "updated_at": "2024-01-01T00:31:00Z",
    }
    server.records.append(
        {"id": 99, "name": "new", "amount": 1.0, "updated_at": "2024-01-01T00:40:00Z"}
    )
    third = _run(root, capsys)
    assert third["rows_extracted"] == 2 and third["watermark_after"].startswith(
        "2024-01-01T00:40:00"
    )
    silver = {r["item_id"]: r["name"] for r in table_rows(root / "lake/silver/items")}
    assert len(silver) == 36 and silver[31] == "renamed" and silver[99] == "new"


def test_full_pull_rerun_creates_no_version(
    tmp_path: Path, server: RestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path / "p", server.url, incremental=None)
    assert _run(root, capsys)["rows_extracted"] == 35
    versions = _versions(root)
    again = _run(root, capsys)
    assert again["changed"] is False and again["rows_already_ingested"] == 35
    assert _versions(root) == versions


def test_token_never_reaches_logs_records_or_errors(
    tmp_path: Path,
    server: RestServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    root = _project(tmp_path / "p", server.url)
    ok = _run(root, capsys)
    server.fault_always = Fault.error(401)
    denied = _run(root, capsys)
    assert ok["status"] == "success" and denied["status"] == "failed"
    assert "401" in denied["error_message"]
    assert all(
        r.headers.get("authorization") == f"Bearer {TOKEN}" for r in server.data_requests[:1]
    )
    assert all(TOKEN not in r.raw_query for r in server.data_requests)
    with sqlite3.connect(root / ".weir/state.db") as con:
        stored = repr(list(con.execute("SELECT * FROM runs")))
    text = "\n".join(
        [caplog.text, (root / ".weir/runs.jsonl").read_text(), stored, repr(ok), repr(denied)]
    )
    assert TOKEN not in text


def test_rest_fault_matrix_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Rate limit, intermittent 5xx and a malformed page on the way: every row arrives once."""
    faults = {2: Fault.rate_limit("0"), 3: Fault.error(503), 5: Fault.malformed()}
    with RestServer(sample_records(35), token=TOKEN, faults=faults) as srv:
        root = _project(tmp_path / "p", srv.url)
        run = _run(root, capsys)
    assert run["status"] == "success", run["error_message"]
    assert run["rows_extracted"] == 35
    bronze = (
        DeltaTable(str(root / "lake/bronze/items"))
        .to_pyarrow_table(columns=["id"])
        .column("id")
        .to_pylist()
    )
    assert sorted(bronze) == list(range(1, 36))


@pytest.mark.slow
@pytest.mark.parametrize("point", ["bronze.write", "bronze.after_commit", "silver.before_commit"])
def test_rest_kill_and_rerun_matches_clean_run(tmp_path: Path, point: str) -> None:
    with RestServer(sample_records(35), token=TOKEN) as srv:
        clean = _project(tmp_path / "clean", srv.url)
        assert weir_run(clean, API_TOKEN=TOKEN).returncode == 0
        root = _project(tmp_path / "p", srv.url)
        assert weir_run(root, fault=point, API_TOKEN=TOKEN).returncode == -signal.SIGKILL
        assert weir_run(root, API_TOKEN=TOKEN).returncode == 0
        assert lake_content(root, "items") == lake_content(clean, "items")


def _every_text(root: Path, capsys: pytest.CaptureFixture[str], caplog: Any, *runs: Any) -> str:
    """Everything weir left for people to read: output, its logs, run records, the state store.

    Not httpx's own INFO log line per request (full URL, query string included), which only
    an application logging httpx at INFO shows; that is the engine's logging set-up to handle.
    """
    out = capsys.readouterr()
    with sqlite3.connect(root / ".weir/state.db") as con:
        stored = repr(list(con.execute("SELECT * FROM runs")))
    records = (root / ".weir/runs.jsonl").read_text()
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("weir")]
    return "\n".join([out.out, out.err, *logged, records, stored, *map(repr, runs)])


def test_one_retry_layer_max_attempts_3_makes_exactly_3_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Per-request attempts are the only retries: the pipeline does not repeat the read."""
    page_3 = lambda seen: Fault.error(503) if seen.query.get("page") == "3" else None  # noqa: E731
    with RestServer(sample_records(35), token=TOKEN, fault_on=page_3) as srv:
        root = _project(tmp_path / "p", srv.url, max_attempts=3)
        spec = (root / "pipelines/items.yml").read_text()
        (root / "pipelines/items.yml").write_text(spec.replace("max_retries: 1", "max_retries: 2"))
        run = _run(root, capsys)
        pages = [r.query.get("page") for r in srv.data_requests]
    assert run["status"] == "failed"
    assert pages == ["1", "2", "3", "3", "3"]
    message = run["error_message"]
    assert "page 3 failed after 3 attempts; last cause: HTTP 503 Service Unavailable" in message
    assert message.count("after 3 attempts") == 1 and "gave up" not in message


def test_a_secret_in_the_url_path_reaches_no_output_log_or_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """``url: …/x/${env:API_TOKEN}/items``: the source cannot tell which part of its URL is
    secret; retry notices, warnings and errors all pass the engine's scrubber."""
    caplog.set_level(logging.DEBUG)
    with RestServer(sample_records(35), token=TOKEN, path=f"/x/{TOKEN}/items") as srv:
        srv.faults = {2: Fault.error(503)}
        root = _project(tmp_path / "p", srv.base + "/x/${env:API_TOKEN}/items")
        ok = _run(root, capsys)
        srv.fault_always = Fault.error(500)
        failed = _run(root, capsys)
    assert ok["status"] == "success", ok["error_message"]
    assert failed["status"] == "failed" and "HTTP 500" in failed["error_message"]
    assert TOKEN not in _every_text(root, capsys, caplog, ok, failed)


def test_an_incomplete_read_is_a_warning_in_the_run_record_or_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with RestServer(sample_records(50), token=TOKEN, empty_pages={2}) as srv:
        lenient = _run(_project(tmp_path / "warn", srv.url, incremental=None), capsys)
        srv.requests.clear()
        strict = _run(
            _project(tmp_path / "fail", srv.url, incremental=None, on_incomplete="fail"), capsys
        )
        pages = [r.query.get("page") for r in srv.data_requests]
    assert lenient["status"] == "success" and lenient["rows_extracted"] == 40
    assert [w for w in lenient["warnings"] if "page 2 came back empty" in w]
    assert strict["status"] == "failed"
    assert "the read looks incomplete: page 2 came back empty" in strict["error_message"]
    assert pages == ["1", "2", "3"] * 2  # a gap may be passing: the pipeline reads once more


def test_max_pages_fails_the_run_and_commits_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], server: RestServer
) -> None:
    root = _project(tmp_path / "p", server.url, max_pages=2)
    run = _run(root, capsys)
    assert run["status"] == "failed" and run["rows_loaded"] == 0
    assert "kept paginating past max_pages=2" in run["error_message"]
    assert len(server.data_requests) == 2  # not retried: asking again paginates the same way
    assert _versions(root) == {}


def test_an_unparsable_record_is_quarantined_and_the_page_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The REST source converts values by the same strict rules as files: a hex id or an
    overflowing amount is a parse problem of that record, not a value (items 5 and 6)."""
    records = sample_records(4)
    records[1]["id"] = "0x10"
    records[2]["amount"] = "1e999999"
    with RestServer(records, token=TOKEN) as srv:
        root = _project(tmp_path / "p", srv.url, incremental=None)
        run = _run(root, capsys)
    assert run["status"] == "partial", run["error_message"]
    assert run["rows_extracted"] == 4 and run["rows_loaded"] == 2 and run["rows_quarantined"] == 2
    reasons = sorted(r["_reasons"][0] for r in table_rows(root / "lake/quarantine/items"))
    assert reasons == [
        "parse: column amount, value '1e999999' (page 1, record 3)",
        "parse: column id, value '0x10' (page 1, record 2)",
    ]
