"""Property: an SCD2 history equals an independently computed history.

Random sequences of full snapshots of the source (keys appearing, changing, disappearing and
coming back, ``updated_at`` going backwards, NULLs), and lifecycles that delete keys, bring
them back and change them later, run through a ``snapshot`` model with each strategy and
hard-delete mode, and through a silver ``scd2`` pipeline dated by a column. The expected
history is computed here in plain Python from the semantics documented in docs/models.md,
docs/pipelines.md and ``weir.lake.scd2``:

- check (and silver without ``valid_from``): a change of the tracked columns opens a version
  valid from the run's start (``started_at`` of the run record) and closes the previous one
  at that time;
- timestamp: a newer ``updated_at`` opens a version valid from that time; a change not newer
  than the current version (out of order) opens nothing and is counted as late; the same
  ``updated_at`` with other values is no change;
- silver with ``valid_from: updated_at``: a change of any other column opens a version valid
  from ``updated_at`` if that is newer than the current version's start, else it is late;
- a key with no current version (new, or back after a hard delete) opens a version, valid
  from no earlier than its last version's close (versions of a key never overlap);
- hard_deletes close: a current key missing from the snapshot is closed at the batch's as-of
  time: the run's start on the run-time axis (check), the latest ``updated_at`` of the
  snapshot on the data axis; a version that does not start before that time stays current and
  is counted as a late delete; ignore: it stays current;
- a re-run with unchanged sources writes nothing; the same snapshot again changes no history.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from weirtest.modelkit import (
    EVENTS_CONTRACT,
    Event,
    at,
    day,
    events_pipeline,
    events_project,
    gold,
    naive,
    push,
    run_ok,
)
from weirtest.projects import weir_run

pytestmark = (
    pytest.mark.slow
)  # subprocesses, dbt or many generated cases: `make test-fast` skips it

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
    """The stored columns."""
    tracked: tuple[Any, ...]
    """The values whose change opens a version."""
    valid_from: dt.datetime
    valid_to: dt.datetime | None = None

    def row(self) -> tuple[Any, ...]:
        return (self.key, *self.values, self.valid_from, self.valid_to, self.valid_to is None)


@dataclass
class History:
    """SCD2 in plain Python: the versions a snapshot model (strategy ``check`` or
    ``timestamp``) or a silver scd2 table dated by ``updated_at`` (``silver``) should hold."""

    strategy: str
    hard_deletes: str
    versions: list[Version] = field(default_factory=list)

    def current(self, key: int) -> Version | None:
        return next((v for v in self.versions if v.key == key and v.valid_to is None), None)

    def version(
        self, key: int, row: tuple[str, int | None, int, int], started: dt.datetime
    ) -> Version:
        """The version a snapshot row would open."""
        grp, amount, d, hour = row
        updated_at = at(d, hour)
        if self.strategy == "check":
            return Version(key, (grp, amount), (grp, amount), started)
        if self.strategy == "timestamp":
            return Version(key, (amount, updated_at), (updated_at,), updated_at)
        return Version(key, (grp, amount, updated_at), (d, grp, amount), updated_at)

    def run(self, snap: Snapshot, started: dt.datetime) -> tuple[int, int]:
        """Apply one run's snapshot; returns (late rows, late deletes)."""
        late = 0
        for key, row in sorted(snap.items()):
            new = self.version(key, row, started)
            cur = self.current(key)
            if cur is None:  # new, or back after a hard delete: never before the last close
                closed = [v.valid_to for v in self.versions if v.key == key and v.valid_to]
                new.valid_from = max([new.valid_from, *closed])
                self.versions.append(new)
            elif new.tracked == cur.tracked:
                continue
            elif self.strategy != "check" and new.valid_from <= cur.valid_from:
                late += 1
            else:
                cur.valid_to = new.valid_from
                self.versions.append(new)
        return late, self._deletes(snap, started)

    def _deletes(self, snap: Snapshot, started: dt.datetime) -> int:
        if self.hard_deletes != "close":
            return 0
        as_of = (
            started if self.strategy == "check" else max(at(d, h) for _, _, d, h in snap.values())
        )
        late = 0
        for version in self.versions:
            if version.valid_to is None and version.key not in snap:
                if version.valid_from < as_of:
                    version.valid_to = as_of
                else:
                    late += 1
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
    values = {
        "check": ["grp", "amount"],
        "timestamp": ["amount", "updated_at"],
        "silver": ["grp", "amount", "updated_at"],
    }[strategy]
    return ["event_id", *values, "valid_from", "valid_to", "is_current"]


def _actual(table: Path, strategy: str) -> list[tuple[Any, ...]]:
    columns = _columns(strategy)
    data = DeltaTable(str(table)).to_pyarrow_table(columns=columns).to_pylist()
    return sorted((tuple(r[c] for c in columns) for r in data), key=_order)


def _events(snap: Snapshot) -> list[Event]:
    """The snapshot as source rows (amount may be NULL)."""
    return [(k, day(d), grp, amount, at(d, h)) for k, (grp, amount, d, h) in snap.items()]


def _count(warnings: list[str], pattern: str) -> int:
    """The number a warning opens with (after an optional ``batch N:``), 0 when none."""
    found = [re.search(r"(\d+) " + pattern, w) for w in warnings]
    return sum(int(m[1]) for m in found if m)


def _late(warnings: list[str]) -> tuple[int, int]:
    return _count(warnings, "rows carry a change older"), _count(warnings, "keys are missing")


@st.composite
def lifecycle(draw: st.DrawFn) -> list[Snapshot]:
    """Snapshots on a clock that only moves forward: some keys are deleted (while another
    key changes, so the snapshot is dated after them), come back (as they were, or changed),
    then change again later — the path on which changes were lost."""
    keys = sorted(draw(st.sets(st.integers(1, 4), min_size=2, max_size=4)))
    gone = draw(st.sets(st.sampled_from(keys), min_size=1, max_size=len(keys) - 1))
    kept = [k for k in keys if k not in gone]
    values = [(grp, amount) for grp in "ab" for amount in (None, 0, 1, 2)]
    state = {k: (*draw(st.sampled_from(values)), 1, 0) for k in keys}
    snaps: list[Snapshot] = [dict(state)]
    for step, action in enumerate(["delete", "return", "change", "change"], start=2):
        changing = {k for k in kept if draw(st.booleans())}
        if action == "delete":
            changing.add(kept[0])
        if action == "change" or (action == "return" and draw(st.booleans())):
            changing |= gone
        for key in sorted(changing):
            grp, amount = draw(st.sampled_from([v for v in values if v != state[key][:2]]))
            state[key] = (grp, amount, step, draw(st.integers(0, 1)))
        snaps.append({k: v for k, v in state.items() if action != "delete" or k not in gone})
    return snaps


def _current(table: Path, strategy: str) -> dict[int, tuple[Any, ...]]:
    """The current version's values per key."""
    return {r[0]: r[1:-3] for r in _actual(table, strategy) if r[-1]}


def _expected_current(snap: Snapshot, strategy: str) -> dict[int, tuple[Any, ...]]:
    model = History(strategy, "ignore")
    return {k: model.version(k, row, dt.datetime(2000, 1, 1)).values for k, row in snap.items()}


def _replay(
    root: Path, node: str, table: Path, strategy: str, hard_deletes: str, steps: list[Any]
) -> None:
    """Run every step (a snapshot, ``rerun`` or ``again``) and compare with the model."""
    expected = History(strategy, hard_deletes)
    last: Snapshot | None = None
    for item in steps:
        if item == "rerun" or (item == "again" and last is None):
            if last is None:
                continue
            versions = {p: DeltaTable(str(p)).version() for p in (root / "lake").glob("*/*")}
            assert not any(r.changed for r in run_ok(root).values())
            assert {
                p: DeltaTable(str(p)).version() for p in (root / "lake").glob("*/*")
            } == versions
            continue
        snap = last if item == "again" else item
        assert snap is not None
        push(_events(snap))
        record = run_ok(root)[node]
        assert record.changed
        current = {v.key for v in expected.versions if v.valid_to is None}
        closed = {v.key for v in expected.versions} - current
        late = expected.run(snap, naive(record.started_at))
        if late[0]:
            event("out-of-order change")
        if late[1]:
            event("a delete not after its version")
        if closed & set(snap):
            event("a closed key came back")
        if current - set(snap):
            event("a current key went missing")
        assert _late(record.warnings) == late
        last = snap
        assert _actual(table, strategy) == expected.rows()


SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.slow
@pytest.mark.parametrize("hard_deletes", ["close", "ignore"])
@pytest.mark.parametrize("strategy", ["check", "timestamp"])
@SETTINGS
@given(first=snapshot, steps=st.lists(step, min_size=1, max_size=6))
def test_snapshot_history_matches_an_independent_scd2(
    strategy: str, hard_deletes: str, first: Snapshot, steps: list[Any]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = events_project(Path(tmp) / "p", {"snap": _model(strategy, hard_deletes)})
        _replay(root, "snap", gold(root, "snap"), strategy, hard_deletes, [first, *steps])


@pytest.mark.slow
@pytest.mark.parametrize("hard_deletes", ["close", "ignore"])
@pytest.mark.parametrize("strategy", ["check", "timestamp"])
@settings(SETTINGS, max_examples=6)
@given(snaps=lifecycle(), tail=st.lists(st.sampled_from(["rerun", "again"]), max_size=2))
def test_a_key_deleted_then_back_keeps_every_later_change(
    strategy: str, hard_deletes: str, snaps: list[Snapshot], tail: list[Any]
) -> None:
    """The reproduction of issue 7 item 1 as a property: after deletes and returns on a
    forward clock, each key of the latest snapshot is current with the latest values."""
    with tempfile.TemporaryDirectory() as tmp:
        root = events_project(Path(tmp) / "p", {"snap": _model(strategy, hard_deletes)})
        steps = [*snaps, *tail]
        _replay(root, "snap", gold(root, "snap"), strategy, hard_deletes, steps)
        last = [s for s in steps if isinstance(s, dict)][-1]
        current = _current(gold(root, "snap"), strategy)
        assert {k: current.get(k) for k in last} == _expected_current(last, strategy)


def _silver_project(root: Path, hard_deletes: str) -> Path:
    scd2 = {"valid_from": "updated_at", "hard_deletes": hard_deletes}
    pipeline = events_pipeline(load={"strategy": "scd2", "scd2": scd2})
    return events_project(root, {}, pipelines={"events": pipeline})


@pytest.mark.slow
@pytest.mark.parametrize("hard_deletes", ["close", "ignore"])
@settings(SETTINGS, max_examples=8)
@given(
    snaps=st.one_of(lifecycle(), st.lists(snapshot, min_size=1, max_size=5)),
    tail=st.lists(step, max_size=2),
)
def test_silver_scd2_dated_by_a_column_matches_an_independent_scd2(
    hard_deletes: str, snaps: list[Snapshot], tail: list[Any]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = _silver_project(Path(tmp) / "p", hard_deletes)
        table = root / "lake" / "silver" / "events"
        _replay(root, "events", table, "silver", hard_deletes, [*snaps, *tail])


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
