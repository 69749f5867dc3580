"""Contract quality entries → SQL. One module, one function per check kind."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from weir.spec import sqlexpr
from weir.spec.contract import Contract, Quality, Severity
from weir.sql import ident, literal


@dataclass(frozen=True)
class RowRule:
    """A per-row rule: ``violation`` is true for rows that break it."""

    name: str
    severity: Severity
    violation: str
    columns: tuple[str, ...]
    """The columns the rule reads."""
    kind: str = ""
    """The check kind (``not_null``, ``regex``, …; ``required`` for the implicit rules)."""


@dataclass(frozen=True)
class TableRule:
    """A rule over the whole batch: ``failed`` is a boolean aggregate over ``flagged``."""

    name: str
    severity: Severity
    failed: str
    observed: str


@dataclass(frozen=True)
class CompiledChecks:
    row: tuple[RowRule, ...]
    table: tuple[TableRule, ...]

    def flag_columns(self) -> str:
        """Select-list items adding ``_errors``, ``dq_flags`` and ``_infos`` lists."""
        return ", ".join(
            f"{self._flags(sev)} AS {name}"
            for sev, name in (("error", "_errors"), ("warn", "dq_flags"), ("info", "_infos"))
        )

    def _flags(self, severity: str) -> str:
        rules = [r for r in self.row if r.severity == severity]
        if not rules:
            return "CAST([] AS VARCHAR[])"
        items = ", ".join(f"CASE WHEN ({r.violation}) THEN {literal(r.name)} END" for r in rules)
        return f"list_filter([{items}], lambda x: x IS NOT NULL)"

    def failure_counts(self) -> str:
        """One aggregate row: failing-row count per row rule, then each table rule's verdict."""
        parts = []
        for r in self.row:
            column = {"error": "_errors", "warn": "dq_flags", "info": "_infos"}[r.severity]
            parts.append(f"count(*) FILTER (WHERE list_contains({column}, {literal(r.name)}))")
        for t in self.table:
            parts.append(f"CAST(({t.failed}) AS INTEGER)")
            parts.append(f"CAST(({t.observed}) AS VARCHAR)")
        return ", ".join(parts) or "NULL"

    def results(self, row: Sequence[Any]) -> list[CheckResult]:
        """The row :meth:`failure_counts` returned, as one result per rule, in rule order."""
        results = [
            CheckResult(r.name, r.severity, not row[i], int(row[i] or 0))
            for i, r in enumerate(self.row)
        ]
        offset = len(self.row)
        results += [
            CheckResult(
                t.name, t.severity, not row[offset + 2 * j], observed=row[offset + 2 * j + 1]
            )
            for j, t in enumerate(self.table)
        ]
        return results


@dataclass
class CheckResult:
    name: str
    severity: Severity
    passed: bool
    failing_rows: int = 0
    observed: str | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Broken at a severity that counts as a failure (info rules record, never fail)."""
        return not self.passed and self.severity != "info"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "severity": self.severity,
            "passed": self.passed,
            "failing_rows": self.failing_rows,
            "observed": self.observed,
            "samples": self.samples,
        }


def _not_null(col: str, q: Quality) -> str:
    return f"{ident(col)} IS NULL"


def _accepted_values(col: str, q: Quality) -> str:
    values = ", ".join(literal(v) for v in q.validValues or [])
    return f"{ident(col)} IS NOT NULL AND {ident(col)} NOT IN ({values})"


def _range(col: str, q: Quality) -> str:
    low, high = q.bounds
    parts = []
    if low is not None:
        parts.append(f"{ident(col)} < {literal(low)}")
    if high is not None:
        parts.append(f"{ident(col)} > {literal(high)}")
    return " OR ".join(parts)


def _regex(col: str, q: Quality) -> str:
    return f"{ident(col)} IS NOT NULL AND NOT regexp_full_match(CAST({ident(col)} AS VARCHAR), {literal(q.pattern)})"


def _unique(cols: Sequence[str]) -> str:
    """A semi-join against the repeated values (cheaper than a window over every row).

    Refers to ``derived``, the relation the flag projection reads (transform/silver.py)."""
    keys = ", ".join(ident(c) for c in cols)
    value = keys if len(cols) == 1 else f"row({keys})"
    present = " AND ".join(f"{ident(c)} IS NOT NULL" for c in cols)
    return (
        f"{present} AND {value} IN (SELECT {value} FROM derived WHERE {present} "
        "GROUP BY ALL HAVING count(*) > 1)"
    )


def _row_condition(q: Quality) -> str:
    """The condition as sqlglot re-generates it from the tree checked at load."""
    return f"NOT coalesce(({sqlexpr.scalar(q.condition or 'TRUE')}), TRUE)"


def referenced_columns(sql: str) -> tuple[str, ...]:
    """The column names a SQL expression reads, in order of appearance (none when it does
    not parse: the expression's own validation reports that)."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError:
        return ()
    return tuple(dict.fromkeys(c.name for c in tree.find_all(exp.Column)))


_COLUMN_RULES: dict[str, Callable[[str, Quality], str]] = {
    "not_null": _not_null,
    "accepted_values": _accepted_values,
    "range": _range,
    "regex": _regex,
    "unique": lambda col, q: _unique([col]),
    "row_condition": lambda col, q: _row_condition(q),
}


def _table_rule(q: Quality, name: str) -> TableRule | RowRule:
    if q.rule == "row_count":
        low, high = q.bounds
        conds = [
            f"count(*) < {literal(low)}" if low is not None else None,
            f"count(*) > {literal(high)}" if high is not None else None,
        ]
        failed = " OR ".join(c for c in conds if c)
        return TableRule(name, q.severity, failed, "count(*)")
    if q.rule == "freshness":
        col = ident(q.column or "")
        age = (
            f"date_diff('second', CAST(max({col}) AS TIMESTAMP), CAST(now() AS TIMESTAMP)) / 3600.0"
        )
        return TableRule(
            name, q.severity, f"coalesce({age} > {q.maxAgeHours}, TRUE)", f"round({age}, 1)"
        )
    if q.rule == "unique":
        return RowRule(name, q.severity, _unique(q.columns or []), tuple(q.columns or []), "unique")
    if q.rule == "row_condition":
        columns = referenced_columns(q.condition or "")
        return RowRule(name, q.severity, _row_condition(q), columns, "row_condition")
    col = q.column or ""
    return RowRule(name, q.severity, _COLUMN_RULES[q.rule](col, q), (col,), q.rule)


def compile_checks(
    contract: Contract, keys: Sequence[str], required: Sequence[str] = ()
) -> CompiledChecks:
    """All rules of ``contract`` (+ implicit ones) as SQL over silver column names.

    Implicit rules: natural-key columns must not be null (error), ``required`` columns of
    the contract must not be null (error), nor the silver columns the load needs, named in
    ``required`` (an scd2 ``valid_from``, which may be a derived column) — a row without its
    key cannot be merged, a version without its start would be broken, and a contract's
    ``required`` is a promise to consumers.
    """
    rules: list[RowRule | TableRule] = []
    add = rules.append
    names = {prop.name for prop in contract.columns}
    for prop in contract.columns:
        if prop.required or prop.name in keys or prop.name in required:
            violation = _not_null(prop.name, _NN)
            add(RowRule(f"{prop.name}.required", "error", violation, (prop.name,), "required"))
        for q in prop.quality:
            name = q.name or f"{prop.name}.{q.rule}"
            if q.rule in ("row_count", "freshness"):
                add(_table_rule(q.model_copy(update={"column": prop.name}), name))
            elif q.rule == "row_condition":
                add(_table_rule(q, name))
            else:
                violation = _COLUMN_RULES[q.rule](prop.name, q)
                add(RowRule(name, q.severity, violation, (prop.name,), q.rule))
    for name in dict.fromkeys(required):
        if name not in names:
            violation = _not_null(name, _NN)
            add(RowRule(f"{name}.required", "error", violation, (name,), "required"))
    for q in contract.table.quality:
        cols = q.columns or ([q.column] if q.column else [])
        add(
            _table_rule(
                q, q.name or f"{contract.id}.{q.rule}" + (f"({','.join(cols)})" if cols else "")
            )
        )
    return _compiled(rules)


def compile_rules(rules: Sequence[Quality], owner: str) -> CompiledChecks:
    """Free-standing rules (a model's ``checks``), each naming its ``column`` or ``columns``;
    default names are ``<owner>.<column>.<rule>``."""
    compiled: list[RowRule | TableRule] = []
    for q in rules:
        cols = q.columns or ([q.column] if q.column else [])
        compiled.append(_table_rule(q, q.name or ".".join([owner, *cols[:1], q.rule])))
    return _compiled(compiled)


def _compiled(rules: Sequence[RowRule | TableRule]) -> CompiledChecks:
    names: set[str] = set()
    for rule in rules:
        if rule.name in names:
            raise ValueError(f"two checks are named {rule.name!r}; give one a 'name'")
        names.add(rule.name)
    return CompiledChecks(
        tuple(r for r in rules if isinstance(r, RowRule)),
        tuple(r for r in rules if isinstance(r, TableRule)),
    )


_NN = Quality(rule="not_null")
