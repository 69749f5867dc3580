"""The state store: one row per run, queried by ``weir status`` and the health view; and the
audit trail of operations that change data outside runs (``weir forget``).

The store records its schema version in SQLite's ``user_version``. Opening a store migrates
it forward, all steps in one transaction: a migration that fails (or a process killed in the
middle of one) leaves the store as it was, readable by the weir that wrote it. A store
written by a newer weir (a higher version) is refused, never rewritten.

Versions: 1 is the layout of the first stores, which recorded no version (``user_version``
0); such a store is stamped 1 and keeps its rows. A new version adds a function to
``MIGRATIONS`` that takes the store from the version before; never edit an earlier one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weir import faults
from weir.errors import ConfigError

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
"""The ``runs`` columns a record fills (the rest of the record is the ``detail`` JSON)."""

Migration = Callable[[sqlite3.Connection], None]


def _v1(con: sqlite3.Connection) -> None:
    """The first layout (written out, not derived from ``_COLUMNS``: a migration is frozen).
    ``IF NOT EXISTS``: a store from before versions has these tables already."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS runs (pipeline_name TEXT, run_id TEXT, started_at TEXT, "
        "completed_at TEXT, status TEXT, stage TEXT, rows_extracted INTEGER, "
        "rows_transformed INTEGER, rows_loaded INTEGER, rows_rejected INTEGER, "
        "quality_checks_passed INTEGER, quality_checks_failed INTEGER, "
        "duration_seconds REAL, error_message TEXT, watermark_before TEXT, "
        "watermark_after TEXT, detail TEXT, PRIMARY KEY (run_id, pipeline_name))"
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS audit (audit_id TEXT PRIMARY KEY, action TEXT NOT NULL, "
        "started_at TEXT NOT NULL, completed_at TEXT, status TEXT NOT NULL, detail TEXT NOT NULL)"
    )
    con.execute("CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline_name, started_at)")


def _v2_serve(con: sqlite3.Connection) -> None:
    """What ``weir serve`` keeps: the last fire time of each scheduled node (run or
    skipped, so a restart knows which fires it missed), the alert incidents and their
    deliveries to channels, and the indexes the health view reads runs by."""
    con.execute(
        "CREATE TABLE schedule_fires (node TEXT PRIMARY KEY, last_fire TEXT NOT NULL, "
        "cron TEXT NOT NULL)"
    )
    con.execute(
        "CREATE TABLE incidents (incident_id TEXT PRIMARY KEY, node TEXT NOT NULL, "
        "kind TEXT NOT NULL, severity TEXT NOT NULL, status TEXT NOT NULL, "
        "opened_at TEXT NOT NULL, last_seen_at TEXT NOT NULL, resolved_at TEXT, "
        "occurrences INTEGER NOT NULL DEFAULT 1, run_id TEXT, message TEXT, detail TEXT)"
    )
    con.execute("CREATE INDEX incidents_by_node ON incidents (node, kind, status)")
    con.execute(  # one open incident per node and kind, also with two writers
        "CREATE UNIQUE INDEX incidents_open ON incidents (node, kind) WHERE status = 'open'"
    )
    con.execute("CREATE INDEX incidents_by_time ON incidents (opened_at)")
    con.execute(
        "CREATE TABLE alert_deliveries (delivery_id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "incident_id TEXT NOT NULL, channel TEXT NOT NULL, event TEXT NOT NULL, "
        "payload TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
        "created_at TEXT NOT NULL, next_attempt_at TEXT, sent_at TEXT, last_error TEXT)"
    )
    con.execute("CREATE INDEX deliveries_by_status ON alert_deliveries (status, next_attempt_at)")
    con.execute("CREATE INDEX deliveries_by_channel ON alert_deliveries (channel, created_at)")
    con.execute("CREATE INDEX deliveries_by_incident ON alert_deliveries (incident_id)")
    con.execute("CREATE INDEX runs_by_start ON runs (started_at)")
    con.execute("CREATE INDEX runs_by_status ON runs (status, started_at)")


MIGRATIONS: tuple[Migration, ...] = (_v1, _v2_serve)
"""``MIGRATIONS[n]`` takes a store from version ``n`` to ``n + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(path: Path) -> int:
    """The schema version of the store at ``path`` (0: none recorded)."""
    with closing(sqlite3.connect(path, timeout=30)) as con:
        return int(con.execute("PRAGMA user_version").fetchone()[0])


class StateStore:
    """The SQLite file at ``path``, created or migrated to :data:`SCHEMA_VERSION` on open.

    ``migrations``: the steps to apply (tests pass more, to see a future version arrive)."""

    def __init__(self, path: Path, *, migrations: Sequence[Migration] = MIGRATIONS):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            _migrate(path, migrations)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"cannot open the state store: {exc}",
                where=str(path),
                hint="`state:` in weir.yml names the SQLite file of the run history; move a "
                "damaged file away and weir starts a new one (the Delta tables keep the data)",
            ) from exc

    def connect(self) -> sqlite3.Connection:
        """A connection to the store (rows as :class:`sqlite3.Row`), for the modules that
        keep their own tables in it (alerts, health); close it after use."""
        con = sqlite3.connect(self.path, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    _connect = connect

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

    def runs(
        self, pipeline: str | None = None, limit: int = 50, *, status: str | None = None
    ) -> list[dict[str, Any]]:
        """The latest ``limit`` records, newest first (of ``pipeline``, with ``status``)."""
        sql = "SELECT * FROM runs"
        where, args = [], []
        for column, value in (("pipeline_name", pipeline), ("status", status)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC LIMIT ?"
        with closing(self._connect()) as con:
            return [_row(r) for r in con.execute(sql, [*args, limit])]

    def run(self, run_id: str) -> list[dict[str, Any]]:
        """The records of one run id: one per node it ran."""
        sql = "SELECT * FROM runs WHERE run_id = ? ORDER BY started_at"
        with closing(self._connect()) as con:
            return [_row(r) for r in con.execute(sql, [run_id])]

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

    def last_success(self, pipeline: str) -> dict[str, Any] | None:
        """The newest successful (or partial) run of ``pipeline``, None when there is none."""
        sql = (
            "SELECT * FROM runs WHERE pipeline_name = ? AND status IN ('success', 'partial') "
            "ORDER BY started_at DESC LIMIT 1"
        )
        with closing(self._connect()) as con:
            row = con.execute(sql, [pipeline]).fetchone()
        return None if row is None else _row(row)

    def succeeded(self) -> set[str]:
        """The names of the nodes with at least one successful (or partial) run."""
        sql = "SELECT DISTINCT pipeline_name FROM runs WHERE status IN ('success', 'partial')"
        with closing(self._connect()) as con:
            return {r["pipeline_name"] for r in con.execute(sql)}

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

    def last_fires(self) -> dict[str, tuple[str, str]]:
        """Each scheduled node's last fire time (ISO 8601, UTC) and the cron it fired by."""
        with closing(self._connect()) as con:
            rows = con.execute("SELECT node, last_fire, cron FROM schedule_fires").fetchall()
        return {r["node"]: (r["last_fire"], r["cron"]) for r in rows}

    def save_fires(self, fires: dict[str, tuple[str, str]]) -> None:
        """Record nodes' last fire times (``node → (ISO time, cron)``), in one transaction."""
        with closing(self._connect()) as con, con:
            con.executemany(
                "INSERT OR REPLACE INTO schedule_fires (node, last_fire, cron) VALUES (?, ?, ?)",
                [(node, at, cron) for node, (at, cron) in fires.items()],
            )

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


def _migrate(path: Path, migrations: Sequence[Migration]) -> None:
    """Bring the store at ``path`` to version ``len(migrations)``, in one transaction."""
    target = len(migrations)
    # isolation_level None: the transaction is begun and ended here, DDL included
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as con:
        version = _version(con)
        if version == target:
            return
        _refuse_newer(path, version, target)
        con.execute("BEGIN IMMEDIATE")  # one migrator at a time; the others wait, then see
        try:
            version = _version(con)
            _refuse_newer(path, version, target)
            for step in range(version, target):
                migrations[step](con)
                faults.point("state.migrate")
            con.execute(f"PRAGMA user_version = {target:d}")
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise


def _version(con: sqlite3.Connection) -> int:
    return int(con.execute("PRAGMA user_version").fetchone()[0])


def _refuse_newer(path: Path, version: int, target: int) -> None:
    if version > target:
        raise ConfigError(
            f"the state store has schema version {version}, newer than this weir knows "
            f"(version {target}): a newer weir wrote it",
            where=str(path),
            hint="run this project with that newer weir, or point `state:` in weir.yml at "
            "another file; this weir leaves the file as it is",
        )
