"""``not_null``: the column holds a value."""

from __future__ import annotations

from weir.quality.kinds.base import Kind
from weir.quality.rules import RowRule
from weir.spec.contract import Quality
from weir.sql import ident


def violation(column: str) -> str:
    return f"{ident(column)} IS NULL"


class NotNull(Kind):
    name = "not_null"
    on_digests = True

    def compile(self, q: Quality, name: str, columns: tuple[str, ...]) -> RowRule:
        [column] = columns
        return RowRule(name, q.severity, violation(column), columns, self.name, self.on_digests)
