"""(c) weir's compiled quality scan against a hand-written fused DuckDB query.

Both sides read the same bronze-shaped Arrow table (registered as ``input``, as a run does)
and produce the same thing: the typed rows with the ``_errors`` / ``dq_flags`` / ``_infos``
lists materialised as a temp table, the batch totals, and the failing-row count of every row
rule. weir's side is exactly the SQL a run executes (``SilverSql.flagged()``, the totals query
of ``PipelineRun._silver`` and ``CompiledChecks.failure_counts()``). The hand-written side
evaluates each rule once into a boolean, builds the lists only for rows that break something,
keeps a bitmask of the broken rules and counts from it, in one aggregate, and checks unique
rules with its own semi-join on the duplicated keys (a variant uses a window instead). The
results are compared before timing.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import data
import duckdb
import projects
import pyarrow as pa
from report import Result, Say, seconds

from weir.engine.duckdb import connect
from weir.quality.rules import CompiledChecks, RowRule
from weir.run.stage import bronze_schema
from weir.spec import load_project
from weir.sql import ident, literal
from weir.transform.silver import SilverSql

TARGET = 1.1
TOTALS = (
    "SELECT count(*), count(*) FILTER (WHERE len(_errors) > 0), "
    "count(*) FILTER (WHERE len(_errors) = 0) FROM flagged"
)
LISTS = (("error", "_errors"), ("warn", "dq_flags"), ("info", "_infos"))


def run(scale: float, root: Path, say: Say, repeats: int = 7) -> Result:
    rows = max(1000, int(5_000_000 * scale))
    plan = _plan(root)
    say(f"(c) quality scan: {len(plan.checks.row)} row rules over {rows:,} rows, x{repeats}")
    con = connect(temp_dir=root / "quality" / "tmp", salt=projects.SALT)
    con.register("input", data.through_boundary(plan.boundary, _bronze(rows), projects.SALT))
    weir_sql = [f"CREATE OR REPLACE TEMP TABLE flagged AS {plan.flagged()}", TOTALS]
    weir_sql.append(f"SELECT {plan.checks.failure_counts()} FROM flagged")
    hand_sql = hand_written(plan)
    window_sql = hand_written(plan, semi_join=False)
    same = _compare(con, weir_sql, hand_sql) and _compare(con, weir_sql, window_sql)
    weir_times: list[float] = []
    hand_times: list[float] = []
    window_times: list[float] = []
    for _ in range(repeats):  # interleaved, so drift hits all sides alike
        weir_times.append(_time(con, weir_sql))
        hand_times.append(_time(con, hand_sql))
        window_times.append(_time(con, window_sql))
    copy_s = statistics.median(
        _time(
            con, [f"CREATE OR REPLACE TEMP TABLE flagged AS {_typed(plan)} SELECT * FROM derived"]
        )
        for _ in range(3)
    )
    samples_s, failing = _samples(con, weir_sql, plan)
    con.close()
    weir_s, hand_s = statistics.median(weir_times), statistics.median(hand_times)
    ratio = statistics.median(w / h for w, h in zip(weir_times, hand_times, strict=True))
    return Result(
        benchmark=f"(c) quality scan, {len(plan.checks.row)} rules x {rows / 1e6:g}M rows",
        weir=seconds(weir_s),
        baseline=seconds(hand_s) + " (hand-written fused)",
        figure=ratio,
        figure_text=f"{ratio:.2f}x",
        target=f"<= {TARGET}x",
        met=ratio <= TARGET,
        details=[
            f"rules: {_kinds(plan.checks)}",
            f"results identical (lists per row, counts per rule): {same}",
            f"weir runs (s): {_list(weir_times)}; hand-written runs (s): {_list(hand_times)}",
            "ratio = median of the per-pair ratios (runs interleaved); "
            f"best-of ratio {min(weir_times) / min(hand_times):.2f}x",
            "the same hand-written query with a window for the unique rule: "
            f"{statistics.median(window_times):.2f} s, weir / that = "
            f"{statistics.median(w / h for w, h in zip(weir_times, window_times, strict=True)):.2f}x",
            f"typed copy alone (same rows, no rules), median of 3: {copy_s:.2f} s",
            f"not in the ratio: a run then samples each failing rule, one more scan each: "
            f"{failing} rules, {samples_s:.2f} s",
        ],
    )


def _plan(root: Path) -> SilverSql:
    extract = {"source": "memory", "dataset": "unused"}
    spec = projects.pipeline("quality", extract, {"strategy": "merge"})
    project = load_project(projects.write(root / "quality", [spec]))
    return SilverSql.plan(project.pipeline("quality"), bronze_schema(data.SOURCE_SCHEMA))


def _bronze(rows: int) -> pa.Table:
    """Orders with the meta columns a staged batch carries."""
    return data.with_meta(data.initial(rows, seed=7))


def hand_written(plan: SilverSql, *, semi_join: bool = True) -> list[str]:
    """Rules evaluated once as booleans; lists built only for rows that break a rule; unique
    rules as a semi-join against the duplicated keys (a hash aggregate) instead of a window."""
    rules = plan.checks.row
    typed = _typed(plan)
    violations = []
    for i, rule in enumerate(rules):
        cols = ", ".join(ident(c) for c in rule.columns)
        present = " AND ".join(f"{ident(c)} IS NOT NULL" for c in rule.columns)
        if rule.kind == "unique" and semi_join:
            typed += (
                f", _dup{i} AS (SELECT {cols} FROM derived WHERE {present} "
                f"GROUP BY {cols} HAVING count(*) > 1)"
            )
            violations.append(f"({cols}) IN (SELECT ({cols}) FROM _dup{i})")
        elif rule.kind == "unique":
            # the row's own key has no NULL, so its partition holds only equal, non-null keys
            violations.append(f"{present} AND count(*) OVER (PARTITION BY {cols}) > 1")
        else:
            violations.append(rule.violation)
    flags = ", ".join(f"coalesce(({v}), FALSE) AS _v{i}" for i, v in enumerate(violations))
    lists = [
        _list_sql([(i, r) for i, r in enumerate(rules) if r.severity == s], n) for s, n in LISTS
    ]
    mask = " | ".join(f"(CAST(_v{i} AS BIGINT) << {i})" for i in range(len(rules))) or "0"
    drop = ", ".join(f"_v{i}" for i in range(len(rules)))
    create = (
        f"CREATE OR REPLACE TEMP TABLE flagged AS {typed}, checked AS (SELECT *, {flags} "
        f"FROM derived) SELECT * EXCLUDE ({drop}), {', '.join(lists)}, {mask} AS _mask FROM checked"
    )
    errors = " | ".join(str(1 << i) for i, r in enumerate(rules) if r.severity == "error") or "0"
    counts = ", ".join(f"count(*) FILTER (WHERE _mask & {1 << i} <> 0)" for i in range(len(rules)))
    table_rules = "".join(
        f", CAST(({t.failed}) AS INTEGER), CAST(({t.observed}) AS VARCHAR)"
        for t in plan.checks.table
    )
    aggregate = (
        f"SELECT count(*), count(*) FILTER (WHERE _mask & ({errors}) <> 0), "
        f"count(*) FILTER (WHERE _mask & ({errors}) = 0), {counts}{table_rules} FROM flagged"
    )
    return [create, aggregate]


def _typed(plan: SilverSql) -> str:
    """The ``WITH renamed …, derived …`` part of weir's SQL: the contract's typed columns."""
    typed, found, _ = plan.flagged().rpartition(" SELECT *, ")
    assert found and typed.endswith(" FROM renamed)"), "weir's flagged() SQL changed shape"
    return typed


def _list_sql(rules: list[tuple[int, RowRule]], name: str) -> str:
    if not rules:
        return f"CAST([] AS VARCHAR[]) AS {name}"
    any_broken = " OR ".join(f"_v{i}" for i, _ in rules)
    items = ", ".join(f"CASE WHEN _v{i} THEN {literal(r.name)} END" for i, r in rules)
    return (
        f"CASE WHEN {any_broken} THEN list_filter([{items}], lambda x: x IS NOT NULL) "
        f"ELSE CAST([] AS VARCHAR[]) END AS {ident(name)}"
    )


def _time(con: duckdb.DuckDBPyConnection, statements: list[str]) -> float:
    start = time.perf_counter()
    for sql in statements:
        con.execute(sql).fetchall()
    spent = time.perf_counter() - start
    con.execute("DROP TABLE IF EXISTS flagged")
    return spent


def _compare(con: duckdb.DuckDBPyConnection, weir_sql: list[str], hand_sql: list[str]) -> bool:
    """True when both sides give every row the same lists and every rule the same count."""
    con.execute(weir_sql[0])
    totals = con.execute(weir_sql[1]).fetchall()[0]
    counts = con.execute(weir_sql[2]).fetchall()[0]
    con.execute("ALTER TABLE flagged RENAME TO flagged_weir")
    con.execute(hand_sql[0])
    hand = con.execute(hand_sql[1]).fetchall()[0]
    differ = con.execute(
        "SELECT count(*) FROM flagged_weir w JOIN flagged h USING (_row) WHERE "
        "w._errors <> h._errors OR w.dq_flags <> h.dq_flags OR w._infos <> h._infos"
    ).fetchall()[0][0]
    con.execute("DROP TABLE flagged_weir")
    con.execute("DROP TABLE flagged")
    return differ == 0 and tuple(hand[:3]) == tuple(totals) and tuple(hand[3:]) == tuple(counts)


def _samples(
    con: duckdb.DuckDBPyConnection, weir_sql: list[str], plan: SilverSql
) -> tuple[float, int]:
    """What ``PipelineRun._checks`` adds for failing rules: one sample query per rule."""
    con.execute(weir_sql[0])
    counts = con.execute(weir_sql[2]).fetchall()[0]
    failing = [r for i, r in enumerate(plan.checks.row) if counts[i]]
    start = time.perf_counter()
    for rule in failing:
        column = dict(LISTS)[rule.severity]
        con.execute(plan.sample(column, rule.name, 5), [rule.name]).fetchall()
    spent = time.perf_counter() - start
    con.execute("DROP TABLE flagged")
    return spent, len(failing)


def _kinds(checks: CompiledChecks) -> str:
    kinds: dict[str, int] = {}
    for rule in checks.row:
        kinds[rule.kind] = kinds.get(rule.kind, 0) + 1
    parts = ", ".join(f"{k} x{v}" for k, v in kinds.items())
    return f"{parts}; + {len(checks.table)} table rule(s)"


def _list(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)
