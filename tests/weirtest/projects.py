"""Small real projects for the tests: the orders contract and pipeline, project files in a
directory, reading Delta tables back, and `weir run` in a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml
from deltalake import DeltaTable

SALT = "test-salt-9f2c41d7e3"

ORDERS_CONTRACT: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "orders",
    "version": "1.0.0",
    "team": [{"username": "data-eng", "role": "owner"}],
    "slaProperties": [{"property": "freshness", "value": 24, "unit": "h"}],
    "schema": [
        {
            "name": "orders",
            "properties": [
                {
                    "name": "order_id",
                    "physicalName": "id",
                    "physicalType": "int64",
                    "primaryKey": True,
                },
                {"name": "email", "physicalType": "string", "classification": "pii"},
                {
                    "name": "amount",
                    "physicalType": "float64",
                    "quality": [
                        {"rule": "range", "mustBeBetween": [0, 1000], "severity": "warn"},
                        {
                            "rule": "range",
                            "mustBeGreaterThanOrEqualTo": -100,
                            "severity": "error",
                            "name": "amount.not_absurd",
                        },
                    ],
                },
                {"name": "updated_at", "physicalType": "timestamp", "required": True},
            ],
        }
    ],
}


def orders_pipeline(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "orders",
        "owner": "data-eng",
        "contract": "orders",
        "extract": {"source": "memory", "dataset": "orders"},
        "transform": {"dedupe_order_by": "updated_at"},
        "load": {"strategy": "merge"},
        "error_handling": {"max_retries": 2, "retry_delay_seconds": 0},
    }
    for key, value in overrides.items():
        spec[key] = value
    return spec


def write_project(
    root: Path,
    *,
    contracts: dict[str, dict[str, Any]] | None = None,
    pipelines: dict[str, dict[str, Any]] | None = None,
    project: str = "name: test\n",
) -> Path:
    (root / "contracts").mkdir(parents=True, exist_ok=True)
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    (root / "weir.yml").write_text(textwrap.dedent(project))
    for name, data in (contracts or {"orders": ORDERS_CONTRACT}).items():
        (root / "contracts" / f"{name}.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    for name, data in (pipelines or {"orders": orders_pipeline()}).items():
        (root / "pipelines" / f"{name}.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root


def write_models(root: Path, models: dict[str, str]) -> Path:
    """Write ``models/<name>.sql`` (dedented) into the project at ``root``."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    for name, sql in models.items():
        (root / "models" / f"{name}.sql").write_text(textwrap.dedent(sql).strip() + "\n")
    return root


def table_rows(
    path: Path | str, columns: list[str] | None = None, sort: list[str] | None = None
) -> list[dict[str, Any]]:
    data = DeltaTable(str(path)).to_pyarrow_table(columns=columns)
    if sort:
        data = data.sort_by([(c, "ascending") for c in sort])
    return data.to_pylist()


def version(path: Path | str) -> int:
    return DeltaTable(str(path)).version()


VOLATILE = {"_run_id", "_ingested_at", "_quarantined_at"}


def weir_run(
    root: Path, fault: str | None = None, *, args: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """`weir run [args]` in a real subprocess; ``fault`` sets WEIR_FAULT to SIGKILL it at
    that point."""
    environ = {**os.environ, "WEIR_PII_SALT": SALT, **env}
    environ.pop("WEIR_FAULT", None)
    if fault:
        environ["WEIR_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "weir.cli", "run", *args, "--project", str(root)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def lake_content(
    root: Path, table: str, *, run_times: frozenset[str] = frozenset()
) -> dict[str, list[tuple[str, ...]]]:
    """Every layer's rows of ``table`` (sorted, run-specific columns left out), for comparing
    a recovered lake with a clean one. ``run_times``: columns holding a run's time (a
    reconciliation's ``deleted_at``), compared only for being set or NULL."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for layer in ("bronze", "silver", "quarantine"):
        path = root / "lake" / layer / table
        if not path.exists():
            out[layer] = []
            continue
        data = DeltaTable(str(path)).to_pyarrow_table()
        keep = [c for c in data.column_names if c not in VOLATILE]
        out[layer] = sorted(
            tuple(
                ("set" if v is not None else "None") if c in run_times else str(v)
                for c, v in r.items()
            )
            for r in data.select(keep).to_pylist()
        )
    return out
