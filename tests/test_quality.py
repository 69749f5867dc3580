"""Every check kind, each severity, on real DuckDB: failing-row counts against hand counts."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from weir.cli import main
from weir.engine.base import engine_for
from weir.errors import ConfigError, LakeError
from weir.observe.record import RunRecord
from weir.quality import kinds
from weir.quality.outputs import model_outputs
from weir.quality.result import CheckResult
from weir.quality.validate import check_project
from weir.run.checks import NodeContext
from weir.run.pipeline import PipelineRun
from weir.sources import memory
from weir.spec import load_project
from weir.state.sqlite import StateStore
from weirtest.modelkit import EVENTS_CONTRACT, at, day, events_project, push, run, run_ok
from weirtest.projects import orders_pipeline, table_rows

CONTRACT: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "events",
    "version": "1.0.0",
    "schema": [
        {
            "name": "events",
            "properties": [
                {
                    "name": "event_id",
                    "physicalName": "id",
                    "physicalType": "int64",
                    "primaryKey": True,
                },
                {
                    "name": "kind",
                    "physicalType": "string",
                    "quality": [
                        {
                            "rule": "accepted_values",
                            "validValues": ["click", "view"],
                            "severity": "warn",
                        },
                        {"rule": "not_null", "severity": "info"},
                    ],
                },
                {
                    "name": "code",
                    "physicalType": "string",
                    "quality": [
                        {"rule": "regex", "pattern": "[A-Z]{2}-[0-9]+", "severity": "warn"},
                        {"rule": "unique", "severity": "warn"},
                    ],
                },
                {
                    "name": "score",
                    "physicalType": "int32",
                    "quality": [
                        {"rule": "range", "mustBeBetween": [0, 100], "severity": "error"},
                    ],
                },
                {"name": "user", "physicalType": "string"},
                {
                    "name": "at",
                    "physicalType": "timestamp",
                    "quality": [
                        {"rule": "freshness", "maxAgeHours": 1, "severity": "warn"},
                    ],
                },
            ],
            "quality": [
                {
                    "rule": "unique",
                    "columns": ["user", "kind"],
                    "severity": "warn",
                    "name": "one_kind_per_user",
                },
                {
                    "rule": "row_condition",
                    "condition": "score >= 10 OR kind = 'view'",
                    "severity": "warn",
                    "name": "clicks_score",
                },
                {"rule": "row_count", "mustBeBetween": [1, 5], "severity": "warn"},
            ],
        }
    ],
}


def _batch() -> pa.Table:
    rows = [
        # id, kind,   code,    score, user, at
        (1, "click", "AB-1", 50, "u1", dt.datetime(2020, 1, 1)),
        (2, "view", "AB-2", 5, "u1", dt.datetime(2020, 1, 1)),
        (3, "buy", "ab-3", 20, "u2", dt.datetime(2020, 1, 1)),  # kind not accepted, bad code
        (4, "click", "AB-4", 5, "u3", dt.datetime(2020, 1, 1)),  # clicks_score
        (5, None, "AB-4", 70, "u2", dt.datetime(2020, 1, 1)),  # kind null (info), code dup
        (6, "click", "AB-6", 101, "u1", dt.datetime(2020, 1, 1)),  # score out of range: error
        (7, "click", "AB-7", 30, "u1", dt.datetime(2020, 1, 1)),  # user/kind dup with 1
    ]
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "id": pa.array(cols[0], pa.int64()),
            "kind": cols[1],
            "code": cols[2],
            "score": pa.array(cols[3], pa.int32()),
            "user": cols[4],
            "at": cols[5],
        }
    )


def test_every_check_kind(project_dir: Callable[..., Path]) -> None:
    pipe = orders_pipeline(
        name="events",
        contract="events",
        transform={},
        extract={"source": "memory", "dataset": "events"},
    )
    root = project_dir(contracts={"events": CONTRACT}, pipelines={"events": pipe})
    memory.register("events", _batch().to_batches())
    project = load_project(root)
    record = PipelineRun(project, project.pipeline("events")).execute()
    assert record.status == "partial", record.error_message
    outcome = {c.name: (c.passed, c.failing_rows) for c in record.checks}
    assert outcome == {
        "event_id.required": (True, 0),
        "kind.accepted_values": (False, 1),
        "kind.not_null": (False, 1),
        "code.regex": (False, 1),
        "code.unique": (False, 2),
        "score.range": (False, 1),
        "at.freshness": (False, 0),
        "one_kind_per_user": (False, 3),  # u1 click ×3 (ids 1, 6, 7)
        "clicks_score": (False, 1),
        "events.row_count": (False, 0),  # 7 rows > 5
        "parse": (True, 0),  # every value could be parsed
    }
    assert record.quality_checks_failed == 8  # the info rule records, never fails
    assert record.rows_quarantined == 1 and record.rows_loaded == 6
    # in the contract's order, though the unique rules are judged after the others
    flags = {r["event_id"]: r["dq_flags"] for r in table_rows(root / "lake/silver/events")}
    assert flags == {
        1: ["one_kind_per_user"],
        2: [],
        3: ["kind.accepted_values", "code.regex"],
        4: ["code.unique", "clicks_score"],
        5: ["code.unique"],
        7: ["one_kind_per_user"],
    }
    [quarantined] = table_rows(root / "lake/quarantine/events")
    assert quarantined["event_id"] == 6 and quarantined["_reasons"] == ["score.range"]
    assert quarantined["dq_flags"] == ["one_kind_per_user"]
    freshness = next(c for c in record.checks if c.name == "at.freshness")
    assert float(freshness.observed or 0) > 24 * 365  # hours since 2020
    samples = next(c for c in record.checks if c.name == "code.unique").samples
    assert [s["event_id"] for s in samples] == ["4", "5"] and samples[0]["code"] == "AB-4"


def test_unique_errors_follow_parse_reasons_and_touch_only_repeated_rows(
    project_dir: Callable[..., Path],
) -> None:
    # unique is judged after the other rules, on the finished rows (rules.compared): the
    # reasons still read parse first, then the rules in the contract's order
    contract = {
        **CONTRACT,
        "id": "codes",
        "schema": [
            {
                "name": "codes",
                "properties": [
                    {"name": "id", "physicalType": "int64", "primaryKey": True},
                    {
                        "name": "code",
                        "physicalType": "string",
                        "quality": [
                            {"rule": "unique", "severity": "error"},
                            {"rule": "regex", "pattern": "[A-Z]+", "severity": "error"},
                        ],
                    },
                    {
                        "name": "amount",
                        "physicalType": "float64",
                        "quality": [
                            {"rule": "range", "mustBeBetween": [0, 9], "severity": "error"}
                        ],
                    },
                ],
            }
        ],
    }
    pipe = orders_pipeline(
        name="codes",
        contract="codes",
        transform={},
        extract={"source": "files", "path": "data/*.csv", "format": "csv"},
        quality_gates={"max_quarantine_ratio": 1.0},
    )
    root = project_dir(contracts={"codes": contract}, pipelines={"codes": pipe})
    (root / "data").mkdir()
    (root / "data/codes.csv").write_text(
        "id,code,amount\n1,AB,1\n2,x1,oops\n3,x1,12\n4,CD,2\n5,EF,3\n"
    )
    assert main(["run", "--project", str(root), "codes"]) == 0
    held = {r["id"]: r["_reasons"] for r in table_rows(root / "lake/quarantine/codes")}
    assert held == {
        2: ["parse: column amount, value 'oops' (line 3)", "code.unique", "code.regex"],
        3: ["code.unique", "code.regex", "amount.range"],
    }
    assert sorted(r["id"] for r in table_rows(root / "lake/silver/codes")) == [1, 4, 5]


@pytest.mark.parametrize("unique_on", ["code", "id"])
def test_a_passing_unique_rule_off_the_key_does_not_stop_the_latest_row_per_key(
    project_dir: Callable[..., Path], unique_on: str
) -> None:
    # a passing unique over key columns spares counting the distinct keys; over other
    # columns (code: passes though ids repeat) it must not, nor when it fails (id)
    columns = [
        {"name": "id", "physicalType": "int64", "primaryKey": True},
        {"name": "code", "physicalType": "string"},
        {"name": "n", "physicalType": "int64"},
    ]
    for column in columns:
        if column["name"] == unique_on:
            column["quality"] = [{"rule": "unique", "severity": "warn"}]
    contract = {**CONTRACT, "id": "codes", "schema": [{"name": "codes", "properties": columns}]}
    pipe = orders_pipeline(
        name="codes",
        contract="codes",
        transform={"dedupe_order_by": "n"},
        extract={"source": "files", "path": "data/*.csv", "format": "csv"},
    )
    root = project_dir(contracts={"codes": contract}, pipelines={"codes": pipe})
    (root / "data").mkdir()
    (root / "data/codes.csv").write_text("id,code,n\n1,a,1\n2,b,1\n1,c,2\n")
    project = load_project(root)
    record = PipelineRun(project, project.pipeline("codes")).execute()
    assert record.status == "success", record.error_message
    [check] = [c for c in record.checks if c.kind == "unique"]
    assert check.passed == (unique_on == "code")
    assert record.rows_superseded == 1 and record.rows_loaded == 3
    rows = {r["id"]: r["code"] for r in table_rows(root / "lake/silver/codes")}
    assert rows == {1: "c", 2: "b"}


def ev(event_id: int, d: int, grp: str, amount: int) -> tuple[Any, ...]:
    return (event_id, day(d), grp, amount, at(d))


# ---------------------------------------------------------------- kinds: the registry, config
def test_the_docs_list_every_registered_kind() -> None:
    table = (Path(__file__).parents[1] / "docs/contracts.md").read_text()
    section = table.split("## Check kinds", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    assert documented == set(kinds.KINDS)


def _contract_with(quality: list[dict[str, Any]], column: list[dict[str, Any]]) -> dict[str, Any]:
    schema = {**CONTRACT["schema"][0], "quality": quality}
    props = [dict(p) for p in schema["properties"]]
    props[4] = {**props[4], "quality": column}  # the column "user"
    return {**CONTRACT, "schema": [{**schema, "properties": props}]}


def test_validate_names_every_check_problem_with_file_and_line(
    project_dir: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    contract = _contract_with(
        [{"rule": "not_null", "severity": "warn"}, {"rule": "row_count"}],
        [{"rule": "regex"}, {"rule": "acepted_values", "validValues": ["a"]}],
    )
    pipe = orders_pipeline(name="events", contract="events", transform={})
    root = project_dir(contracts={"events": contract}, pipelines={"events": pipe})
    assert main(["validate", "--project", str(root)]) == 2
    err = capsys.readouterr().err
    lines = (root / "contracts/events.yml").read_text().splitlines()

    def line_of(text: str, after: int = 0) -> int:
        return next(i for i, t in enumerate(lines, 1) if i > after and text in t)

    user = line_of("name: user")
    assert f"events.yml:{line_of('rule: regex', user)}: " in err
    assert "schema.0.properties.4.quality.0: rule 'regex' needs 'pattern'" in err
    assert f"events.yml:{line_of('acepted_values', user)}: " in err
    assert "unknown rule 'acepted_values'; did you mean 'accepted_values'?" in err
    assert "schema.0.quality.0: rule 'not_null' needs 'column'" in err  # a table-level one
    assert "schema.0.quality.1: rule 'row_count' needs mustBeBetween" in err
    assert "Traceback" not in err


def test_a_model_check_on_a_column_the_model_lacks_fails_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = """
    /* weir
    checks:
      - {rule: not_null, column: day}
      - {rule: range, column: totl, mustBeGreaterThanOrEqualTo: 0}
    */
    SELECT day, grp, sum(amount) AS total FROM silver.events GROUP BY ALL
    """
    root = events_project(tmp_path / "p", {"daily": model})
    assert main(["validate", "--project", str(root)]) == 2
    err = capsys.readouterr().err
    text = (root / "models/daily.sql").read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if "totl" in t)
    assert f"models/daily.sql:{line}: checks.1: the range check reads column 'totl', " in err
    assert "which model 'daily' does not produce" in err and "did you mean 'total'?" in err
    push([ev(1, 1, "a", 1)])
    with pytest.raises(ConfigError, match="totl"):  # the run API validates before it runs
        run(root)
    assert not (root / "lake").exists()  # before any I/O


OUTPUT_MODELS = {
    "base": "SELECT day, grp, sum(amount) AS total FROM silver.events GROUP BY ALL",
    "starred": "SELECT * FROM silver.events",  # silver: weir's and drifted columns too
    "excluded": "SELECT * EXCLUDE (amount) FROM silver.events",
    "from_gold": "SELECT b.*, 1 AS one FROM gold.base AS b",
    "renamed": "SELECT * RENAME (total AS amount) FROM base",
    "ctes": "WITH t AS (SELECT grp AS g FROM silver.events) SELECT * FROM t UNION ALL SELECT 'x'",
    "joined": "SELECT * FROM base JOIN gold.ctes ON base.grp = ctes.g",
    "unnamed": "SELECT day, count(*) FROM silver.events GROUP BY ALL",
    "aliased": "SELECT * FROM (SELECT day, grp FROM base) AS t(d, g)",
    "snap": "/* weir\nmaterialized: snapshot\nunique_key: [grp]\n*/\nSELECT grp, total FROM base",
}


def test_model_outputs_are_derived_or_left_unknown(tmp_path: Path) -> None:
    project = load_project(events_project(tmp_path / "p", OUTPUT_MODELS))
    outputs = model_outputs(project)
    lacks = {
        name: {c for c in ("day", "total", "amount", "g", "one", "nope") if out.lacks(c)}
        for name, out in outputs.items()
    }
    assert lacks == {
        "base": {"amount", "g", "one", "nope"},
        "starred": set(),  # a silver table may hold columns the contract does not list
        "excluded": {"amount"},
        "from_gold": {"amount", "g", "nope"},
        "renamed": {"total", "g", "one", "nope"},
        "ctes": {"day", "total", "amount", "one", "nope"},
        "joined": {"amount", "one", "nope"},
        "unnamed": set(),  # count(*) gets a name DuckDB makes up
        "aliased": set(),  # renamed by position
        "snap": {"day", "amount", "g", "one", "nope"},
    }
    assert not outputs["snap"].lacks("valid_from")  # a snapshot's versioning columns


def test_a_check_on_what_weir_cannot_see_is_left_to_the_run(tmp_path: Path) -> None:
    model = (
        "/* weir\nchecks: [{rule: not_null, column: _ingested_at}]\n*/\nSELECT * FROM silver.events"
    )
    root = events_project(tmp_path / "p", {"all_events": model})
    check_project(load_project(root))  # no error: silver columns are not all known
    push([ev(1, 1, "a", 1)])
    [check] = run_ok(root)["all_events"].checks
    assert (check.name, check.kind, check.status) == (
        "all_events._ingested_at.not_null",
        "not_null",
        "pass",
    )


# ---------------------------------------------------------------- results, old and new
OLD_PIPELINE_CHECK = {
    "batch": 1,
    "name": "code.unique",
    "severity": "warn",
    "passed": False,
    "failing_rows": 2,
    "observed": None,
    "samples": [{"event_id": "4", "code": "AB-4"}],
}
OLD_MODEL_CHECK = {
    "name": "daily.total.range",
    "severity": "error",
    "passed": True,
    "failing_rows": 0,
    "observed": None,
    "samples": [],
}
OLD_FRESHNESS = {
    "name": "freshness silver.orders",
    "kind": "dbt source freshness",
    "unique_id": "source.shop.silver.orders",
    "status": "warn",
    "severity": "warn",
    "passed": False,
    "observed": "silver.orders last loaded 30.0 h ago (warn)",
    "max_loaded_at": "2024-01-01T00:00:00+00:00",
}


def test_records_in_the_old_shapes_load_into_typed_results(tmp_path: Path) -> None:
    old = RunRecord(pipeline_name="events", run_id="r1").as_dict()
    old["checks"] = [OLD_PIPELINE_CHECK, OLD_MODEL_CHECK, OLD_FRESHNESS]
    old["no_longer_a_field"] = 1
    (tmp_path / "runs.jsonl").write_text(json.dumps(old) + "\n")
    store = StateStore(tmp_path / "state.db")  # the state store keeps checks in `detail`
    with closing(sqlite3.connect(tmp_path / "state.db")) as con, con:
        con.execute(
            "INSERT INTO runs (pipeline_name, run_id, started_at, status, detail) "
            "VALUES ('events', 'r1', '2024-01-01', 'partial', ?)",
            [json.dumps({"checks": old["checks"]})],
        )
    from_line = RunRecord.from_dict(json.loads((tmp_path / "runs.jsonl").read_text()))
    [from_row] = [RunRecord.from_dict(r) for r in store.runs("events")]
    for record in (from_line, from_row):
        unique, ranged, fresh = record.checks
        assert unique == CheckResult(
            "code.unique",
            "",
            "warn",
            "fail",
            2,
            samples=({"event_id": "4", "code": "AB-4"},),
            batch=1,
        )
        assert (ranged.status, ranged.batch, ranged.failed) == ("pass", None, False)
        assert (fresh.kind, fresh.severity, fresh.status) == ("dbt_freshness", "warn", "fail")
        assert fresh.unique_id == "source.shop.silver.orders" and fresh.failed


def test_a_run_record_round_trips_through_runs_jsonl(project_dir: Callable[..., Path]) -> None:
    pipe = orders_pipeline(
        name="events",
        contract="events",
        transform={},
        extract={"source": "memory", "dataset": "events"},
    )
    root = project_dir(contracts={"events": CONTRACT}, pipelines={"events": pipe})
    memory.register("events", _batch().to_batches())
    project = load_project(root)
    record = PipelineRun(project, project.pipeline("events")).execute()
    [line] = (root / ".weir/runs.jsonl").read_text().splitlines()
    assert RunRecord.from_dict(json.loads(line)).checks == record.checks
    unique = next(c for c in record.checks if c.name == "one_kind_per_user")
    assert (unique.kind, unique.columns, unique.batch) == ("unique", ("user", "kind"), 1)
    assert json.loads(line)["checks"][0]["passed"] is True  # the key stays for readers


def test_derived_outputs_are_the_columns_a_run_writes(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", OUTPUT_MODELS)
    outputs = model_outputs(load_project(root))
    push([ev(1, 1, "a", 1), ev(2, 1, "b", 2)])
    run_ok(root)
    for name, out in outputs.items():
        written = set(table_rows(root / "lake/gold" / name)[0])
        if out.complete:
            assert out.names == written, name
        assert not out.absent & written, name
        assert out.names <= written, name


# ---------------------------------------------------------------- kinds with a context
def _with_volume(severity: str) -> dict[str, Any]:
    schema = {**EVENTS_CONTRACT["schema"][0]}
    schema["quality"] = [{"rule": "volume", "maxChangePercent": 50, "severity": severity}]
    return {**EVENTS_CONTRACT, "schema": [schema]}


def test_volume_compares_a_batch_with_the_earlier_runs(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {}, contracts={"events": _with_volume("warn")})
    outcomes = []
    for size in (4, 5, 12, 4):  # each batch is the whole source (truncate-reload)
        push([ev(i, 1, "a", i) for i in range(size)])
        [check] = [c for c in run_ok(root)["events"].checks if c.kind == "volume"]
        outcomes.append((check.status, check.observed, check.batch))
    assert outcomes == [
        ("pass", "4", 1),  # nothing to compare with
        ("pass", "5", 2),  # mean 4: +25%
        ("fail", "12", 3),  # mean 4.5: +167%
        ("pass", "4", 4),  # mean 7: -43%
    ]
    [line] = [json.loads(x) for x in (root / ".weir/runs.jsonl").read_text().splitlines()][2:3]
    [stored] = [c for c in line["checks"] if c["kind"] == "volume"]
    assert (
        stored["message"]
        == "12 rows against a mean of 4.5 over 2 earlier: 167% change (at most 50%)"
    )


def test_an_error_level_volume_check_fails_a_model(tmp_path: Path) -> None:
    model = """
    /* weir
    checks: [{rule: volume, maxChangePercent: 10, name: groups.volume}]
    */
    SELECT grp, count(*) AS n FROM silver.events GROUP BY grp
    """
    root = events_project(tmp_path / "p", {"groups": model})
    push([ev(1, 1, "a", 1), ev(2, 1, "b", 1)])
    run_ok(root)
    push([ev(1, 1, "a", 1), ev(2, 1, "b", 1), ev(3, 1, "c", 1)])
    record = run(root)["groups"]
    assert record.status == "failed" and "groups.volume" in (record.error_message or "")
    [check] = record.checks
    assert (check.kind, check.status, check.observed) == ("volume", "fail", "3")


def test_the_context_reads_another_tables_snapshot(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", {})
    push([ev(1, 1, "a", 1), ev(2, 2, "b", 1)])
    run_ok(root)
    project = load_project(root)
    with closing(engine_for(project).session(started_at="2024-01-01T00:00:00")) as session:
        context = NodeContext(project, "events", session, "unused")
        [(rows,)] = context.rows(f"SELECT count(*) FROM {context.snapshot('silver.events')}")
        assert rows == 2
        with pytest.raises(LakeError, match=r"reads gold\.nothing, which does not exist"):
            context.snapshot("gold.nothing")
        [past] = context.history(7)
        assert past.status == "success" and past.checks[0].name == "event_id.required"


def test_two_checks_of_one_name_are_an_error(tmp_path: Path) -> None:
    model = """
    /* weir
    checks:
      - {rule: not_null, column: grp}
      - {rule: not_null, column: grp, severity: warn}
    */
    SELECT grp FROM silver.events
    """
    project = load_project(events_project(tmp_path / "p", {"groups": model}))
    with pytest.raises(ConfigError) as info:
        check_project(project)
    lines = (project.root / "models/groups.sql").read_text().splitlines()
    second = next(i for i, t in enumerate(lines, 1) if "severity: warn" in t)
    assert "two checks are named 'groups.grp.not_null'" in str(info.value)
    assert f"models/groups.sql:{second}:" in str(info.value)
    assert "give one a 'name'" in str(info.value)
