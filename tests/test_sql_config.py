"""The sql source's configuration: what `weir validate` refuses, at which file:line, and why."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from weir.errors import ConfigError, SourceError
from weir.sources.sql.config import SqlConfig, check_query, parse_url
from weir.spec import load_project
from weirtest.projects import orders_pipeline, write_project


def _load(tmp_path: Path, extract: dict[str, Any], **env: str) -> Any:
    block = {"source": "sql", "url": "sqlite:///shop.db", "table": "orders", **extract}
    root = write_project(tmp_path / "p", pipelines={"orders": orders_pipeline(extract=block)})
    return load_project(root, environ={"WEIR_PII_SALT": "s", **env})


def _error(tmp_path: Path, extract: dict[str, Any], **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, extract, **env)
    return caught.value


def test_a_valid_block_loads_with_its_defaults(tmp_path: Path) -> None:
    project = _load(tmp_path, {})
    config = project.pipeline("orders").source_config
    assert isinstance(config, SqlConfig)
    assert (config.strategy, config.chunk_rows, config.deletes) == ("full", 100_000, None)


def test_cdc_on_sqlite_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    error = _error(tmp_path, {"strategy": "cdc"})
    assert "orders.yml:" in str(error) and "extract" in str(error)
    assert "strategy cdc reads PostgreSQL's logical replication" in str(error)


@pytest.mark.parametrize(
    ("extract", "says"),
    [
        ({"query": "SELECT 1"}, "exactly one of table or query"),
        ({"table": None}, "exactly one of table or query"),
        ({"strategy": "incremental"}, "needs cursor"),
        ({"cursor": "updated_at"}, "for strategy incremental"),
        ({"chunk_rows": 0}, "chunk_rows"),
        ({"chunk_rows": 10_000_000}, "chunk_rows"),
        ({"url": "mysql://h/db"}, "scheme 'mysql' is not supported"),
        ({"url": "sqlite://shop.db"}, "sqlite:///relative/path.db"),
        ({"table": "a.b.c"}, "must be a name or schema.name"),
        ({"deletes": {"detect": "log"}}, "detects deletes by keys"),
        (
            {"strategy": "incremental", "cursor": "updated_at", "lookback": "3 fortnights"},
            "not a duration",
        ),
        ({"strategy": "incremental", "cursor": "email"}, "use a timestamp, date or integer"),
        ({"strategy": "incremental", "cursor": "nope"}, "'nope' is not a column of the contract"),
        ({"strategy": "incremental", "cursor": "updated_at", "lookback": 100}, "is a count, but"),
        ({"strategy": "incremental", "cursor": "id", "lookback": "1 hour"}, "is a duration, but"),
    ],
)
def test_inconsistent_blocks_are_refused(
    tmp_path: Path, extract: dict[str, Any], says: str
) -> None:
    error = _error(tmp_path, extract)
    assert says in str(error) and "orders.yml:" in str(error)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("DELETE FROM orders", "not DELETE"),
        ("SELECT 1; SELECT 2", "found 2"),
        ("SELECT 1; DROP TABLE orders", "found 2"),
        ("WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone", "contains DELETE"),
        ("SELECT * INTO copy FROM orders", "contains INTO"),
        ("SELECT * FROM orders FOR UPDATE", "contains LOCK"),
        ("SELECT * FROM orders WHERE id > $1", "must not hold parameters"),
        ("VACUUM", "not COMMAND"),
        ("SELEC id FROM orders", "not valid SQL"),
    ],
)
def test_a_query_must_be_one_read_only_select(query: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("$", r"\$")):
        check_query(query, "postgres")


def test_read_only_queries_pass() -> None:
    for query in (
        "SELECT id, amount FROM orders WHERE amount > 0",
        "WITH recent AS (SELECT * FROM orders) SELECT * FROM recent",
        "SELECT id FROM a UNION ALL SELECT id FROM b",
    ):
        assert check_query(query, "postgres") == query


def test_a_bad_query_is_reported_at_its_line(tmp_path: Path) -> None:
    error = _error(tmp_path, {"table": None, "query": "UPDATE orders SET amount = 0"})
    assert "orders.yml:" in str(error) and "not UPDATE" in str(error)


def test_a_password_written_into_the_file_is_refused_at_its_line(tmp_path: Path) -> None:
    url = "postgresql://shop:hunter22secret@127.0.0.1:5432/shop"
    error = _error(tmp_path, {"url": url})
    text = str(error)
    assert "password written into the file" in text and "${env:" in text
    assert "hunter22secret" not in text
    line = text.split(": ")[0]
    assert line.endswith(f"orders.yml:{_line_of(tmp_path, 'url:')}")


def test_a_password_from_the_environment_is_a_secret_of_the_project(tmp_path: Path) -> None:
    url = "postgresql://shop:${env:SHOP_DB_PASSWORD}@127.0.0.1:5432/shop"
    project = _load(tmp_path, {"url": url}, SHOP_DB_PASSWORD="hunter22secret")
    assert "hunter22secret" in project.secrets
    whole = _load(
        tmp_path, {"url": "${env:SHOP_DB_URL}"}, SHOP_DB_URL="postgresql://u:pa55word@h/db"
    )
    assert {"pa55word", "postgresql://u:pa55word@h/db"} <= whole.secrets


def test_a_password_read_by_a_variable_of_weir_yml_is_from_the_environment(
    tmp_path: Path,
) -> None:
    """A target's ``vars: {db: ${env:DB_URL}}`` and ``url: ${var:db}``: the password came from
    the environment, so it is a secret to scrub, not one written into the file."""
    block = {"source": "sql", "url": "${var:db}", "table": "orders"}
    project = "name: test\ntargets:\n  prod:\n    vars:\n      db: ${env:DB_URL}\n"
    root = write_project(
        tmp_path / "p", pipelines={"orders": orders_pipeline(extract=block)}, project=project
    )
    env = {"WEIR_PII_SALT": "s", "DB_URL": "postgresql://u:pa55word@h/db"}
    loaded = load_project(root, environ=env, target="prod")
    assert "pa55word" in loaded.secrets
    # the same url written into a variable's value is still refused
    (root / "weir.yml").write_text(project.replace("${env:DB_URL}", env["DB_URL"]))
    with pytest.raises(ConfigError) as caught:
        load_project(root, environ=env, target="prod")
    assert "password written into the file" in str(caught.value)
    assert "pa55word" not in str(caught.value)


def _line_of(tmp_path: Path, text: str) -> int:
    lines = (tmp_path / "p/pipelines/orders.yml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_urls_name_the_database_without_the_password() -> None:
    db = parse_url("postgresql://u:s%40cret@db.internal:6543/shop?sslmode=require")
    assert (db.dialect, db.name, db.password) == ("postgres", "db.internal:6543/shop", "s@cret")
    assert parse_url("postgres://u@h/d").name == "h:5432/d"
    assert parse_url("sqlite:///data/shop.db").path == "data/shop.db"
    assert parse_url("sqlite:////abs/shop.db").path == "/abs/shop.db"


def test_a_missing_driver_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weir.sources.base import SourceContext
    from weir.sources.sql import SqlSource

    monkeypatch.setitem(sys.modules, "adbc_driver_postgresql.dbapi", None)  # import fails
    config = SqlConfig(url="postgresql://u@127.0.0.1:1/db", table="orders")
    source = SqlSource(config, SourceContext("orders", str(tmp_path), "r1"))
    with pytest.raises(SourceError) as caught:
        source.probe(None)
    assert "pip install 'weir-pipelines[postgres]'" in str(caught.value)
    assert "127.0.0.1:1/db" in str(caught.value)
