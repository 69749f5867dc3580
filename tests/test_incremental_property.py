"""Property: an incremental model equals an independent Python model of its contract.

The model is a per-day, per-group aggregate (unique key ``[day, grp]``, lookback 2 days) over
a source that changes at random: inserts on random days, late updates and moves inside and
beyond the lookback, deletes. After every run, rows from the window on (``day >=`` the last
run's maximum day − lookback) equal a full recompute from the current source rows, and rows
before the window are what the independent model kept. While no change fell before the
window, the table equals the full recompute exactly. Re-runs create no table version.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from weirtest.modelkit import (
    DAILY,
    Event,
    at,
    day,
    events_project,
    gold_rows,
    gold_versions,
    push,
    run_ok,
)

LOOKBACK = dt.timedelta(days=2)  # the lookback of modelkit.DAILY
Key = tuple[dt.date, str]
Agg = dict[Key, tuple[int, int]]

days = st.integers(1, 10)
groups = st.sampled_from(["a", "b"])
amounts = st.integers(1, 9)
mutation = st.one_of(
    st.tuples(st.just("insert"), days, groups, amounts),
    st.tuples(st.just("update"), st.integers(0, 99), amounts, st.none() | days),
    st.tuples(st.just("delete"), st.integers(0, 99)),
)
changes = st.lists(mutation, min_size=1, max_size=3)
step = st.one_of(changes, changes, changes, st.just("rerun"))  # a re-run one step in four
first = st.lists(st.tuples(st.just("insert"), days, groups, amounts), min_size=1, max_size=6)


def aggregate(events: dict[int, tuple[int, str, int]]) -> Agg:
    out: dict[Key, tuple[int, int]] = {}
    for d, grp, amount in events.values():
        n, total = out.get((day(d), grp), (0, 0))
        out[(day(d), grp)] = (n + 1, total + amount)
    return out


@dataclass
class Expected:
    """The incremental contract in plain Python: what the table should hold."""

    kept: Agg = field(default_factory=dict)
    high: dt.date | None = None
    ran: bool = False

    @property
    def start(self) -> dt.date | None:
        """The next run's window start (None: the next run recomputes everything)."""
        return self.high - LOOKBACK if self.ran and self.high is not None else None

    def run(self, full: Agg) -> None:
        start = self.start
        if start is None:
            self.kept = dict(full)
            self.high = max((k[0] for k in full), default=None)
        else:
            window = {k: v for k, v in full.items() if k[0] >= start}
            self.kept = {k: v for k, v in self.kept.items() if k[0] < start} | window
            assert self.high is not None
            self.high = max([self.high, *(k[0] for k in window)])
        self.ran = True


def _apply(
    events: dict[int, tuple[int, str, int]], change: tuple[Any, ...], next_id: int
) -> list[int]:
    """Apply one mutation; returns the days it touched (old and new)."""
    kind = change[0]
    if kind == "insert":
        _, d, grp, amount = change
        events[next_id] = (d, grp, amount)
        return [d]
    ids = sorted(events)
    if not ids:
        return []
    event_id = ids[change[1] % len(ids)]
    old_day, grp, _ = events[event_id]
    if kind == "delete":
        if len(events) == 1:  # keep the source non-empty (an empty batch is no batch)
            return []
        del events[event_id]
        return [old_day]
    _, _, amount, new_day = change
    events[event_id] = (new_day or old_day, grp, amount)
    return [old_day, new_day or old_day]


def _rows(agg: Agg) -> list[dict[str, Any]]:
    rows = [{"day": k[0], "grp": k[1], "n": v[0], "total": v[1]} for k, v in agg.items()]
    return sorted(rows, key=lambda r: [str(v) for v in r.values()])


def _source(events: dict[int, tuple[int, str, int]]) -> list[Event]:
    return [(i, day(d), grp, amount, at(d)) for i, (d, grp, amount) in sorted(events.items())]


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(first, st.lists(step, min_size=1, max_size=6))
def test_incremental_matches_an_independent_model(initial: list[Any], steps: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = events_project(Path(tmp) / "p", {"daily": DAILY})
        events: dict[int, tuple[int, str, int]] = {}
        expected = Expected()
        next_id = 1
        beyond = False  # did any change fall before the window of the run that saw it?
        for item in [initial, *steps]:
            if item == "rerun":
                if not expected.ran:
                    continue
                before = gold_versions(root)
                records = run_ok(root)
                assert not any(r.changed for r in records.values())
                assert gold_versions(root) == before
                continue
            start = expected.start
            for change in item:
                touched = _apply(events, change, next_id)
                next_id += 1
                beyond |= start is not None and any(day(d) < start for d in touched)
            if not events:
                continue
            push(_source(events))
            records = run_ok(root)
            assert records["daily"].changed
            full = aggregate(events)
            expected.run(full)
            actual = gold_rows(root, "daily")
            window = [r for r in actual if start is None or r["day"] >= start]
            older = [r for r in actual if start is not None and r["day"] < start]
            in_window = {k: v for k, v in full.items() if start is None or k[0] >= start}
            assert window == _rows(in_window), "the window differs from a full recompute"
            kept_before = {k: v for k, v in expected.kept.items() if k not in in_window}
            assert older == _rows(kept_before), "rows before the window changed"
            assert actual == _rows(expected.kept)
            if not beyond:
                assert actual == _rows(full)
        event("a change fell before the window" if beyond else "all changes inside the window")
