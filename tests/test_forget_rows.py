"""The subject's rows, found two ways — DataFusion SQL over the snapshot (what the DELETE
runs) and Arrow over loose parquet files (what file removal reads) — must be the same rows,
and the DELETE must remove exactly them, naming no value. Real Delta tables."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_forget import _forget
from weir.forget.rows import Matcher, find, predicate
from weir.lake import purge
from weir.lake.table import Table
from weirtest.projects import write_project

SCHEMA = pa.schema(
    [
        ("i", pa.int64()),
        ("s", pa.string()),
        ("d", pa.date32()),
        ("ts", pa.timestamp("us")),
        ("tz", pa.timestamp("us", tz="UTC")),
        ("dec", pa.decimal128(9, 2)),
        ("f", pa.float64()),
        ("b", pa.bool_()),
        ("tags", pa.list_(pa.string())),
    ]
)
_ROW = st.fixed_dictionaries(
    {
        "i": st.one_of(st.none(), st.integers(-3, 3)),
        "s": st.one_of(st.none(), st.sampled_from(["a", "b", "it's", "ünï", ""])),
        "d": st.sampled_from([dt.date(2024, 1, 1), dt.date(1999, 12, 31)]),
        "ts": st.sampled_from([dt.datetime(2024, 1, 1, 1, 2, 3, 456789), dt.datetime(2024, 1, 2)]),
        "tz": st.sampled_from(
            [dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)]
        ),
        "dec": st.sampled_from([Decimal("1.20"), Decimal("-3.00")]),
        "f": st.one_of(st.none(), st.sampled_from([0.1, 2.5, -1e300])),
        "b": st.one_of(st.none(), st.booleans()),
        "tags": st.sampled_from([["x"], [], None]),
    }
)
_COLUMNS = ["i", "s", "d", "ts", "tz", "dec", "f", "b"]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(_ROW, min_size=1, max_size=12),
    columns=st.lists(st.sampled_from(_COLUMNS), min_size=1, max_size=3, unique=True),
    picks=st.lists(st.integers(0, 11), min_size=1, max_size=3),
)
def test_sql_and_arrow_find_the_same_rows_and_the_delete_removes_them(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[dict[str, Any]],
    columns: list[str],
    picks: list[int],
) -> None:
    uri = str(tmp_path_factory.mktemp("t") / "t")
    data = pa.Table.from_pylist(rows, schema=SCHEMA)
    write_deltalake(uri, data)
    chosen = [tuple(rows[p % len(rows)][c] for c in columns) for p in picks]
    matcher = Matcher.of(columns, chosen, SCHEMA, "test")
    complete = [v for v in chosen if None not in v]
    expected = sum(1 for r in rows if tuple(r[c] for c in columns) in complete)
    if matcher is None:
        assert not complete
        return
    assert matcher.count(data) == expected
    table = DeltaTable(uri)
    found = find(table, [matcher], columns)
    assert found.rows == expected
    if not expected:
        return
    where = predicate(table, found)
    for value in itertools.chain.from_iterable(complete):
        if isinstance(value, str) and len(value) > 1:
            assert value not in where
    metrics = Table(uri, label="t").delete(where, {"weir.forget": "test"})
    assert metrics["num_deleted_rows"] == expected
    left = DeltaTable(uri).to_pyarrow_table()
    assert left.num_rows == len(rows) - expected
    assert matcher.count(left) == 0
    # the rewritten file holds the rows still, until it is removed
    _, other = purge.files(uri)
    held = purge.scan(uri, other, columns, lambda d: matcher.count(d) > 0, SCHEMA)
    assert len(held.holding) == 1 and not held.unreadable
    assert purge.remove(uri, held.holding) == 1
    assert DeltaTable(uri).to_pyarrow_table().num_rows == len(rows) - expected


def test_partition_values_come_from_the_path(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    data = pa.table({"k": ["a b/c", "x"], "v": [1, 2]})
    write_deltalake(uri, data, partition_by=["k"])
    write_deltalake(uri, data.slice(0, 1), partition_by=["k"], mode="overwrite")
    matcher = Matcher.of(["k"], [("a b/c",)], pa.schema(DeltaTable(uri).schema().to_arrow()), "k")
    assert matcher is not None
    _, other = purge.files(uri)
    schema = pa.schema(DeltaTable(uri).schema().to_arrow())
    held = purge.scan(uri, other, ["k"], lambda d: matcher.count(d) > 0, schema)
    assert len(other) == 2 and len(held.holding) == 1  # the old "x" file does not hold it


VISITS = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "visits",
    "version": "1",
    "schema": [
        {
            "name": "visits",
            "properties": [
                {"name": "site", "physicalType": "string", "primaryKey": True,
                 "primaryKeyPosition": 1},
                {"name": "day", "physicalType": "date", "primaryKey": True,
                 "primaryKeyPosition": 2},
                {"name": "visitor", "physicalType": "string", "classification": "pii"},
                {"name": "n", "physicalType": "int64"},
            ],
        }
    ],
}  # fmt: skip


def test_forget_by_a_composite_key_typed_by_the_contract(tmp_path: Path) -> None:
    from weirtest.projects import table_rows, weir_run

    pipeline = {
        "name": "visits",
        "owner": "data-eng",
        "contract": "visits",
        "extract": {"source": "files", "path": "data/*.csv"},
        "load": {"strategy": "merge"},
    }
    root = write_project(
        tmp_path / "p", contracts={"visits": VISITS}, pipelines={"visits": pipeline}
    )
    (root / "data").mkdir()
    (root / "data/1.csv").write_text(
        "site,day,visitor,n\nsite-oslo-42,2024-01-01,v1,1\n"
        "site-oslo-42,2024-01-02,v2,2\nsite-rome-17,2024-01-02,v3,3\n"
    )
    assert weir_run(root).returncode == 0
    code, output = _forget(root, "visits", "day=2024-01-02", "site=site-oslo-42", "--apply")
    assert code == 0, output
    left = [(r["site"], r["day"].isoformat()) for r in table_rows(root / "lake/silver/visits")]
    assert sorted(left) == [("site-oslo-42", "2024-01-01"), ("site-rome-17", "2024-01-02")]
    assert len(table_rows(root / "lake/bronze/visits")) == 2
    code, output = _forget(root, "visits", "day=yesterday-ish", "site=site-oslo-42")
    assert code == 2 and "not a valid date" in output and "yesterday-ish" not in output
    code, output = _forget(root, "visits", "site=site-oslo-42")
    assert code == 2 and "not the natural key of visits (site, day)" in output


def test_a_key_forget_without_the_salt_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = {**VISITS, "schema": [{**VISITS["schema"][0]}]}
    contract["schema"][0]["properties"] = [
        {k: v for k, v in c.items() if k != "classification"}
        for c in VISITS["schema"][0]["properties"]
    ]
    pipeline = {
        "name": "visits",
        "owner": "data-eng",
        "contract": "visits",
        "extract": {"source": "files", "path": "data/*.csv"},
    }
    root = write_project(
        tmp_path / "p", contracts={"visits": contract}, pipelines={"visits": pipeline}
    )
    monkeypatch.delenv("WEIR_PII_SALT")
    code, output = _forget(root, "visits", "site=site-oslo-42", "day=2024-01-01")
    assert code == 2 and "WEIR_PII_SALT is not set" in output and "hint: export" in output
