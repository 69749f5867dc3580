"""Names that become paths or SQL identifiers are validated at load, with file:line and a
hint: a table name cannot leave the lake, a column name cannot carry SQL, and silver
columns cannot take the names of weir's own columns."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from weir.errors import ConfigError
from weir.spec import load_project
from weirtest.projects import (
    ORDERS_CONTRACT,
    orders_pipeline,
    weir_run,
    write_models,
    write_project,
)

HOSTILE = ["../../../escaped", "o'x\"; DROP TABLE t; --", "a/b", "Orders", "", "x" * 64, "1st"]


def _error(root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_project(root)
    return info.value


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, t in enumerate(path.read_text().splitlines(), 1) if needle in t)


def _contract(**column: Any) -> dict[str, Any]:
    """The orders contract with its ``amount`` column changed."""
    contract = copy.deepcopy(ORDERS_CONTRACT)
    contract["schema"][0]["properties"][2].update(column)
    return contract


@pytest.mark.parametrize("table", HOSTILE)
def test_load_table_must_be_a_name(project_dir: Callable[..., Path], table: str) -> None:
    root = project_dir(pipelines={"orders": orders_pipeline(load={"table": table})})
    error = _error(root)
    path = root / "pipelines/orders.yml"
    assert f"{path}:{_line_of(path, 'table:')}: load.table:" in str(error)
    assert "not a valid table name" in str(error) and "lower_snake_case" in str(error)


def test_an_escaping_table_name_writes_nothing_outside_the_lake(tmp_path: Path) -> None:
    """The reproduction: `load: {table: ../../../escaped}` wrote a Delta table outside."""
    root = tmp_path / "a" / "b" / "proj"
    (root / "data").mkdir(parents=True)
    (root / "data" / "x.csv").write_text("id,email,amount,updated_at\n1,a@x.io,1.5,2024-01-01\n")
    pipe = orders_pipeline(
        extract={"source": "files", "path": "data", "format": "csv"},
        load={"strategy": "merge", "table": "../../../escaped"},
    )
    write_project(root, pipelines={"orders": pipe})
    result = weir_run(root)
    assert result.returncode == 2, result.stderr
    assert "load.table" in result.stderr and "orders.yml:" in result.stderr
    assert not any(tmp_path.rglob("_delta_log"))


@pytest.mark.parametrize("name", ["o'x\"; DROP TABLE t; --", "Amount", "total amount", "_amount"])
def test_contract_column_names_are_snake_case(project_dir: Callable[..., Path], name: str) -> None:
    root = project_dir(contracts={"orders": _contract(name=name, physicalName="amount")})
    error = str(_error(root))
    path = root / "contracts/orders.yml"
    assert f"{path}:" in error and "schema.0.properties.2.name" in error
    assert "not a valid column name" in error and "lower_snake_case" in error


@pytest.mark.parametrize("name", ["_run_id", "dq_valid", "surrogate_key", "valid_from", "_errors"])
def test_weirs_own_column_names_are_refused(project_dir: Callable[..., Path], name: str) -> None:
    root = project_dir(contracts={"orders": _contract(name=name, physicalName="amount")})
    assert "one of weir's own columns" in str(_error(root))
    derived = [{"name": name, "sql": "amount * 2", "type": "float64"}]
    root = project_dir(pipelines={"orders": orders_pipeline(transform={"derived": derived})})
    error = str(_error(root))
    assert "transform.derived.0.name" in error and "one of weir's own columns" in error


@pytest.mark.parametrize("source", ["total amount", "a,b", "x=1", "f(x)", "tab\there", "_run_id"])
def test_source_names_delta_cannot_store_are_refused(
    project_dir: Callable[..., Path], source: str
) -> None:
    root = project_dir(contracts={"orders": _contract(physicalName=source)})
    error = str(_error(root))
    assert "schema.0.properties.2.physicalName" in error
    assert "Delta" in error or "weir's own bronze columns" in error


def test_odd_but_storable_source_names_are_kept(project_dir: Callable[..., Path]) -> None:
    contract = _contract(physicalName="Amount-€")
    load_project(project_dir(contracts={"orders": contract}))
    load_project(project_dir(contracts={"orders": _contract(physicalName="_amount")}))


def test_two_columns_cannot_read_one_source_column(project_dir: Callable[..., Path]) -> None:
    contract = _contract(physicalName="ID")  # the key column already reads `id`
    assert "two columns read the source column 'ID'" in str(
        _error(project_dir(contracts={"orders": contract}))
    )


def test_derived_names_are_snake_case_and_unique(project_dir: Callable[..., Path]) -> None:
    bad = [{"name": "x; DROP", "sql": "1", "type": "int64"}]
    root = project_dir(pipelines={"orders": orders_pipeline(transform={"derived": bad})})
    assert "not a valid column name" in str(_error(root))
    twice = [{"name": "x", "sql": "1", "type": "int64"}, {"name": "x", "sql": "2", "type": "int64"}]
    root = project_dir(pipelines={"orders": orders_pipeline(transform={"derived": twice})})
    assert "clashes with another derived column" in str(_error(root))


@pytest.mark.parametrize("name", ["../x", "Orders", "x" * 64])
def test_pipeline_and_dbt_step_names(project_dir: Callable[..., Path], name: str) -> None:
    root = project_dir(pipelines={"orders": orders_pipeline(name=name)})
    assert "not a valid pipeline name" in str(_error(root))
    (root / "pipelines" / "orders.yml").unlink()
    (root / "dbt").mkdir()
    (root / "dbt" / "dbt_project.yml").write_text("name: d\nprofile: d\n")
    (root / "pipelines" / "step.yml").write_text(f"name: {name!r}\nkind: dbt\nowner: me\n")
    error = str(_error(root))
    assert "step.yml:1: name:" in error and "not a valid pipeline name" in error


def test_model_names_are_validated(project_dir: Callable[..., Path]) -> None:
    root = write_models(project_dir(), {"Bad-Name": "SELECT 1 AS x"})
    error = _error(root)
    assert "not a valid model name" in error.message and "lower_snake_case" in (error.hint or "")
