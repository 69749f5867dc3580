"""Shared fixtures: small real projects in tmp_path, real DuckDB and real Delta tables. The
helpers they use live in the ``weirtest`` package."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from weirtest.projects import SALT, write_project

if TYPE_CHECKING:
    from weirtest.postgres import Cluster


@pytest.fixture(autouse=True)
def _salt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIR_PII_SALT", SALT)


@pytest.fixture
def project_dir(tmp_path: Path) -> Callable[..., Path]:
    def make(**kwargs: Any) -> Path:
        return write_project(tmp_path / "proj", **kwargs)

    return make


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster for the whole session (tests/weirtest/postgres.py),
    started on first use and stopped at the end, also after failures. A server that cannot
    start fails the tests that need it: they never skip."""
    from weirtest.postgres import Cluster

    try:
        cluster = Cluster.start()
    except Exception as exc:  # the reason, not a traceback of the fixture
        pytest.fail(f"could not start PostgreSQL for the tests: {exc}", pytrace=False)
    sys.stderr.write(f"\n[postgres {cluster.bindir}: started in {cluster.started_seconds:.2f}s]\n")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_database(postgres: Cluster) -> Iterator[str]:
    """A fresh database for one test (CREATE DATABASE … TEMPLATE: milliseconds); dropped after."""
    name = postgres.database()
    try:
        yield name
    finally:
        postgres.drop(name)


_EXIT: dict[str, int] = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without interpreter teardown once pytest has reported: delta-rs and pyarrow can
    abort while their native threads are torn down (delta-io/delta-rs#2184), which would turn
    a green run into exit code 134. weir's own CLI does the same (weir.cli.entry)."""
    if "status" in _EXIT:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT["status"])
