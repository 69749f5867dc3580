"""``row_count``: the number of checked rows lies within the bounds (inclusive)."""

from __future__ import annotations

from weir.quality.kinds.base import Kind, bounds_problem
from weir.quality.rules import TableRule
from weir.spec.contract import Quality
from weir.sql import literal


class RowCount(Kind):
    name = "row_count"
    target = "table"

    def problem(self, q: Quality, column: str | None) -> str | None:
        return bounds_problem(q)

    def compile(self, q: Quality, name: str, columns: tuple[str, ...]) -> TableRule:
        low, high = q.bounds
        conds = [
            f"count(*) < {literal(low)}" if low is not None else None,
            f"count(*) > {literal(high)}" if high is not None else None,
        ]
        failed = " OR ".join(c for c in conds if c)
        return TableRule(name, q.severity, failed, "count(*)", self.name)
