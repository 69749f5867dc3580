"""``row_condition``: a scalar SQL expression over the row is true (NULL counts as pass,
like SQL CHECK). The expression was checked when the project loaded (spec/sqlexpr.py)."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from weir.quality.kinds.base import Kind
from weir.quality.rules import RowRule
from weir.spec import sqlexpr
from weir.spec.contract import Quality


def referenced_columns(sql: str) -> tuple[str, ...]:
    """The column names a SQL expression reads, in order of appearance (none when it does
    not parse: the expression's own validation reports that)."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError:
        return ()
    return tuple(dict.fromkeys(c.name for c in tree.find_all(exp.Column)))


class RowCondition(Kind):
    name = "row_condition"
    target = "table"
    needs = ("condition",)

    def columns(self, q: Quality, column: str | None) -> tuple[str, ...]:
        return referenced_columns(q.condition or "")

    def compile(self, q: Quality, name: str, columns: tuple[str, ...]) -> RowRule:
        # the condition as sqlglot re-generates it from the tree checked at load
        violation = f"NOT coalesce(({sqlexpr.scalar(q.condition or 'TRUE')}), TRUE)"
        return RowRule(name, q.severity, violation, columns, self.name)
