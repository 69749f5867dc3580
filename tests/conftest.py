"""Shared fixtures: small real projects in tmp_path, real DuckDB and real Delta tables. The
helpers they use live in the ``weirtest`` package."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from weirtest.projects import SALT, write_project


@pytest.fixture(autouse=True)
def _salt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIR_PII_SALT", SALT)


@pytest.fixture
def project_dir(tmp_path: Path) -> Callable[..., Path]:
    def make(**kwargs: Any) -> Path:
        return write_project(tmp_path / "proj", **kwargs)

    return make


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
