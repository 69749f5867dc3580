"""The state store: one row per run, queried by ``weir status`` and the health view; and the
audit trail of operations that change data outside runs (``weir forget``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weir.observe.record import RunRecord  # the store keeps records as dicts

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
_AUDIT = (
    "CREATE TABLE IF NOT EXISTS audit (audit_id TEXT PRIMARY KEY, action TEXT NOT NULL, "
    "started_at TEXT NOT NULL, completed_at TEXT, status TEXT NOT NULL, detail TEXT NOT NULL)"
)


class StateStore:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.execute(_SCHEMA)
            con.execute(_AUDIT)
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

    def edit_runs(self, edit: Callable[[dict[str, Any]], dict[str, Any] | None]) -> int:
        """Rewrite stored run records: ``edit`` gets each record (as :meth:`runs` returns
        it) and returns the new one, or None to keep it. One transaction; returns how many
        records changed."""
        changed = 0
        with closing(self._connect()) as con, con:
            for row in con.execute("SELECT * FROM runs").fetchall():
                new = edit(_row(row))
                if new is None:
                    continue
                detail = {k: v for k, v in new.items() if k not in _COLUMNS}
                detail.pop("last_loaded_at", None)
                sets = ", ".join(f"{c} = ?" for c in _COLUMNS)
                con.execute(
                    f"UPDATE runs SET {sets}, detail = ? WHERE run_id = ? AND pipeline_name = ?",
                    [
                        *(new.get(c) for c in _COLUMNS),
                        json.dumps(detail, default=str),
                        row["run_id"],
                        row["pipeline_name"],
                    ],
                )
                changed += 1
        return changed

    def save_audit(self, entry: dict[str, Any]) -> None:
        """Insert or update one audit entry (``audit_id``, ``action``, ``started_at``,
        ``completed_at``, ``status``; the whole entry is kept as JSON)."""
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT OR REPLACE INTO audit "
                "(audit_id, action, started_at, completed_at, status, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    entry["audit_id"],
                    entry["action"],
                    entry["started_at"],
                    entry.get("completed_at"),
                    entry["status"],
                    json.dumps(entry, default=str, sort_keys=True),
                ],
            )

    def audit(self, action: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Audit entries, newest first."""
        sql = "SELECT detail FROM audit"
        args: list[Any] = []
        if action:
            sql += " WHERE action = ?"
            args.append(action)
        sql += " ORDER BY started_at DESC LIMIT ?"
        args.append(limit)
        with closing(self._connect()) as con:
            return [json.loads(r["detail"]) for r in con.execute(sql, args)]


def _row(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data.update(json.loads(data.pop("detail") or "{}"))
    return data
