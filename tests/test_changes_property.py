"""Property: any stream of change events — out of order, re-delivered, with deletes,
truncates and events that break a rule — leaves silver equal to a plain-Python replay.

The reference applies the events one at a time (each batch in position order): an event at
or below its key's position is skipped; an upsert sets the row live; a delete removes it
(hard) or marks it (soft, ``deleted_at`` = the commit time of the delete that ended its
life); a truncate does that to every row below it. lake/changes.py computes the same with
set operations over a batch, so the two formulations check each other."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weir.lake import changes
from weir.run.pipeline import PipelineRun
from weir.spec import load_project
from weirtest.debezium import customers_project, delete, insert, truncate, update, write_events
from weirtest.projects import table_rows, version

Event = tuple[str, int, int, int]
"""(op, key, balance in cents, position)."""

op = st.sampled_from(["insert", "update", "update", "delete", "delete", "truncate"])
change = st.tuples(op, st.integers(1, 3), st.integers(-20, 900), st.integers(0, 59))
"""The last number places the event: batch ``n``'s positions are ``40 n`` + it, so they
mostly grow from batch to batch and sometimes reach back (out of order)."""
step = st.one_of(
    st.lists(change, min_size=1, max_size=7),
    st.integers(0, 9),  # re-deliver an earlier batch (index modulo the batches so far)
    st.just("rerun"),
)


def _commit(lsn: int) -> dt.datetime:
    return dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=lsn)


def _envelope(event: Event) -> dict[str, Any]:
    kind, key, cents, lsn = event
    balance = f"{cents / 100:.2f}"
    if kind == "truncate":
        return truncate(lsn)
    if kind == "delete":
        return delete(lsn, key)
    return (insert if kind == "insert" else update)(lsn, key, f"n{lsn}", balance)


def _replay(batches: list[list[Event]], soft: bool) -> dict[int, tuple[Any, ...]]:
    state: dict[int, dict[str, Any]] = {}
    for batch in batches:
        for kind, key, cents, lsn in sorted(batch, key=lambda e: e[3]):  # stable: arrival
            if kind == "truncate":
                for k in [k for k, row in state.items() if row["pos"] < lsn]:
                    _delete(state, k, lsn, soft)
                continue
            if key in state and lsn <= state[key]["pos"]:
                continue  # at or below the key's position: stale
            if kind == "delete":
                if key in state:
                    _delete(state, key, lsn, soft)
            elif cents >= 0:  # a negative balance breaks an error rule: quarantined
                state[key] = {"name": f"n{lsn}", "cents": cents, "pos": lsn, "at": None}
    return {
        k: (r["name"], r["cents"], r["at"] is not None, r["at"], r["pos"]) for k, r in state.items()
    }


def _delete(state: dict[int, dict[str, Any]], key: int, lsn: int, soft: bool) -> None:
    if not soft:
        del state[key]
        return
    row = state[key]
    row["pos"] = lsn
    if row["at"] is None:
        row["at"] = _commit(lsn)


def _silver(root: Path) -> dict[int, tuple[Any, ...]]:
    path = root / "lake" / "silver" / "customers"
    if not path.exists():
        return {}
    out = {}
    for r in table_rows(path):
        deleted = bool(r.get("is_deleted", False))
        cents = int(r["balance"] * 100)
        out[r["id"]] = (r["name"], cents, deleted, r.get("deleted_at"), r["_lsn"])
    return out


def _check(steps: list[Any], action: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = customers_project(Path(tmp) / "p", action=action)
        project = load_project(root)
        pipeline = project.pipeline("customers")
        delivered: list[list[Event]] = []
        used: set[int] = set()
        for item in steps:
            if item == "rerun":
                versions = [version(p) for p in (root / "lake").glob("*/customers")]
                record = PipelineRun(project, pipeline).execute()
                assert record.status == "success" and not record.changed
                assert [version(p) for p in (root / "lake").glob("*/customers")] == versions
                continue
            if isinstance(item, int):
                if not delivered:
                    continue
                batch = delivered[item % len(delivered)]  # the same events, once more
            else:
                placed = [(o, k, c, 40 * len(delivered) + at) for o, k, c, at in item]
                batch = [e for e in placed if e[3] not in used and not used.add(e[3])]
                if not batch:
                    continue
            write_events(root, f"{len(delivered):03}.jsonl", [_envelope(e) for e in batch])
            delivered.append(batch)
            record = PipelineRun(project, pipeline).execute()
            assert record.status in ("success", "partial"), record.error_message
            assert record.rows_extracted == record.rows_loaded + record.rows_quarantined
            assert _silver(root) == _replay(delivered, action == "soft")


@pytest.mark.slow
@pytest.mark.parametrize("action", ["soft", "hard"])
@pytest.mark.parametrize("share", [0.0, float("inf")], ids=["rewrite", "merge"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=6))
def test_any_stream_of_change_events_equals_a_replay(
    action: str, share: float, steps: list[Any]
) -> None:
    """Both ways a batch is written: a MERGE, and the rewrite of a batch that changes most
    of the table (``REWRITE_SHARE`` forced either way)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(changes, "REWRITE_SHARE", share)
        _check(steps, action)
