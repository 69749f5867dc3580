"""The ``incidents`` table of the state store: one row per problem, from the moment it
starts (status ``open``) to the one it ends (``resolved``).

At most one incident of a kind is open per node (a unique index), so an incident is found
by ``(node, kind)``; every change is one ``BEGIN IMMEDIATE`` transaction, so two observers
or two processes hearing the same run change it once. A repeat of an open problem by a new
run adds one to ``occurrences``; hearing the same run again (the run-level observer and
serve's both hear it) changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from weir.spec.alerts import AlertKind

if TYPE_CHECKING:
    from weir.state.sqlite import StateStore


@dataclass
class Incident:
    incident_id: str
    node: str
    kind: AlertKind
    severity: str
    status: str
    opened_at: str
    last_seen_at: str
    resolved_at: str | None = None
    occurrences: int = 1
    run_id: str | None = None
    message: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, row: sqlite3.Row) -> Incident:
        data = dict(row)
        data["detail"] = json.loads(data.get("detail") or "{}")
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k != "detail"}
        return {**self.detail, **data}


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``): no two writers interleave
    their read and write."""
    con.isolation_level = None
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def find_open(con: sqlite3.Connection, node: str, kind: str) -> Incident | None:
    row = con.execute(
        "SELECT * FROM incidents WHERE node = ? AND kind = ? AND status = 'open'", [node, kind]
    ).fetchone()
    return None if row is None else Incident.of(row)


def open_or_repeat(
    con: sqlite3.Connection,
    new: Incident,
) -> tuple[Incident, bool]:
    """Open ``new``, or note a repeat on the incident of its node and kind that is open.
    Returns the incident and whether it was opened now (then it is to be alerted)."""
    with transaction(con):
        found = find_open(con, new.node, new.kind)
        if found is None:
            _insert(con, new)
            return new, True
        if new.run_id is None or found.run_id == new.run_id:
            con.execute(
                "UPDATE incidents SET last_seen_at = ? WHERE incident_id = ?",
                [new.last_seen_at, found.incident_id],
            )
            found.last_seen_at = new.last_seen_at
            return found, False
        found.occurrences += 1
        found.last_seen_at, found.run_id, found.message = new.last_seen_at, new.run_id, new.message
        repeat = {k: v for k, v in new.detail.items() if k != "first_run_id"}
        found.detail = {**found.detail, **repeat}
        con.execute(
            "UPDATE incidents SET occurrences = ?, last_seen_at = ?, run_id = ?, message = ?, "
            "detail = ? WHERE incident_id = ?",
            [
                found.occurrences,
                found.last_seen_at,
                found.run_id,
                found.message,
                json.dumps(found.detail, default=str),
                found.incident_id,
            ],
        )
        return found, False


def resolve(
    con: sqlite3.Connection, node: str, kind: str, at: str, **detail: Any
) -> Incident | None:
    """Resolve the open incident of ``node`` and ``kind``; None when none is open."""
    with transaction(con):
        found = find_open(con, node, kind)
        if found is None:
            return None
        found.status, found.resolved_at = "resolved", at
        found.detail = {**found.detail, **detail}
        con.execute(
            "UPDATE incidents SET status = 'resolved', resolved_at = ?, detail = ? "
            "WHERE incident_id = ?",
            [at, json.dumps(found.detail, default=str), found.incident_id],
        )
        return found


def new_incident(
    node: str,
    kind: AlertKind,
    severity: str,
    at: str,
    message: str,
    *,
    run_id: str | None = None,
    **detail: Any,
) -> Incident:
    """An incident not stored yet (:func:`open_or_repeat` stores it)."""
    detail = {**detail, "first_run_id": run_id}
    return Incident(
        uuid.uuid4().hex[:16],
        node,
        kind,
        severity,
        "open",
        at,
        at,
        None,
        1,
        run_id,
        message,
        detail,
    )


def _insert(con: sqlite3.Connection, incident: Incident) -> None:
    con.execute(
        "INSERT INTO incidents (incident_id, node, kind, severity, status, opened_at, "
        "last_seen_at, resolved_at, occurrences, run_id, message, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            incident.incident_id,
            incident.node,
            incident.kind,
            incident.severity,
            incident.status,
            incident.opened_at,
            incident.last_seen_at,
            incident.resolved_at,
            incident.occurrences,
            incident.run_id,
            incident.message,
            json.dumps(incident.detail, default=str),
        ],
    )


def listing(con: sqlite3.Connection, *, open_only: bool, limit: int) -> list[dict[str, Any]]:
    """Incidents, newest first, each with its deliveries (oldest first)."""
    sql = "SELECT * FROM incidents"
    sql += " WHERE status = 'open'" if open_only else ""
    rows = con.execute(sql + " ORDER BY opened_at DESC LIMIT ?", [limit]).fetchall()
    out = []
    for row in rows:
        incident = Incident.of(row).as_dict()
        deliveries = con.execute(
            "SELECT channel, event, status, attempts, created_at, next_attempt_at, sent_at, "
            "last_error FROM alert_deliveries WHERE incident_id = ? ORDER BY delivery_id",
            [incident["incident_id"]],
        ).fetchall()
        incident["deliveries"] = [dict(d) for d in deliveries]
        out.append(incident)
    return out


@contextmanager
def connected(store: StateStore) -> Iterator[sqlite3.Connection]:
    """A connection to ``store``, closed after use."""
    with closing(store.connect()) as con:
        yield con
