"""``range``: the column's value lies within the bounds (inclusive; NULL passes)."""

from __future__ import annotations

from weir.quality.kinds.base import Kind, bounds_problem
from weir.quality.rules import RowRule
from weir.spec.contract import Quality
from weir.sql import ident, literal


class Range(Kind):
    name = "range"

    def problem(self, q: Quality, column: str | None) -> str | None:
        return bounds_problem(q) or super().problem(q, column)

    def compile(self, q: Quality, name: str, columns: tuple[str, ...]) -> RowRule:
        col = ident(columns[0])
        low, high = q.bounds
        parts = []
        if low is not None:
            parts.append(f"{col} < {literal(low)}")
        if high is not None:
            parts.append(f"{col} > {literal(high)}")
        return RowRule(name, q.severity, " OR ".join(parts), columns, self.name)
