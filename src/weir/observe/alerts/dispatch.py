"""The delivery queue (``alert_deliveries``): every alert to every channel is a row, queued
first and sent after, so a channel that is down never holds up or fails a run.

- **Rate limit**: a channel gets at most ``alerts.rate_limit_per_hour`` deliveries in any
  hour; one over it is stored with status ``dropped`` (and counted in ``weir alerts``),
  never sent.
- **Back-off**: a delivery is claimed by raising its ``attempts`` and moving its
  ``next_attempt_at`` forward (``retry_seconds`` × 2^(attempts − 1), at most an hour) in
  one statement, then sent; sent, it is ``sent``; failed, it waits for that time, and after
  ``max_attempts`` tries it is ``failed``. A process killed while sending leaves the row
  queued for its next attempt. Each failure is logged as a warning naming the channel by
  its label, never its URL.
- A channel that fails once in a pass is not tried again in that pass: its other alerts
  wait for the next one, instead of each waiting for its own timeout.
- A channel gets an incident's alerts in order: a ``resolved`` waits while the
  ``opened`` before it is queued (or being sent by another thread).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from weir.observe.alerts import channels as senders
from weir.observe.alerts.incidents import Incident, connected, transaction
from weir.observe.alerts.message import alert
from weir.observe.alerts.routing import channels
from weir.observe.alerts.severity import reaches
from weir.observe.record import Scrubber

if TYPE_CHECKING:
    from weir.spec import Project
    from weir.state.sqlite import StateStore

log = logging.getLogger("weir.alerts")

MAX_BACKOFF_SECONDS = 3600.0


def iso(when: datetime) -> str:
    """``when`` as stored: ISO 8601 in UTC, to the millisecond (text order is time order)."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


class Dispatcher:
    def __init__(self, project: Project, store: StateStore):
        self.project = project
        self.store = store
        self.config = project.spec.alerts
        self.channels = channels(project)
        self.scrub = Scrubber(project.secrets)

    def enqueue(
        self, incident: Incident, event: str, labels: tuple[str, ...], now: datetime
    ) -> None:
        """Queue the alert of ``incident`` (``opened`` or ``resolved``) for each channel of
        ``labels`` that takes its severity; over a channel's rate limit it is ``dropped``."""
        payload = self.scrub(json.dumps(alert(self.project, incident, event), default=str))
        hour_ago, at = iso(now - timedelta(hours=1)), iso(now)
        limit = self.config.rate_limit_per_hour
        with connected(self.store) as con, transaction(con):
            for label in labels:
                channel = self.channels.get(label)
                if channel is None or not reaches(incident.severity, channel.min_severity):
                    continue
                (count,) = con.execute(
                    "SELECT count(*) FROM alert_deliveries WHERE channel = ? "
                    "AND status != 'dropped' AND created_at > ?",
                    [label, hour_ago],
                ).fetchone()
                dropped = count >= limit
                con.execute(
                    "INSERT INTO alert_deliveries (incident_id, channel, event, payload, status, "
                    "attempts, created_at, next_attempt_at, last_error) "
                    "VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                    [
                        incident.incident_id,
                        label,
                        event,
                        payload,
                        "dropped" if dropped else "queued",
                        at,
                        None if dropped else at,
                        f"over alerts.rate_limit_per_hour ({limit})" if dropped else None,
                    ],
                )
                if dropped:
                    log.warning(
                        "alert for %s (%s) to %s dropped: %d deliveries in the last hour "
                        "(alerts.rate_limit_per_hour: %d)",
                        incident.node,
                        incident.kind,
                        label,
                        count,
                        limit,
                    )

    def deliver_due(self, now: datetime, *, timeout: float | None = None, limit: int = 100) -> int:
        """Send the queued deliveries due at ``now`` (oldest first, at most ``limit``);
        ``timeout`` caps each channel's own. Returns how many were sent."""
        with connected(self.store) as con:
            due = con.execute(
                "SELECT delivery_id, channel, payload, attempts FROM alert_deliveries d "
                "WHERE status = 'queued' AND next_attempt_at <= ? AND NOT EXISTS ("
                "SELECT 1 FROM alert_deliveries e WHERE e.incident_id = d.incident_id "
                "AND e.channel = d.channel AND e.status = 'queued' "
                "AND e.delivery_id < d.delivery_id) ORDER BY delivery_id LIMIT ?",
                [iso(now), limit],
            ).fetchall()
        down: set[str] = set()
        sent = 0
        for row in due:
            if row["channel"] in down:
                continue
            if not self._claim(row["delivery_id"], row["attempts"], now):
                continue  # another thread or process took it
            if self._send(
                row["delivery_id"], row["channel"], row["payload"], row["attempts"] + 1, timeout
            ):
                sent += 1
            else:
                down.add(row["channel"])
        return sent

    def _claim(self, delivery_id: int, attempts: int, now: datetime) -> bool:
        wait = min(self.config.retry_seconds * 2**attempts, MAX_BACKOFF_SECONDS)
        with connected(self.store) as con, con:
            cursor = con.execute(
                "UPDATE alert_deliveries SET attempts = attempts + 1, next_attempt_at = ? "
                "WHERE delivery_id = ? AND status = 'queued' AND attempts = ?",
                [iso(now + timedelta(seconds=wait)), delivery_id, attempts],
            )
            return cursor.rowcount == 1

    def _send(
        self, delivery_id: int, label: str, payload: str, attempt: int, timeout: float | None
    ) -> bool:
        channel = self.channels.get(label)
        error: str | None = None
        if channel is None:
            error = "the channel is no longer configured"
        else:
            try:
                senders.send(
                    channel,
                    json.loads(payload),
                    root=self.project.root,
                    timeout=timeout or channel.timeout_seconds,
                    secrets=self.project.secrets,
                )
            except senders.DeliveryError as exc:
                error = str(exc)
        with connected(self.store) as con, con:
            if error is None:
                con.execute(
                    "UPDATE alert_deliveries SET status = 'sent', sent_at = ?, last_error = NULL, "
                    "next_attempt_at = NULL WHERE delivery_id = ?",
                    [iso(datetime.now(UTC)), delivery_id],
                )
                return True
            final = channel is None or attempt >= self.config.max_attempts
            con.execute(
                "UPDATE alert_deliveries SET status = ?, last_error = ?, next_attempt_at = "
                "CASE WHEN ? THEN NULL ELSE next_attempt_at END WHERE delivery_id = ?",
                ["failed" if final else "queued", error, final, delivery_id],
            )
        after = "gave up" if final else "will retry"
        log.warning(
            "alert delivery to %s failed (attempt %d of %d, %s): %s",
            label,
            attempt,
            self.config.max_attempts,
            after,
            error,
        )
        return False
