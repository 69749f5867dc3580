"""Bad configuration: every error names file:line, the field path and a hint; no tracebacks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from weir.cli import main
from weir.errors import ConfigError
from weir.quality.validate import check_project
from weir.spec import load_project
from weirtest.projects import ORDERS_CONTRACT, orders_pipeline


def _error(root: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_project(root, environ=environ if environ is not None else {"WEIR_PII_SALT": "x" * 8})
    return str(info.value)


def test_unknown_field_has_line_path_and_suggestion(project_dir: Callable[..., Path]) -> None:
    root = project_dir(pipelines={"orders": {**orders_pipeline(), "quality_gate": {}}})
    message = _error(root)
    assert "pipelines/orders.yml:" in message
    assert "quality_gate: unknown field" in message
    assert "did you mean 'quality_gates'?" in message


def test_nested_unknown_field_points_at_its_line(project_dir: Callable[..., Path]) -> None:
    pipe = orders_pipeline(load={"strategy": "merge", "partiton_by": ["x"]})
    root = project_dir(pipelines={"orders": pipe})
    message = _error(root)
    text = (root / "pipelines/orders.yml").read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if "partiton_by" in t)
    assert f"orders.yml:{line}: load.partiton_by: unknown field" in message
    assert "did you mean 'partition_by'?" in message


def test_unknown_source_kind_suggests(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        pipelines={"orders": orders_pipeline(extract={"source": "file", "path": "x"})}
    )
    message = _error(root)
    assert "unknown source 'file'" in message and "did you mean 'files'?" in message


def test_bad_enum_and_type_in_contract(project_dir: Callable[..., Path]) -> None:
    contract = {**ORDERS_CONTRACT}
    schema = [{**contract["schema"][0]}]
    schema[0]["properties"] = [*schema[0]["properties"], {"name": "x", "physicalType": "int65"}]
    contract["schema"] = schema
    root = project_dir(contracts={"orders": contract})
    message = _error(root)
    assert "contracts/orders.yml:" in message and "schema.0.properties.4.physicalType" in message
    assert "unknown type 'int65'" in message and "did you mean 'int64'?" in message


def test_unknown_rule_suggests(project_dir: Callable[..., Path]) -> None:
    contract = {**ORDERS_CONTRACT}
    schema = [{**contract["schema"][0]}]
    schema[0]["quality"] = [{"rule": "row_cnt", "mustBeBetween": [1, 2]}]
    contract["schema"] = schema
    project = load_project(project_dir(contracts={"orders": contract}), environ={})
    with pytest.raises(ConfigError) as info:  # what `weir validate` and every run check
        check_project(project)
    message = str(info.value)
    assert "contracts/orders.yml:" in message and "schema.0.quality.0.rule" in message
    assert "unknown rule 'row_cnt'" in message and "did you mean 'row_count'?" in message


def test_unknown_column_reference_suggests(project_dir: Callable[..., Path]) -> None:
    pipe = orders_pipeline(transform={"dedupe_order_by": "updated"})
    message = _error(project_dir(pipelines={"orders": pipe}))
    assert "unknown column 'updated'" in message and "did you mean 'updated_at'?" in message
    assert "transform" in message or "orders.yml:" in message


def _missing(root: Path, environ: dict[str, str], node: str = "orders") -> str:
    """What running ``node`` says about the environment it lacks (loading works)."""
    project = load_project(root, environ=environ)
    with pytest.raises(ConfigError) as info:
        project.require_env([node])
    return str(info.value)


def test_missing_env_vars_are_named_together(project_dir: Callable[..., Path]) -> None:
    pipe = orders_pipeline(
        extract={"source": "memory", "dataset": "${env:DATASET_A}-${env:DATASET_B}"}
    )
    message = _missing(project_dir(pipelines={"orders": pipe}), {"WEIR_PII_SALT": "x" * 8})
    assert "DATASET_A is not set" in message and "DATASET_B is not set" in message
    assert "orders.yml:" in message


def test_missing_pii_salt_stops_the_pipelines_that_hash(project_dir: Callable[..., Path]) -> None:
    message = _missing(project_dir(), {})
    assert "WEIR_PII_SALT is not set" in message and "PII" in message


def test_an_empty_value_is_missing_unless_a_default_allows_it(
    project_dir: Callable[..., Path],
) -> None:
    salt = {"WEIR_PII_SALT": "x" * 8}
    pipe = orders_pipeline(extract={"source": "memory", "dataset": "${env:DATASET}"})
    root = project_dir(pipelines={"orders": pipe})
    assert "DATASET is empty" in _missing(root, {**salt, "DATASET": ""})
    for text, environ, expected in [
        ("${env:DATASET:-orders}", salt, "orders"),  # unset: the default
        ("${env:DATASET:-orders}", {**salt, "DATASET": ""}, "orders"),  # empty: the default
        ("${env:DATASET:-orders}", {**salt, "DATASET": "other"}, "other"),
        ("x${env:DATASET:-}", salt, "x"),  # an explicit empty default allows empty
    ]:
        pipe = orders_pipeline(extract={"source": "memory", "dataset": text})
        project = load_project(project_dir(pipelines={"orders": pipe}), environ=environ)
        assert project.missing_env == {}, text
        assert project.pipelines["orders"].spec.extract["dataset"] == expected, text


def test_a_value_that_fails_because_its_variable_is_missing_says_so(
    project_dir: Callable[..., Path],
) -> None:
    rest = {"source": "rest", "url": "${env:API_URL}"}
    message = _error(project_dir(pipelines={"orders": orders_pipeline(extract=rest)}))
    assert "missing environment variables: API_URL is not set" in message


def test_a_run_needs_only_the_secrets_of_its_nodes(
    project_dir: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    secret = orders_pipeline(
        name="refunds", extract={"source": "memory", "dataset": "${env:REFUNDS_DATASET}"}
    )
    root = project_dir(pipelines={"orders": orders_pipeline(), "refunds": secret})
    project = load_project(root, environ={"WEIR_PII_SALT": "x" * 8})
    assert list(project.missing_env) == ["refunds"]
    project.require_env(["orders"])  # nothing missing for it
    assert "REFUNDS_DATASET is not set" in _missing(root, {"WEIR_PII_SALT": "x" * 8}, "refunds")

    # validate lists it and succeeds; --strict fails on it
    assert main(["validate", "--project", str(root)]) == 0
    assert "refunds cannot run here: REFUNDS_DATASET is not set" in capsys.readouterr().out
    assert main(["validate", "--strict", "--project", str(root)]) == 2
    assert "REFUNDS_DATASET" in capsys.readouterr().err
    # running it fails before anything runs, naming the variable
    assert main(["run", "refunds", "--project", str(root)]) == 2
    assert "REFUNDS_DATASET is not set" in capsys.readouterr().err
    assert not (root / "lake").exists()


def test_invalid_yaml_has_line(project_dir: Callable[..., Path]) -> None:
    root = project_dir()
    (root / "pipelines/orders.yml").write_text("name: orders\nextract: [unclosed\n")
    message = _error(root)
    assert "invalid YAML" in message and "orders.yml:" in message


def test_unknown_contract_reference(project_dir: Callable[..., Path]) -> None:
    message = _error(project_dir(pipelines={"orders": orders_pipeline(contract="order")}))
    assert "unknown contract 'order'" in message and "did you mean 'orders'?" in message


def test_cli_config_error_exit_2_without_traceback(
    project_dir: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project_dir(pipelines={"orders": {**orders_pipeline(), "shedule": "x"}})
    assert main(["validate", "--project", str(root)]) == 2
    err = capsys.readouterr().err
    assert (
        "Traceback" not in err
        and "shedule: unknown field" in err
        and "did you mean 'schedule'?" in err
    )


def test_cli_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--no-such-flag"]) == 2
    assert main(["frobnicate"]) == 2


def test_cli_unknown_pipeline(
    project_dir: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project_dir()
    assert main(["run", "order", "--project", str(root)]) == 2
    assert "did you mean 'orders'?" in capsys.readouterr().err


def test_problems_in_several_files_are_listed_together(project_dir: Callable[..., Path]) -> None:
    """One `weir validate` names every broken pipeline file, each with its file:line."""
    root = project_dir(
        pipelines={
            "orders": orders_pipeline(tier="high"),
            "refunds": orders_pipeline(name="refunds", load={"strategy": "mrge"}),
        }
    )
    message = _error(root)
    assert message.startswith("2 problems in the project")
    assert "orders.yml:" in message and "tier: 'high' is not one of 1, 2, 3" in message
    assert "refunds.yml:" in message and "did you mean 'merge'?" in message


def test_two_pipelines_cannot_write_one_table(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        pipelines={
            "orders": orders_pipeline(),
            "orders_again": orders_pipeline(
                name="orders_again", load={"strategy": "merge", "table": "orders"}
            ),
        }
    )
    message = _error(root)
    assert "pipelines 'orders' and 'orders_again' both write the table 'orders'" in message
    assert "orders_again.yml:" in message and "load.table" in message


@pytest.mark.parametrize("schedule", ["every day", "0 6 * *", "61 * * * *", "0 6 * * * *"])
def test_a_schedule_must_be_a_cron_expression(
    project_dir: Callable[..., Path], schedule: str
) -> None:
    root = project_dir(pipelines={"orders": orders_pipeline(schedule=schedule)})
    message = _error(root)
    assert f"schedule: {schedule!r} is not a cron expression" in message


@pytest.mark.parametrize("schedule", ["0 6 * * *", "*/15 * * * 1-5", "@daily", "@hourly"])
def test_cron_expressions_and_nicknames_are_schedules(
    project_dir: Callable[..., Path], schedule: str
) -> None:
    root = project_dir(pipelines={"orders": orders_pipeline(schedule=schedule)})
    assert load_project(root, environ={"WEIR_PII_SALT": "x" * 8}).pipelines["orders"]


def test_messages_speak_config_not_pydantic(project_dir: Callable[..., Path]) -> None:
    """No class names, no 'Input should be', no 'Input tag … found using'."""
    rest = {"source": "rest", "url": "http://127.0.0.1:1/x", "pagination": {"style": "pages"}}
    source = _error(project_dir(pipelines={"orders": orders_pipeline(extract=rest)}))
    assert "'pages' is not one of" in source and "did you mean 'page'?" in source
    assert "hint: see docs/sources.md (rest)" in source
    spec = _error(project_dir(pipelines={"orders": orders_pipeline(sla_minutes=0)}))
    assert "sla_minutes: must be greater than 0" in spec and "hint: see docs/pipelines.md" in spec
    for message in (source, spec):
        for leak in ("Input should", "Input tag", "Spec", "Config fields", "Value error"):
            assert leak not in message, (leak, message)


def test_settings_without_effect_are_warned_about(
    project_dir: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pipe = orders_pipeline(
        load={"strategy": "merge", "target_file_size_mb": 128},
        error_handling={"alert_channels": ["file:.weir/alerts.jsonl"]},
    )
    root = project_dir(pipelines={"orders": pipe})
    warnings = load_project(root).warnings
    assert len(warnings) == 1  # alert_channels has an effect now (docs/alerts.md)
    assert "orders.yml:" in warnings[0] and "load.target_file_size_mb is not used" in warnings[0]
    assert main(["validate", "--project", str(root)]) == 0
    assert "load.target_file_size_mb is not used" in capsys.readouterr().out
    assert load_project(project_dir(pipelines={"orders": orders_pipeline()})).warnings == []


@pytest.mark.parametrize(
    ("conventions", "message"),
    [
        ({"disable": ["naming.prefx"]}, "'naming.prefx' is not one of"),
        ({"prefixes": {"marts": ["fct_"]}}, "'marts' is not one of"),
        ({"prefixes": {"mart": ["Fct"]}}, "lower-case prefixes ending in _"),
    ],
)
def test_bad_conventions_config(
    project_dir: Callable[..., Path], conventions: dict[str, Any], message: str
) -> None:
    root = project_dir()
    with (root / "weir.yml").open("a") as config:
        config.write(yaml.safe_dump({"conventions": conventions}))
    error = _error(root)
    assert "weir.yml:" in error and message in error


def test_values_from_the_environment_in_weir_yml_are_secrets(
    project_dir: Callable[..., Path],
) -> None:
    root = project_dir()
    with (root / "weir.yml").open("a") as config:
        config.write("description: ${env:TEAM_TOKEN}\n")
    project = load_project(root, environ={"WEIR_PII_SALT": "x" * 8, "TEAM_TOKEN": "tok-123456"})
    assert "tok-123456" in project.secrets
