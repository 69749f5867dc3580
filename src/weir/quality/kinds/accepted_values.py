"""``accepted_values``: the column's value is one of ``validValues`` (NULL passes)."""

from __future__ import annotations

from weir.quality.kinds.base import Kind
from weir.quality.rules import RowRule
from weir.spec.contract import Quality
from weir.sql import ident, literal


class AcceptedValues(Kind):
    name = "accepted_values"
    needs = ("validValues",)

    def compile(self, q: Quality, name: str, columns: tuple[str, ...]) -> RowRule:
        col = ident(columns[0])
        values = ", ".join(literal(v) for v in q.validValues or [])
        return RowRule(
            name, q.severity, f"{col} IS NOT NULL AND {col} NOT IN ({values})", columns, self.name
        )
