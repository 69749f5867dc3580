"""SQL in config files cannot read the machine: derived columns and row conditions are
scalar expressions over the row (checked at load, run as re-generated from the checked
tree), models cannot call functions that read files, settings or variables, and every weir
DuckDB connection has external access disabled, so even SQL that slipped past the checks
cannot read /etc/passwd."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weir.engine.duckdb import connect
from weir.engine.duckdb_engine import DuckDBSession
from weir.errors import ConfigError
from weir.run.pipeline import PipelineRun
from weir.sources import memory
from weir.spec import load_project
from weirtest.projects import ORDERS_CONTRACT, orders_pipeline, table_rows, write_models

PASSWD = "(SELECT content FROM read_text('/etc/passwd'))"


def _error(root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_project(root)
    return info.value


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if needle in text)


def _derived(sql: str, name: str = "extra", type_: str = "string") -> dict[str, Any]:
    return orders_pipeline(transform={"derived": [{"name": name, "sql": sql, "type": type_}]})


def _with_condition(condition: str, *, on_column: bool) -> dict[str, Any]:
    contract = copy.deepcopy(ORDERS_CONTRACT)
    rule = {"rule": "row_condition", "condition": condition, "name": "sneaky"}
    if on_column:
        contract["schema"][0]["properties"][2]["quality"].append(rule)
    else:
        contract["schema"][0]["quality"] = [rule]
    return contract


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        (PASSWD, "subqueries are not allowed"),
        ("getenv('API_TOKEN')", "getenv() reads outside the row"),
        ("getvariable('weir_salt')", "getvariable() reads outside the row"),
        ("current_setting('temp_directory')", "current_setting() reads outside the row"),
        ("read_text('/etc/passwd')", "read_text() reads outside the row"),
        ("'x') AS a, (SELECT 1", "not a SQL expression"),
        ("amount; DROP TABLE t", "not a SQL expression"),
        ("sum(amount)", "aggregate"),
        ("row_number() OVER ()", "window functions"),
        ("random()", "not a function weir allows"),
        ("t.amount", "refer to a column by its name alone"),
        ("amout * 2", "unknown column 'amout'"),
        ("abs(" * 200 + "amount" + ")" * 200, "nested deeper"),
    ],
)
def test_derived_sql_is_a_scalar_expression_over_the_row(
    project_dir: Callable[..., Path], sql: str, words: str
) -> None:
    root = project_dir(pipelines={"orders": _derived(sql)})
    error = _error(root)
    line = _line_of(root / "pipelines/orders.yml", "sql:")
    assert error.where == f"{root / 'pipelines/orders.yml'}:{line}", str(error)
    assert "derived column" in error.message and words in error.message, str(error)
    assert error.hint


def test_unknown_column_suggests_the_contract_column(project_dir: Callable[..., Path]) -> None:
    error = _error(project_dir(pipelines={"orders": _derived("amout * 2")}))
    assert error.hint == "did you mean 'amount'?"


@pytest.mark.parametrize("on_column", [True, False], ids=["column rule", "table rule"])
@pytest.mark.parametrize(
    "condition",
    ["length(read_text('/etc/passwd')[1].content) > 0", f"{PASSWD} IS NOT NULL", "amout > 0"],
    ids=["read_text", "subquery", "unknown column"],
)
def test_row_conditions_are_checked_at_load(
    project_dir: Callable[..., Path], condition: str, on_column: bool
) -> None:
    root = project_dir(contracts={"orders": _with_condition(condition, on_column=on_column)})
    error = _error(root)
    path = root / "contracts/orders.yml"
    assert error.where == f"{path}:{_line_of(path, 'condition:')}", str(error)
    assert error.message.startswith("row condition: ")


def test_model_check_conditions_are_checked(project_dir: Callable[..., Path]) -> None:
    root = write_models(
        project_dir(),
        {
            "m": """
            /* weir
            checks:
              - {rule: row_condition, condition: "getvariable('weir_salt') IS NULL"}
            */
            SELECT order_id FROM silver.orders
            """
        },
    )
    error = _error(root)
    assert error.where == f"{root / 'models/m.sql'}:3" and "getvariable()" in error.message


@pytest.mark.parametrize(
    ("select", "name"),
    [
        ("SELECT getvariable('weir_salt') AS salt FROM silver.orders", "getvariable"),
        ("SELECT current_setting('temp_directory') AS t FROM silver.orders", "current_setting"),
        (
            "SELECT o.*, f.content FROM silver.orders o, LATERAL read_text('/etc/passwd') f",
            "read_text",
        ),
    ],
)
def test_models_cannot_call_functions_that_read_outside(
    project_dir: Callable[..., Path], select: str, name: str
) -> None:
    root = write_models(project_dir(), {"m": "-- a model\n" + select})
    error = _error(root)
    assert error.where == f"{root / 'models/m.sql'}:2", str(error)
    assert f"{name}() reads outside" in error.message


def test_deeply_nested_model_sql_is_a_config_error(project_dir: Callable[..., Path]) -> None:
    root = write_models(
        project_dir(), {"m": "SELECT " + "(" * 300 + "1" + ")" * 300 + " AS x FROM silver.orders"}
    )
    assert "nested too deeply" in _error(root).message


def test_checked_expressions_run_as_regenerated(project_dir: Callable[..., Path]) -> None:
    """Allowed expressions still work end to end; what DuckDB runs is sqlglot's SQL."""
    from weir.spec import sqlexpr

    memory.register("orders")
    memory.append(
        "orders",
        pa.table(
            {
                "id": pa.array([1, 2], pa.int64()),
                "email": ["a@example.com", "b@example.com"],
                "amount": [5.0, -50.0],
                "updated_at": pa.array([0, 86_400_000_000], pa.timestamp("us")),
            }
        ),
    )
    pipe = orders_pipeline(
        transform={
            "derived": [
                {"name": "cents", "sql": "CAST(round(amount * 100) AS BIGINT)", "type": "int64"},
                {"name": "day", "sql": "updated_at::date", "type": "date"},
                {"name": "size", "sql": "if(amount > 0, 'credit', 'debit')", "type": "string"},
            ]
        }
    )
    contract = _with_condition("amount >= 0", on_column=False)
    contract["schema"][0]["quality"][0]["severity"] = "warn"
    root = project_dir(pipelines={"orders": pipe}, contracts={"orders": contract})
    assert sqlexpr.scalar("if(amount > 0, 'credit', 'debit')") == (
        "CASE WHEN amount > 0 THEN 'credit' ELSE 'debit' END"
    )
    project = load_project(root)
    record = PipelineRun(project, project.pipeline("orders")).execute()
    assert record.status == "success", record.error_message
    rows = table_rows(root / "lake/silver/orders", sort=["order_id"])
    assert [(r["cents"], r["size"], "sneaky" in r["dq_flags"]) for r in rows] == [
        (500, "credit", False),
        (-5000, "debit", True),
    ]
    assert str(rows[1]["day"]) == "1970-01-02"


# ---------------------------------------------------------------- defence in depth
def test_a_weir_connection_cannot_read_the_machine(tmp_path: Path) -> None:
    """SQL that slipped past every check still cannot read files outside the lake."""
    lake = tmp_path / "lake"
    (lake / "t").mkdir(parents=True)
    pq.write_table(pa.table({"a": [1, 2]}), lake / "t" / "part.parquet")
    pq.write_table(pa.table({"a": [3]}), tmp_path / "outside.parquet")
    con = connect(temp_dir=tmp_path / "tmp", allowed_directories=[lake])
    try:
        assert con.execute(f"SELECT sum(a) FROM read_parquet('{lake}/t/*.parquet')").fetchone() == (
            3,
        )
        for sql in [
            f"SELECT CAST(({PASSWD}) AS VARCHAR)",
            f"SELECT * FROM read_parquet('{tmp_path}/outside.parquet')",
            f"SELECT * FROM read_parquet('{lake}/../outside.parquet')",
            f"COPY (SELECT 1) TO '{tmp_path}/written.csv'",
            "INSTALL httpfs",
        ]:
            with pytest.raises(duckdb.PermissionException):
                con.execute(sql)
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()
    assert not (tmp_path / "written.csv").exists()


def test_the_run_connection_is_the_locked_down_one(project_dir: Callable[..., Path]) -> None:
    project = load_project(project_dir())
    run = PipelineRun(project, project.pipeline("orders"))
    session = run.session
    assert isinstance(session, DuckDBSession)
    with pytest.raises(duckdb.PermissionException):
        session.con.execute(f"SELECT {PASSWD}").fetchall()
    setting = session.con.execute("SELECT current_setting('allowed_directories')").fetchone()
    assert setting is not None and f"{project.lake}/" in setting[0]


def test_the_allowlist_names_duckdb_scalar_functions_only() -> None:
    """Keeps the allowlist honest: every name is a DuckDB scalar function (or syntax), and
    none of them is one that reads outside the row."""
    from weir.spec import sqlexpr

    con = duckdb.connect()
    kinds: dict[str, set[str]] = {}
    rows = con.execute("SELECT function_name, function_type FROM duckdb_functions()").fetchall()
    for name, kind in rows:
        kinds.setdefault(name, set()).add(kind)
    not_scalar = sorted(
        n
        for n in sqlexpr.FUNCTIONS - sqlexpr.SYNTAX
        if not kinds.get(n, set()) & {"scalar", "macro"}
    )
    assert not_scalar == []
    assert not sqlexpr.FUNCTIONS & sqlexpr.OUTSIDE
    table_functions = {n for n, k in kinds.items() if k & {"table", "table_macro"}}
    assert sqlexpr.FUNCTIONS & table_functions <= {"repeat", "range"}  # also scalar functions


def test_row_conditions_see_the_pipelines_derived_columns(
    project_dir: Callable[..., Path],
) -> None:
    """Silver evaluates rules after the derived columns, so a condition may name them; a
    contract no pipeline uses is checked against its own columns."""
    contract = _with_condition("cents >= 0", on_column=False)
    pipe = _derived("CAST(amount * 100 AS BIGINT)", name="cents", type_="int64")
    load_project(project_dir(pipelines={"orders": pipe}, contracts={"orders": contract}))
    error = _error(
        project_dir(pipelines={"orders": orders_pipeline()}, contracts={"orders": contract})
    )
    assert "unknown column 'cents'" in error.message
    unused = _with_condition("centz >= 0", on_column=False)
    unused["id"] = "unused"
    root = project_dir(contracts={"orders": ORDERS_CONTRACT, "unused": unused})
    assert "unknown column 'centz'" in _error(root).message
