"""When a node's ``schedule`` fires, in the project's time zone.

A cron expression names wall-clock times (``30 2 * * *``: half past two, local time). Each
such wall time fires once, including across daylight-saving changes:

- a wall time that does not exist (the hour skipped when clocks go forward) fires that long
  after it would have: ``02:30`` on the spring-forward night fires at ``03:30`` summer time
  (Python's ``fold=0`` reading, PEP 495), once;
- a wall time that happens twice (the hour repeated when clocks go back) fires at its first
  occurrence only, so a daily job never runs twice that night. An hourly schedule fires once
  in the repeated hour too: two real hours pass between its 02:00 and 03:00 fires.

Fire times are returned as aware UTC datetimes, strictly increasing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from croniter import croniter


@dataclass(frozen=True)
class Schedule:
    node: str
    cron: str
    zone: tzinfo

    @classmethod
    def of(cls, node: str, cron: str, timezone: str) -> Schedule:
        return cls(node, cron, ZoneInfo(timezone))

    def fires(self, after: datetime) -> Iterator[datetime]:
        """The fire times strictly after ``after`` (aware), in order, without end."""
        after = after.astimezone(UTC)
        local = after.astimezone(self.zone).replace(tzinfo=None)
        # croniter walks naive wall-clock time; each wall time is then placed in the zone
        times = croniter(self.cron, local)
        last = after
        while True:
            wall: datetime = times.get_next(datetime)
            when = wall.replace(tzinfo=self.zone).astimezone(UTC)  # fold=0: first occurrence
            if when > last:
                last = when
                yield when

    def between(self, after: datetime, until: datetime) -> list[datetime]:
        """The fire times in ``(after, until]``."""
        found = []
        for when in self.fires(after):
            if when > until:
                break
            found.append(when)
        return found

    def next_after(self, after: datetime) -> datetime:
        return next(self.fires(after))
