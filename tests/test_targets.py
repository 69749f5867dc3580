"""Targets (weir.yml ``targets``, ``--target``, ``WEIR_TARGET``, ``default_target``), project
variables (``${var:NAME}``) and storage options for object-store lakes.

Real subprocess runs of the CLI on a scaffolded project (files source, real Delta tables, real
SQLite state). Storage options are checked on a local ``file://`` lake, which delta-rs opens
and writes with options, and on an ``s3://`` lake whose endpoint is a closed port on
127.0.0.1: that shows the options reach delta-rs (it connects where they say, and fails), not
that weir works against S3 (there is no S3 here)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from weir import storage
from weir.errors import ConfigError, LakeError
from weir.lake.table import Table
from weir.scaffold import scaffold
from weir.spec import load_project

TARGETS = """\
name: shop
lake: lake
state: .weir/state.db
vars:
  orders_glob: "*.csv"
  region: nowhere
default_target: dev
targets:
  dev:
    lake: lake-dev
    state: .weir/dev.db
  prod:
    lake: lake-prod
    state: .weir/prod.db
    vars: {region: eu}
    storage_options:
      AWS_SECRET_ACCESS_KEY: ${env:SHOP_PROD_SECRET}
"""


def _project(root: Path, weir_yml: str = TARGETS, **pipeline: str) -> Path:
    scaffold(root)
    (root / "weir.yml").write_text(textwrap.dedent(weir_yml))
    path = root / "pipelines" / "orders.yml"
    text = path.read_text()
    for old, new in pipeline.items():
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    return root


def _weir(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "WEIR_TARGET"}
    return subprocess.run(
        [sys.executable, "-m", "weir.cli", *args],
        cwd=root,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return dict(json.loads(result.stdout))


def _states(root: Path) -> dict[str, list[tuple[str, str | None]]]:
    """Per state database, its runs: (pipeline, target recorded in the run's detail)."""
    found = {}
    for db in sorted((root / ".weir").glob("*.db")):
        with sqlite3.connect(db) as con:
            rows = con.execute("SELECT pipeline_name, detail FROM runs").fetchall()
        found[db.name] = [(name, json.loads(detail).get("target")) for name, detail in rows]
    return found


# ---------------------------------------------------------------- choosing a target
def test_the_default_target_lake_and_state_are_the_ones_a_run_uses(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop")
    run = _weir(root, "run", "--json")
    assert run.returncode == 0, run.stderr
    [record] = _json(run)["runs"]
    assert record["target"] == "dev"
    assert DeltaTable(str(root / "lake-dev" / "silver" / "orders")).version() >= 0
    assert not (root / "lake").exists() and not (root / "lake-prod").exists()
    assert _states(root) == {"dev.db": [("orders", "dev")]}
    line = json.loads((root / ".weir" / "runs.jsonl").read_text().splitlines()[-1])
    assert line["target"] == "dev"


def test_target_flag_before_or_after_the_command_and_the_environment_variable(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path / "shop")
    env = {"SHOP_PROD_SECRET": "prod-secret-4242"}
    before = _weir(root, "--target", "prod", "run", "--json", **env)
    assert before.returncode == 0, before.stderr
    assert _json(before)["runs"][0]["target"] == "prod"
    assert (root / "lake-prod" / "silver" / "orders" / "_delta_log").is_dir()
    assert not (root / "lake-dev").exists()

    after = _weir(root, "status", "--target", "prod", "--json", **env)
    assert _json(after)["target"] == "prod"
    assert _json(after)["nodes"][0]["status"] == "partial"  # prod's state: its run

    from_env = _weir(root, "status", "--json", WEIR_TARGET="dev")
    assert _json(from_env)["target"] == "dev"
    assert _json(from_env)["nodes"][0]["status"] == "never"  # dev's has no runs
    flag_wins = _weir(root, "validate", "--json", "--target", "prod", WEIR_TARGET="dev", **env)
    assert _json(flag_wins)["target"] == "prod"
    assert _states(root) == {"prod.db": [("orders", "prod")], "dev.db": []}


def test_validate_and_status_say_which_target_is_in_effect(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop")
    validate = _weir(root, "validate")
    assert validate.returncode == 0, validate.stderr
    lake = (root / "lake-dev").resolve()
    assert f"target: dev (lake {lake}, state .weir/dev.db)" in validate.stdout
    status = _weir(root, "status", "--fail-on", "none")
    assert status.stdout.splitlines()[0] == f"target: dev (lake {lake}, state .weir/dev.db)"


def test_lineage_takes_a_table_and_a_target(tmp_path: Path) -> None:
    """`weir lineage TABLE` names a table, `--target` a target: neither is taken for the other."""
    root = _project(tmp_path / "shop")
    for args in (("lineage", "silver.orders"), ("lineage", "silver.orders", "--target", "prod")):
        result = _weir(root, *args, SHOP_PROD_SECRET="s3cr3t-value")
        assert result.returncode == 0, result.stderr
        assert "silver.orders" in result.stdout
        assert "s3cr3t-value" not in result.stdout + result.stderr
    unknown = _weir(root, "lineage", "silver.orders", "--target", "silver.orders")
    assert unknown.returncode == 2
    assert "unknown target 'silver.orders'" in unknown.stderr


def test_without_targets_nothing_changes(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    scaffold(root)
    validate = _weir(root, "validate", "--json")
    assert _json(validate)["target"] is None
    assert "target:" not in _weir(root, "validate").stdout
    project = load_project(root, environ={})
    assert project.target is None and project.state_dir == (root / ".weir").resolve()


@pytest.mark.parametrize(
    ("args", "env", "source", "line"),
    [
        (["--target", "prd"], {}, "--target", 8),
        ([], {"WEIR_TARGET": "staging"}, "WEIR_TARGET", 8),
    ],
)
def test_an_unknown_target_lists_the_known_ones(
    tmp_path: Path, args: list[str], env: dict[str, str], source: str, line: int
) -> None:
    root = _project(tmp_path / "shop")
    result = _weir(root, *args, "validate", **env)
    assert result.returncode == 2
    assert f"unknown target '{args[1] if args else env['WEIR_TARGET']}' (from {source})" in (
        result.stderr
    )
    assert f"weir.yml:{line}" in result.stderr
    assert "weir.yml defines: dev, prod" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_default_target_points_at_its_line(tmp_path: Path) -> None:
    root = _project(
        tmp_path / "shop", TARGETS.replace("default_target: dev", "default_target: devv")
    )
    with pytest.raises(ConfigError) as error:
        load_project(root, environ={})
    assert "unknown target 'devv' (from default_target)" in error.value.message
    assert error.value.where == f"{root / 'weir.yml'}:7"
    assert error.value.hint is not None and "did you mean 'dev'?" in error.value.hint


def test_a_target_name_without_targets_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    scaffold(root)
    result = _weir(root, "--target", "prod", "validate", "--json")
    assert result.returncode == 2
    error = _json(result)
    assert error["ok"] is False and "unknown target 'prod'" in error["error"]
    assert "defines no targets" in error["hint"]


def test_only_the_chosen_target_needs_its_secrets(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop")
    dev = load_project(root, environ={})  # prod's ${env:SHOP_PROD_SECRET} is not needed
    assert dev.target == "dev" and dev.spec.storage_options == {}
    # the unchosen target is still validated
    (root / "weir.yml").write_text(TARGETS.replace("    state: .weir/prod.db", "    stat: x"))
    with pytest.raises(ConfigError) as error:
        load_project(root, environ={})
    assert "targets.prod.stat: unknown field" in error.value.message
    assert f"{root / 'weir.yml'}:14" in error.value.message
    (root / "weir.yml").write_text(TARGETS)
    with pytest.raises(ConfigError) as missing:
        load_project(root, environ={}, target="prod")
    assert "SHOP_PROD_SECRET is not set" in missing.value.message


def test_a_target_has_its_own_locks_and_scratch(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop")
    dev = load_project(root, environ={})
    prod = load_project(root, environ={"SHOP_PROD_SECRET": "x" * 8}, target="prod")
    assert dev.state_dir == (root / ".weir" / "targets" / "dev").resolve()
    assert prod.staging_dir("orders") == (root / ".weir/targets/prod/staging/orders").resolve()


# ---------------------------------------------------------------- variables
def test_variables_are_substituted_in_pipelines_and_weir_yml(tmp_path: Path) -> None:
    weir_yml = TARGETS.replace("    lake: lake-dev", "    lake: lake-${var:region}")
    weir_yml = weir_yml.replace("  dev:\n", "  dev:\n    vars: {region: local}\n")
    root = _project(tmp_path / "shop", weir_yml, **{"*.csv": "${var:orders_glob}"})
    project = load_project(root, environ={})
    assert project.spec.vars == {"orders_glob": "*.csv", "region": "local"}
    assert project.lake == str((root / "lake-local").resolve())
    assert project.pipelines["orders"].source_config.path == "data/orders/*.csv"  # type: ignore[attr-defined]
    run = _weir(root, "run", "--json")
    assert run.returncode == 0, run.stderr
    assert _json(run)["runs"][0]["rows_extracted"] == 5  # the files the variable matched
    assert (root / "lake-local" / "silver" / "orders" / "_delta_log").is_dir()


def test_an_unknown_variable_is_an_error_at_its_line(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop", **{"*.csv": "${var:orders_globb}"})
    result = _weir(root, "validate")
    assert result.returncode == 2
    assert "unknown variable 'orders_globb'" in result.stderr
    assert f"{root / 'pipelines' / 'orders.yml'}:" in result.stderr
    assert "did you mean 'orders_glob'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_variable_default_and_a_variable_from_the_environment(tmp_path: Path) -> None:
    weir_yml = TARGETS.replace('  orders_glob: "*.csv"', "  orders_glob: ${env:SHOP_GLOB}")
    root = _project(tmp_path / "shop", weir_yml, **{"*.csv": "${var:orders_glob}"})
    project = load_project(root, environ={"SHOP_GLOB": "orders_2024_*.csv"})
    assert project.pipelines["orders"].source_config.path == "data/orders/orders_2024_*.csv"  # type: ignore[attr-defined]
    assert "orders_2024_*.csv" in project.secrets  # read from the environment: a secret
    (root / "pipelines" / "orders.yml").write_text(
        (root / "pipelines" / "orders.yml")
        .read_text()
        .replace("${var:orders_glob}", "${var:nope:-x.csv}")
    )
    project = load_project(root, environ={"SHOP_GLOB": "y"})
    assert project.pipelines["orders"].source_config.path == "data/orders/x.csv"  # type: ignore[attr-defined]


def test_bad_variable_and_target_names_are_refused(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop", TARGETS.replace("  region: nowhere", "  9lives: x"))
    with pytest.raises(ConfigError) as error:
        load_project(root, environ={})
    assert "variable name '9lives'" in error.value.message
    assert "weir.yml:4: vars:" in error.value.message


# ---------------------------------------------------------------- storage options
def _file_lake(root: Path, options: str) -> Path:
    lake = (root / "object-lake").resolve()
    lines = textwrap.dedent(options).strip().splitlines()
    weir_yml = f"name: shop\nlake: file://{lake}\nstorage_options:\n"
    return _project(root, weir_yml + "".join(f"  {line}\n" for line in lines))


def test_storage_options_are_parsed_as_text_and_scrubbed(tmp_path: Path) -> None:
    root = _file_lake(
        tmp_path / "shop",
        """\
        AWS_ACCESS_KEY_ID: ${env:SHOP_KEY_ID}
        AWS_SECRET_ACCESS_KEY: ${env:SHOP_SECRET}
        AWS_REGION: eu-west-1
        AWS_ALLOW_HTTP: true
        max_retries: 0
        aws_session_token: literal-token-123
        """,
    )
    env = {"SHOP_KEY_ID": "AKIAEXAMPLE77", "SHOP_SECRET": "s3cr3t-value-99"}
    project = load_project(root, environ=env)
    assert project.spec.storage_options == {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE77",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-value-99",
        "AWS_REGION": "eu-west-1",
        "AWS_ALLOW_HTTP": "true",
        "max_retries": "0",
        "aws_session_token": "literal-token-123",
    }
    assert {"AKIAEXAMPLE77", "s3cr3t-value-99", "literal-token-123"} <= project.secrets
    assert not {"eu-west-1", "true", "0"} & project.secrets  # settings, not credentials
    assert project.lake == str((root / "object-lake").resolve())
    [warning] = project.warnings
    assert "storage_options.aws_session_token is written in weir.yml" in warning
    assert f"{root / 'weir.yml'}:" in warning and "literal-token-123" not in warning


def test_storage_options_must_be_plain_names_with_text_values(tmp_path: Path) -> None:
    root = _file_lake(tmp_path / "shop", "AWS_REGION: [a, b]\n")
    with pytest.raises(ConfigError) as error:
        load_project(root, environ={})
    assert "storage_options.AWS_REGION: must be a valid string" in error.value.message
    root = _file_lake(tmp_path / "other", "'bad key': x\n")
    with pytest.raises(ConfigError) as bad:
        load_project(root, environ={})
    assert "storage option 'bad key' is not a valid option name" in bad.value.message


def test_a_run_on_a_file_lake_with_options_opens_and_writes_with_them(tmp_path: Path) -> None:
    root = _file_lake(
        tmp_path / "shop", "AWS_SECRET_ACCESS_KEY: ${env:SHOP_SECRET}\nAWS_REGION: eu-west-1\n"
    )
    env = {"SHOP_SECRET": "s3cr3t-value-99"}
    first = _weir(root, "run", "--json", **env)
    assert first.returncode == 0, first.stderr
    assert _json(first)["runs"][0]["rows_extracted"] == 5
    silver = root / "object-lake" / "silver" / "orders"
    assert DeltaTable(f"file://{silver}").to_pyarrow_table().num_rows > 0
    again = _weir(root, "run", "--json", **env)  # re-opens the tables (with the options)
    assert _json(again)["runs"][0]["changed"] is False

    load_project(root, environ=env)  # registers the lake's options in this process
    expected = {"AWS_SECRET_ACCESS_KEY": "s3cr3t-value-99", "AWS_REGION": "eu-west-1"}
    assert storage.options_for(str(silver)) == expected
    assert storage.options_for(f"file://{silver}/") == expected
    assert storage.options_for(str(tmp_path / "elsewhere")) is None
    dt = Table(str(silver), label="silver").dt
    assert dt is not None and dt._storage_options == expected  # what delta-rs was given


def test_options_reach_delta_rs_and_stay_out_of_its_errors(tmp_path: Path) -> None:
    """An s3:// lake whose endpoint is a closed local port: delta-rs connects where the
    options say and fails; the error names the table and none of the credentials."""
    weir_yml = """\
    name: shop
    lake: s3://weir-test-bucket/lake
    storage_options:
      AWS_ENDPOINT_URL: http://127.0.0.1:9
      AWS_ALLOW_HTTP: true
      AWS_REGION: us-east-1
      AWS_ACCESS_KEY_ID: ${env:SHOP_KEY_ID}
      AWS_SECRET_ACCESS_KEY: ${env:SHOP_SECRET}
      max_retries: 0
    """
    root = _project(tmp_path / "shop", weir_yml)
    env = {"SHOP_KEY_ID": "AKIAEXAMPLE77", "SHOP_SECRET": "s3cr3t-value-99"}
    result = _weir(root, "run", "--json", **env)
    assert result.returncode == 1, result.stderr
    [record] = _json(result)["runs"]
    assert record["status"] == "failed"
    assert "127.0.0.1:9" in record["error_message"]  # the endpoint option reached delta-rs
    assert "s3://weir-test-bucket/lake/" in record["error_message"]
    everything = result.stdout + result.stderr + (root / ".weir" / "runs.jsonl").read_text()
    with sqlite3.connect(root / ".weir" / "state.db") as con:
        everything += json.dumps(con.execute("SELECT * FROM runs").fetchall())
    assert "AKIAEXAMPLE77" not in everything and "s3cr3t-value-99" not in everything


def test_duckdb_reads_of_an_object_store_lake_are_a_clear_error() -> None:
    """DuckDB here has no httpfs: weir says so before anything connects, instead of DuckDB's
    failed extension download."""
    import duckdb

    table = Table("s3://weir-test-bucket/lake/silver/orders", label="silver")
    with pytest.raises(LakeError) as error:
        table.scan(duckdb.connect())
    assert "DuckDB cannot read silver.orders on an object store" in error.value.message
    assert "httpfs" in error.value.message and error.value.hint is not None
