"""Secrets and raw PII never reach logs, run records, the state store or error messages."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from weir.cli import main
from weir.sources import memory
from weirtest.projects import SALT, orders_pipeline, table_rows

EMAIL = "very.private.person@example.com"


def _all_text(root: Path, captured: str) -> str:
    parts = [captured, (root / ".weir/runs.jsonl").read_text()]
    with sqlite3.connect(root / ".weir/state.db") as con:
        parts += [repr(row) for row in con.execute("SELECT * FROM runs")]
    return "\n".join(parts)


def test_pii_and_salt_stay_out_of_records_and_samples(
    project_dir: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # email is PII and also breaks a warn rule, so it would be sampled if samples leaked PII
    from weirtest.projects import ORDERS_CONTRACT

    contract = {**ORDERS_CONTRACT, "schema": [{**ORDERS_CONTRACT["schema"][0]}]}
    props = [dict(p) for p in contract["schema"][0]["properties"]]
    props[1]["quality"] = [{"rule": "regex", "pattern": "^[a-z]+@corp\\.com$", "severity": "warn"}]
    contract["schema"][0]["properties"] = props
    root = project_dir(contracts={"orders": contract})
    memory.register("orders")
    memory.append(
        "orders",
        pa.table(
            {
                "id": pa.array([1, None], pa.int64()),
                "email": [EMAIL, EMAIL],
                "amount": pa.array([1.0, 2.0]),
                "updated_at": [dt.datetime(2024, 1, 1)] * 2,
            }
        ),
    )
    assert main(["run", "--project", str(root), "--json"]) == 0
    out = capsys.readouterr()
    text = _all_text(root, out.out + out.err + caplog.text)
    samples = [s for line in text.splitlines() if "email.regex" in line for s in [line]]
    assert samples, "the regex rule must have failed and been recorded"
    assert '"email": "***"' in out.out  # the sample masks the PII column
    assert EMAIL not in text
    assert SALT not in text


def test_secret_env_value_is_scrubbed_from_error_messages(
    project_dir: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk_live_5up3r53cr3t"
    monkeypatch.setenv("SHOP_DATASET", secret)
    pipe = orders_pipeline(extract={"source": "memory", "dataset": "${env:SHOP_DATASET}"})
    root = project_dir(pipelines={"orders": pipe})
    # the dataset is not registered: the error message would name it — scrubbed
    assert main(["run", "--project", str(root)]) == 1
    out = capsys.readouterr()
    text = _all_text(root, out.out + out.err)
    assert "is not registered" in text
    assert secret not in text and "***" in text


def _people_project(root: Path, columns: list[dict[str, Any]], extract: dict[str, Any]) -> Path:
    """A one-pipeline project named ``people`` with the given contract columns and source."""
    from weirtest.projects import write_project

    pipe = orders_pipeline(name="people", contract="people", transform={}, extract=extract)
    contracts = {"people": _people_contract(columns)}
    return write_project(root, contracts=contracts, pipelines={"people": pipe})


def _people_contract(columns: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v3.0.2",
        "kind": "DataContract",
        "id": "people",
        "version": "1",
        "schema": [{"name": "people", "properties": columns}],
    }


def test_unparsable_pii_value_is_not_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    columns = [
        {"name": "person_id", "physicalName": "id", "physicalType": "int64", "primaryKey": True},
        {"name": "ssn", "physicalType": "int64", "classification": "pii"},
    ]
    root = _people_project(tmp_path / "p", columns, {"source": "files", "path": "data/*.csv"})
    (root / "data").mkdir()
    (root / "data/people.csv").write_text("id,ssn\n1,123456789\n2,078-05-1120\n")
    assert main(["run", "--project", str(root)]) == 0  # the row is quarantined
    out = capsys.readouterr()
    [quarantined] = table_rows(root / "lake/quarantine/people")
    assert quarantined["_reasons"] == ["parse: column ssn, value '***' (line 3)"]
    disk = b"".join(
        p.read_bytes() for p in root.rglob("*") if p.is_file() and "data" not in p.parts
    )
    assert b"078-05-1120" not in disk and "078-05-1120" not in out.out + out.err
    # and with on_parse_error: fail, the message masks it too
    from weirtest.projects import write_project

    pipe = orders_pipeline(
        name="people",
        contract="people",
        transform={},
        extract={"source": "files", "path": "data/*.csv"},
        on_parse_error="fail",
    )
    write_project(
        tmp_path / "f", contracts={"people": _people_contract(columns)}, pipelines={"people": pipe}
    )
    (tmp_path / "f/data").mkdir()
    (tmp_path / "f/data/people.csv").write_text("id,ssn\n1,123456789\n2,078-05-1120\n")
    assert main(["run", "--project", str(tmp_path / "f")]) == 1
    out = capsys.readouterr()
    text = _all_text(tmp_path / "f", out.out + out.err)
    assert "column ssn, value '***' (line 3) is not a valid int64" in text
    assert "078-05-1120" not in text


def test_surrogate_key_of_a_pii_key_does_not_reveal_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib

    from weirtest.projects import table_rows

    columns = [
        {"name": "email", "physicalType": "string", "primaryKey": True, "classification": "pii"},
        {"name": "age", "physicalType": "int64"},
    ]
    root = _people_project(tmp_path / "p", columns, {"source": "memory", "dataset": "people"})
    memory.register(
        "people", pa.table({"email": [EMAIL], "age": pa.array([40], pa.int64())}).to_batches()
    )
    assert main(["run", "--project", str(root)]) == 0
    [row] = table_rows(root / "lake/silver/people")
    salted = hashlib.sha256((SALT + EMAIL).encode()).hexdigest()
    assert row["email"] == salted
    assert row["surrogate_key"] == hashlib.sha256(salted.encode()).hexdigest()
    assert row["surrogate_key"] != hashlib.sha256(EMAIL.encode()).hexdigest()


def test_a_secret_in_the_url_path_stays_out_of_retry_notices_and_records(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The REST source's retry notice names the URL; a token in its path is scrubbed there,
    in the progress lines, the run record and the state store (item 14)."""
    from weirtest.projects import write_project
    from weirtest.restserver import Fault, RestServer, sample_records

    token = "tok_9f8e7d6c5b4a"
    monkeypatch.setenv("API_TOKEN", token)
    contract = {
        "apiVersion": "v3.0.2",
        "kind": "DataContract",
        "id": "items",
        "version": "1",
        "schema": [
            {
                "name": "items",
                "properties": [
                    {"name": "id", "physicalType": "int64", "primaryKey": True},
                    {"name": "name", "physicalType": "string"},
                ],
            }
        ],
    }
    with RestServer(
        sample_records(3), path=f"/v1/{token}/items", faults={1: Fault.error(503)}
    ) as server:
        url = server.url.replace(token, "${env:API_TOKEN}")
        pipe = orders_pipeline(
            name="items",
            contract="items",
            transform={},
            extract={"source": "rest", "url": url, "records_path": "data", "backoff_seconds": 0},
        )
        root = write_project(
            tmp_path / "p", contracts={"items": contract}, pipelines={"items": pipe}
        )
        assert main(["run", "--project", str(root)]) == 0
        assert len(server.data_requests) >= 2  # the first answer was a 503: retried
    out = capsys.readouterr()
    text = _all_text(root, out.out + out.err + caplog.text)
    notices = [line for line in out.err.splitlines() if "503" in line]
    assert notices and "retrying in" in notices[0]  # the retry was reported on stderr …
    assert "/v1/***/items" in notices[0]  # … with the URL's secret scrubbed
    assert token not in text  # and nowhere else either


def test_a_secret_in_the_lake_location_stays_out_of_every_command_output(
    project_dir: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside a run too: a command's error (its message, where and hint), its text result
    and its --json document print the project's secrets as ***. Here the lake's location
    holds a value from the environment, which weir counts as a secret."""
    secret = "tok3n-in-the-lake-path"
    monkeypatch.setenv("SHOP_LAKE_TOKEN", secret)
    root = project_dir(project="name: test\nlake: lake-${env:SHOP_LAKE_TOKEN}\n")
    for argv, code in (
        (["history", "silver.orders"], 2),  # no table yet: the error names its location
        (["history", "silver.orders", "--json"], 2),
        (["validate", "--json"], 0),
    ):
        assert main([*argv, "--project", str(root)]) == code, argv
        out = capsys.readouterr()
        assert secret not in out.out + out.err, argv
    memory.register("orders")
    memory.append(
        "orders",
        pa.table(
            {
                "id": pa.array([1], pa.int64()),
                "email": ["a@example.org"],
                "amount": [5.0],
                "updated_at": pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("us")),
            }
        ),
    )
    assert main(["run", "--project", str(root)]) == 0
    assert (root / f"lake-{secret}" / "silver" / "orders").is_dir()  # the value is used
    capsys.readouterr()
    for argv in (["history", "silver.orders"], ["history", "silver.orders", "--json"]):
        assert main([*argv, "--project", str(root)]) == 0, argv
        out = capsys.readouterr()
        assert "silver.orders" in out.out
        assert secret not in out.out + out.err, argv
        assert "***" in out.out, argv


@pytest.mark.parametrize("form", ["password", "whole-url"])
def test_a_database_password_stays_out_of_messages_records_lineage_and_commits(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    postgres: Any,
    pg_database: str,
    form: str,
) -> None:
    """A sql pipeline against PostgreSQL with a password, read from the environment either
    alone or as the whole URL: a failing run (no such table) and a successful one, then
    every output, record, OpenLineage event and file weir wrote is scanned for it."""
    from weirtest.postgres import PASSWORD
    from weirtest.projects import write_project

    caplog.set_level(logging.DEBUG)
    url = postgres.url(pg_database)
    if form == "password":
        monkeypatch.setenv("SHOP_DB_PASSWORD", PASSWORD)
        url = url.replace(PASSWORD, "${env:SHOP_DB_PASSWORD}")
    else:
        monkeypatch.setenv("SHOP_DB_URL", url)
        url = "${env:SHOP_DB_URL}"
    pipe = orders_pipeline(extract={"source": "sql", "url": url, "table": "public.orders"})
    root = write_project(
        tmp_path / "p",
        pipelines={"orders": pipe},
        project="name: test\nopenlineage: {file: .weir/openlineage.jsonl}\n",
    )
    assert main(["run", "--project", str(root)]) == 1  # the table does not exist yet
    failed = capsys.readouterr()
    assert "public.orders" in failed.out + failed.err
    assert f"127.0.0.1:{postgres.port}/{pg_database}" in failed.out + failed.err
    with postgres.connect(pg_database) as con:
        con.execute(
            "CREATE TABLE orders (id bigint, email text, amount float8, updated_at timestamp)"
        )
        con.execute("INSERT INTO orders VALUES (1, 'a@example.org', 5, '2024-01-01')")
    assert main(["run", "--project", str(root), "--json"]) == 0
    out = capsys.readouterr()
    text = _all_text(root, failed.out + failed.err + out.out + out.err + caplog.text)
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl", ".yml")]
    assert (
        any("_delta_log" in str(p) for p in files) and (root / ".weir/openlineage.jsonl").exists()
    )
    text += "\n".join(p.read_text(errors="replace") for p in files if "pipelines" not in p.parts)
    assert PASSWORD not in text
    assert table_rows(root / "lake/silver/orders", ["order_id"]) == [{"order_id": 1}]
