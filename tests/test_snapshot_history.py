"""Property: a snapshot model's SCD2 history equals an independently computed history.

Random sequences of full snapshots of the source (keys appearing, changing, disappearing and
coming back, ``updated_at`` going backwards, NULLs) run through a ``snapshot`` model with
each strategy and hard-delete mode. The expected history is computed here in plain Python
from the semantics documented on ``weir.spec.model.Snapshot`` and ``strategies._scd2``:

- check: a change of the tracked columns opens a version valid from the run's start
  (``started_at`` of the model's run record) and closes the previous one at that time;
- timestamp: a newer ``updated_at`` opens a version valid from that time; a change not newer
  than the current version (out of order) opens nothing and is counted as late; the same
  ``updated_at`` with other values is no change;
- a key with no current version (new, or back after a hard delete) opens a version, valid
  from no earlier than its last version's close (versions of a key never overlap);
- hard_deletes close: a current key missing from the snapshot is closed at the run's start;
  ignore: it stays current;
- a re-run with unchanged sources writes nothing; the same snapshot again changes no history.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import weir_run
from modelkit import (
    EVENTS_CONTRACT,
    Event,
    at,
    day,
    events_project,
    gold,
    gold_versions,
    naive,
    push,
    run_ok,
)

MODELS = {
    "check": "SELECT event_id, grp, amount FROM silver.events",
    "timestamp": "SELECT event_id, amount, updated_at FROM silver.events",
}

# one key's row in a snapshot: (grp, amount, updated_at day, updated_at hour)
row = st.tuples(
    st.sampled_from(["a", "b"]), st.none() | st.integers(0, 2), st.integers(1, 4), st.integers(0, 1)
)
snapshot = st.dictionaries(st.integers(1, 4), row, min_size=1, max_size=4)
step = st.one_of(snapshot, snapshot, snapshot, st.sampled_from(["rerun", "again"]))

Snapshot = dict[int, tuple[str, int | None, int, int]]


@dataclass
class Version:
    key: int
    values: tuple[Any, ...]
    valid_from: dt.datetime
    valid_to: dt.datetime | None = None

    def row(self) -> tuple[Any, ...]:
        return (self.key, *self.values, self.valid_from, self.valid_to, self.valid_to is None)


@dataclass
class History:
    """SCD2 in plain Python: the versions a snapshot model should hold."""

    strategy: str
    hard_deletes: str
    versions: list[Version] = field(default_factory=list)

    def current(self, key: int) -> Version | None:
        return next((v for v in self.versions if v.key == key and v.valid_to is None), None)

    def run(self, snap: Snapshot, started: dt.datetime) -> int:
        """Apply one run's snapshot; returns the number of late (out-of-order) rows."""
        late = 0
        for key, (grp, amount, d, hour) in sorted(snap.items()):
            updated_at = at(d, hour)
            if self.strategy == "check":
                values: tuple[Any, ...] = (grp, amount)
                valid_from = started
            else:
                values, valid_from = (amount, updated_at), updated_at
            cur = self.current(key)
            if cur is None:  # new, or back after a hard delete: never before the last close
                closed = [v.valid_to for v in self.versions if v.key == key and v.valid_to]
                self.versions.append(Version(key, values, max([valid_from, *closed])))
                continue
            if self.strategy == "check":
                changed = values != cur.values
            else:
                changed = updated_at != cur.values[-1]
                if changed and updated_at <= cur.valid_from:
                    late += 1
                    continue
            if changed:
                cur.valid_to = valid_from
                self.versions.append(Version(key, values, valid_from))
        if self.hard_deletes == "close":
            for version in self.versions:
                if version.valid_to is None and version.key not in snap:
                    version.valid_to = started
        return late

    def rows(self) -> list[tuple[Any, ...]]:
        return sorted((v.row() for v in self.versions), key=_order)


def _order(r: tuple[Any, ...]) -> list[str]:
    return [str(v) for v in r]


def _model(strategy: str, hard_deletes: str) -> str:
    options = f"strategy: {strategy}, hard_deletes: {hard_deletes}"
    if strategy == "timestamp":
        options += ", updated_at: updated_at"
    return (
        f"/* weir\nmaterialized: snapshot\nunique_key: [event_id]\nsnapshot: {{{options}}}\n*/\n"
        + MODELS[strategy]
    )


def _columns(strategy: str) -> list[str]:
    values = ["grp", "amount"] if strategy == "check" else ["amount", "updated_at"]
    return ["event_id", *values, "valid_from", "valid_to", "is_current"]


def _actual(root: Path, strategy: str) -> list[tuple[Any, ...]]:
    columns = _columns(strategy)
    data = DeltaTable(str(gold(root, "snap"))).to_pyarrow_table(columns=columns).to_pylist()
    return sorted((tuple(r[c] for c in columns) for r in data), key=_order)


def _events(snap: Snapshot) -> list[Event]:
    """The snapshot as source rows (amount may be NULL)."""
    return [(k, day(d), grp, amount, at(d, h)) for k, (grp, amount, d, h) in snap.items()]


def _late(warnings: list[str]) -> int:
    for w in warnings:
        if "out of order" in w:
            return int(w.split()[0])
    return 0


@pytest.mark.slow
@pytest.mark.parametrize("hard_deletes", ["close", "ignore"])
@pytest.mark.parametrize("strategy", ["check", "timestamp"])
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(first=snapshot, steps=st.lists(step, min_size=1, max_size=6))
def test_snapshot_history_matches_an_independent_scd2(
    strategy: str, hard_deletes: str, first: Snapshot, steps: list[Any]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = events_project(Path(tmp) / "p", {"snap": _model(strategy, hard_deletes)})
        expected = History(strategy, hard_deletes)
        last: Snapshot | None = None
        for item in [first, *steps]:
            if item == "rerun" or (item == "again" and last is None):
                if last is None:
                    continue
                versions = gold_versions(root)
                assert not any(r.changed for r in run_ok(root).values())
                assert gold_versions(root) == versions
                continue
            snap = last if item == "again" else item
            assert snap is not None
            push(_events(snap))
            record = run_ok(root)["snap"]
            assert record.changed
            current = {v.key for v in expected.versions if v.valid_to is None}
            closed = {v.key for v in expected.versions} - current
            late = expected.run(snap, naive(record.started_at))
            if late:
                event("out-of-order change")
            if closed & set(snap):
                event("a closed key came back")
            if current - set(snap):
                event("a current key went missing")
            assert _late(record.warnings) == late
            last = snap
            assert _actual(root, strategy) == expected.rows()


def test_a_key_back_after_a_hard_delete_does_not_overlap_its_closed_version(
    tmp_path: Path,
) -> None:
    root = events_project(tmp_path / "p", {"snap": _model("timestamp", "close")})
    kept: Event = (2, day(1), "a", 20, at(1))
    push([(1, day(1), "a", 10, at(1)), kept])
    run_ok(root)
    push([kept])  # 1 is deleted: closed at this run's start
    run_ok(root)
    push([(1, day(1), "a", 10, at(1)), kept])  # and comes back unchanged
    run_ok(root)
    data = DeltaTable(str(gold(root, "snap"))).to_pyarrow_table().to_pylist()
    assert len({r["surrogate_key"] for r in data}) == len(data)
    versions = sorted((r["valid_from"], r["valid_to"]) for r in data if r["event_id"] == 1)
    for (_, end), (begin, _) in itertools.pairwise(versions):
        assert end is not None and end <= begin


def test_valid_from_of_a_timestamptz_change_is_utc_on_any_machine(tmp_path: Path) -> None:
    contract = copy.deepcopy(EVENTS_CONTRACT)
    contract["schema"][0]["properties"][4]["physicalType"] = "timestamptz"
    root = events_project(
        tmp_path / "p",
        {"snap": _model("timestamp", "ignore")},
        source="files",
        contracts={"events": contract},
    )
    (root / "data" / "events.csv").write_text(
        "event_id,day,grp,amount,updated_at\n1,2024-01-01,a,1,2024-01-01T12:00:00+00:00\n"
    )
    done = weir_run(root, TZ="America/New_York")
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = DeltaTable(str(gold(root, "snap"))).to_pyarrow_table().to_pylist()
    assert row["updated_at"] == dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    assert row["valid_from"] == dt.datetime(2024, 1, 1, 12)
