"""The weir projects the benchmarks run: one ``orders`` contract, one pipeline per benchmark."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

SALT = "bench-salt-4b1d9e0c77"

ROW_RULES = 12
"""Row rules compiled from ORDERS (10 declared + 2 implicit key not-null rules)."""


def _col(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "physicalType": kind, **extra}


ORDERS: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "orders",
    "version": "1.0.0",
    "team": [{"username": "bench", "role": "owner"}],
    "schema": [
        {
            "name": "orders",
            "properties": [
                _col(
                    "order_id",
                    "int64",
                    physicalName="id",
                    primaryKey=True,
                    primaryKeyPosition=1,
                    quality=[{"rule": "unique", "severity": "warn"}],
                ),
                _col("order_date", "date", primaryKey=True, primaryKeyPosition=2),
                _col("customer_id", "int64"),
                _col(
                    "email",
                    "string",
                    classification="pii",
                    quality=[{"rule": "regex", "pattern": "[^@]+@[^@]+", "severity": "warn"}],
                ),
                _col(
                    "status",
                    "string",
                    quality=[
                        {
                            "rule": "accepted_values",
                            "validValues": ["placed", "paid", "shipped", "delivered", "cancelled"],
                            "severity": "warn",
                        }
                    ],
                ),
                _col(
                    "amount",
                    "float64",
                    quality=[
                        {"rule": "range", "mustBeBetween": [0, 10000], "severity": "warn"},
                        {
                            "rule": "range",
                            "mustBeGreaterThanOrEqualTo": -100,
                            "name": "amount.not_absurd",
                        },
                    ],
                ),
                _col(
                    "quantity",
                    "int32",
                    quality=[{"rule": "range", "mustBeBetween": [1, 100], "severity": "warn"}],
                ),
                _col(
                    "currency",
                    "string",
                    quality=[{"rule": "accepted_values", "validValues": ["EUR", "USD", "GBP"]}],
                ),
                _col(
                    "country",
                    "string",
                    quality=[{"rule": "regex", "pattern": "[A-Z]{2}", "severity": "info"}],
                ),
                _col("updated_at", "timestamp", required=True),
            ],
            "quality": [
                {
                    "rule": "row_condition",
                    "name": "cancelled_or_has_quantity",
                    "condition": "status = 'cancelled' OR quantity > 0",
                    "severity": "warn",
                },
                {"rule": "row_count", "mustBeGreaterThanOrEqualTo": 1},
            ],
        }
    ],
}


def pipeline(name: str, extract: dict[str, Any], load: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "owner": "bench",
        "contract": "orders",
        "extract": extract,
        "transform": {"dedupe_order_by": "updated_at"},
        "load": load,
        "error_handling": {"strategy": "fail-fast", "max_retries": 0},
    }


def write(root: Path, pipelines: list[dict[str, Any]], *, settings: str = "") -> Path:
    """A fresh project at ``root`` (anything there before is removed); ``settings`` are
    extra ``weir.yml`` lines."""
    if root.exists():
        shutil.rmtree(root)
    (root / "contracts").mkdir(parents=True)
    (root / "pipelines").mkdir()
    (root / "weir.yml").write_text("name: bench\nlake: lake\n" + settings)
    (root / "contracts" / "orders.yml").write_text(yaml.safe_dump(ORDERS, sort_keys=False))
    for spec in pipelines:
        text = yaml.safe_dump(spec, sort_keys=False)
        (root / "pipelines" / f"{spec['name']}.yml").write_text(text)
    return root
