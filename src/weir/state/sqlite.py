"""The state store: one row per run, queried by ``weir status`` and the health view."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from weir.observe.record import RunRecord

_COLUMNS = (
    "pipeline_name",
    "run_id",
    "started_at",
    "completed_at",
    "status",
    "stage",
    "rows_extracted",
    "rows_transformed",
    "rows_loaded",
    "rows_rejected",
    "quality_checks_passed",
    "quality_checks_failed",
    "duration_seconds",
    "error_message",
    "watermark_before",
    "watermark_after",
)
_NUMERIC = {"duration_seconds": "REAL"}
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS runs ("
    + ", ".join(
        f"{c} {_NUMERIC.get(c, 'INTEGER' if c.startswith(('rows_', 'quality_')) else 'TEXT')}"
        for c in _COLUMNS
    )
    + ", detail TEXT, PRIMARY KEY (run_id, pipeline_name))"
)


class StateStore:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.execute(_SCHEMA)
            con.execute(
                "CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline_name, started_at)"
            )

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    def save(self, record: RunRecord, scrub: Any = str) -> None:
        data = record.as_dict()
        detail = {k: v for k, v in data.items() if k not in _COLUMNS}
        values = [data[c] for c in _COLUMNS]
        values = [scrub(v) if isinstance(v, str) else v for v in values]
        with closing(self._connect()) as con, con:
            con.execute(
                f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}, detail) "
                f"VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})",
                [*values, scrub(json.dumps(detail, default=str))],
            )

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        sql = "SELECT * FROM runs"
        args: list[Any] = []
        if pipeline:
            sql += " WHERE pipeline_name = ?"
            args.append(pipeline)
        sql += " ORDER BY started_at DESC LIMIT ?"
        args.append(limit)
        with closing(self._connect()) as con:
            return [_row(r) for r in con.execute(sql, args)]

    def last_runs(self) -> dict[str, dict[str, Any]]:
        """The latest run of every pipeline, with ``last_loaded_at``: when a successful run
        last brought new rows (data freshness is measured from there)."""
        sql = (
            "SELECT * FROM runs r WHERE started_at = (SELECT max(started_at) FROM runs "
            "WHERE pipeline_name = r.pipeline_name)"
        )
        ok_sql = (
            "SELECT pipeline_name, max(completed_at) AS at FROM runs "
            "WHERE status IN ('success', 'partial') AND rows_extracted > 0 GROUP BY pipeline_name"
        )
        with closing(self._connect()) as con:
            last = {r["pipeline_name"]: _row(r) for r in con.execute(sql)}
            for r in con.execute(ok_sql):
                if r["pipeline_name"] in last:
                    last[r["pipeline_name"]]["last_loaded_at"] = r["at"]
        return last


def _row(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data.update(json.loads(data.pop("detail") or "{}"))
    return data
