"""``regex``: the whole value (as text) matches ``pattern`` (NULL passes)."""

from __future__ import annotations

from weir.quality.kinds.base import Kind
from weir.quality.rules import RowRule
from weir.spec.contract import Quality
from weir.sql import ident, literal


class Regex(Kind):
    name = "regex"
    needs = ("pattern",)

    def compile(self, q: Quality, name: str, columns: tuple[str, ...]) -> RowRule:
        col = ident(columns[0])
        violation = (
            f"{col} IS NOT NULL AND NOT regexp_full_match(CAST({col} AS VARCHAR), "
            f"{literal(q.pattern)})"
        )
        return RowRule(name, q.severity, violation, columns, self.name)
