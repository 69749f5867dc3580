"""Compiled rules and the SQL that evaluates all of a table's rules in one scan.

Row rules are boolean *violation* expressions evaluated in the projection that shapes the
rows (``flag_columns``); table rules aggregate over the flagged rows (``failure_counts``).
Severities: ``error`` quarantines the row (or fails a model), ``warn`` flags it
(``dq_valid = false`` and the rule's name in ``dq_flags``), ``info`` only counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from weir.quality.result import CheckResult, Severity
from weir.spec.contract import Quality
from weir.sql import literal

FLAG_COLUMNS: dict[str, str] = {"error": "_errors", "warn": "dq_flags", "info": "_infos"}
"""The list column that collects the names of the rules a row breaks, per severity."""


@dataclass(frozen=True)
class RowRule:
    """A per-row rule: ``violation`` is true for rows that break it."""

    name: str
    severity: Severity
    violation: str
    columns: tuple[str, ...]
    """The columns the rule reads."""
    kind: str
    """The check kind (``not_null``, ``regex``, …; ``required`` for the implicit rules)."""
    on_digests: bool = False
    """The verdict is the same on salted digests of the columns as on their values (null,
    repeated): the rule need not see a PII column's raw value (transform/boundary.py)."""
    compares_rows: bool = False
    """The violation compares the row with the others (``unique``): it reads them as the
    relation ``derived``. Such rules can be judged after the rows are all made
    (:meth:`CompiledChecks.compared`) instead of in the projection that makes them."""

    @property
    def flag_column(self) -> str:
        return FLAG_COLUMNS[self.severity]


@dataclass(frozen=True)
class TableRule:
    """A rule over the whole relation: ``failed`` is a boolean aggregate over it, ``observed``
    the measured value shown with the result."""

    name: str
    severity: Severity
    failed: str
    observed: str
    kind: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContextRule:
    """A rule of a kind that needs more than the checked rows (kinds/base.py ContextKind):
    evaluated after the scan, with a context, by :func:`weir.quality.runner.evaluate`."""

    name: str
    severity: Severity
    kind: str
    entry: Quality


Rule = RowRule | TableRule | ContextRule


@dataclass(frozen=True)
class CompiledChecks:
    row: tuple[RowRule, ...]
    table: tuple[TableRule, ...]
    context: tuple[ContextRule, ...] = ()

    def flag_columns(self, *, comparing: bool = True) -> str:
        """Select-list items adding ``_errors``, ``dq_flags`` and ``_infos`` lists; without
        the rules that compare rows unless ``comparing`` (:meth:`compared` adds them)."""
        return ", ".join(
            f"{self._flags(sev, comparing)} AS {name}" for sev, name in FLAG_COLUMNS.items()
        )

    def _flags(self, severity: str, comparing: bool) -> str:
        rules = [
            r for r in self.row if r.severity == severity and (comparing or not r.compares_rows)
        ]
        if not rules:
            return "CAST([] AS VARCHAR[])"
        items = ", ".join(f"CASE WHEN ({r.violation}) THEN {literal(r.name)} END" for r in rules)
        return f"list_filter([{items}], lambda x: x IS NOT NULL)"

    def compared(self, table: str, rows: str, scope: str = "TRUE") -> list[str]:
        """UPDATEs adding the verdicts of the rules that compare rows to ``table``, made with
        ``flag_columns(comparing=False)``: one per rule, touching only the rows that break
        it (usually none), so the comparison is one semi-join over a finished table — far
        cheaper than over the projection that makes it, which DuckDB would first have to
        materialise (bench (g)). ``rows``: what the rules compare (their ``derived``);
        ``scope``: the rows of ``table`` they judge.

        A list is rebuilt in rule order, entries that are no rule's (a source's parse
        reasons) first, so it reads as if the projection had made it."""
        statements = []
        for rule in (r for r in self.row if r.compares_rows):
            column = rule.flag_column
            rules = [r for r in self.row if r.severity == rule.severity]
            names = ", ".join(literal(r.name) for r in rules)
            items = ", ".join(
                f"{literal(r.name)}"
                if r is rule
                else f"CASE WHEN list_contains({column}, {literal(r.name)}) THEN {literal(r.name)} END"
                for r in rules
            )
            rebuilt = (
                f"list_concat(list_filter({column}, lambda e: e NOT IN ({names})), "
                f"list_filter([{items}], lambda x: x IS NOT NULL))"
            )
            statements.append(
                f"WITH derived AS ({rows}) UPDATE {table} SET {column} = {rebuilt} "
                f"WHERE ({scope}) AND ({rule.violation})"
            )
        return statements

    def failure_counts(self) -> str:
        """One aggregate row: failing-row count per row rule, then each table rule's verdict
        and observed value (over a relation that has the :meth:`flag_columns`)."""
        parts = [
            f"count(*) FILTER (WHERE list_contains({r.flag_column}, {literal(r.name)}))"
            for r in self.row
        ]
        for t in self.table:
            parts.append(f"CAST(({t.failed}) AS INTEGER)")
            parts.append(f"CAST(({t.observed}) AS VARCHAR)")
        return ", ".join(parts) or "count(*)"  # no rules: still one row (read as none)

    def results(self, row: Sequence[Any], *, batch: int | None = None) -> list[CheckResult]:
        """The row :meth:`failure_counts` returned, as one result per rule, in rule order."""
        results = [
            CheckResult(
                r.name,
                r.kind,
                r.severity,
                "fail" if row[i] else "pass",
                int(row[i] or 0),
                columns=r.columns,
                batch=batch,
            )
            for i, r in enumerate(self.row)
        ]
        offset = len(self.row)
        for j, t in enumerate(self.table):
            failed, observed = row[offset + 2 * j], row[offset + 2 * j + 1]
            results.append(
                CheckResult(
                    t.name,
                    t.kind,
                    t.severity,
                    "fail" if failed else "pass",
                    observed=observed,
                    columns=t.columns,
                    batch=batch,
                )
            )
        return results
