"""``weir init``: a new project with one working pipeline, its contract and sample data."""

from __future__ import annotations

import json
import re
from pathlib import Path

from weir.errors import UsageError

FILES: dict[str, str] = {
    "weir.yml": """\
name: {name}
lake: lake            # Delta tables: lake/bronze, lake/silver, lake/quarantine
state: .weir/state.db # run history (SQLite)
error_handling:
  strategy: retry
  max_retries: 3
  retry_delay_seconds: 5
""",
    "contracts/orders.yml": """\
apiVersion: v3.0.2
kind: DataContract
id: orders
name: Orders
version: 1.0.0
status: active
description:
  purpose: Orders as the shop exports them, one CSV file per day.
team:
  - {username: data-eng, role: owner}
customProperties:
  - {property: consumers, value: [analytics]}
  - {property: breakingChangePolicy, value: version-bump}
slaProperties:
  - {property: freshness, value: 24, unit: h}
schema:
  - name: orders
    properties:
      - {name: order_id, physicalName: id, physicalType: int64, primaryKey: true, primaryKeyPosition: 1}
      - {name: status, physicalType: string, required: true,
         quality: [{rule: accepted_values, validValues: [placed, shipped, returned], severity: warn}]}
      - {name: amount, physicalType: "decimal(12,2)",
         quality: [{rule: range, mustBeGreaterThanOrEqualTo: 0, severity: error}]}
      - {name: updated_at, physicalType: timestamp, required: true}
    quality:
      - {rule: row_count, mustBeGreaterThanOrEqualTo: 1, severity: warn}
""",
    "pipelines/orders.yml": """\
name: orders
owner: data-eng
description: Daily order files into silver.orders, upserted on order_id.
schedule: "0 6 * * *"
sla_minutes: 15
tier: 2
contract: orders
extract:
  source: files
  path: data/orders/*.csv
  format: csv
transform:
  dedupe_order_by: updated_at
  derived:
    - {name: order_date, sql: "CAST(updated_at AS DATE)", type: date}
load:
  strategy: merge
quality_gates:
  quarantine: true
""",
    "data/orders/orders_2024_01_01.csv": """\
id,status,amount,updated_at
1,placed,19.99,2024-01-01T09:00:00
2,placed,5.00,2024-01-01T10:30:00
3,shipped,120.50,2024-01-01T11:15:00
4,lost,7.25,2024-01-01T12:00:00
5,placed,-3.00,2024-01-01T12:30:00
""",
    ".gitignore": "lake/\n.weir/\n",
}


def scaffold(directory: Path, *, force: bool = False) -> list[Path]:
    if directory.exists() and any(directory.iterdir()) and not force:
        raise UsageError(f"{directory} is not empty", hint="choose a new directory or pass --force")
    written = []
    for name, text in FILES.items():
        path = directory / name
        if name == "weir.yml":  # the project is named after its directory
            text = text.replace("{name}", _yaml_text(directory.resolve().name), 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _yaml_text(value: str) -> str:
    """``value`` as a YAML scalar: bare when plain, quoted (JSON is YAML) otherwise."""
    return value if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", value) else json.dumps(value)
