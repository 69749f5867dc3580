"""``freshness``: the newest value of a timestamp column is at most ``maxAgeHours`` old
(no value at all fails). The observed value is the age in hours."""

from __future__ import annotations

from weir.quality.kinds.base import Kind
from weir.quality.rules import TableRule
from weir.spec.contract import Quality
from weir.sql import ident


class Freshness(Kind):
    name = "freshness"
    needs = ("maxAgeHours",)

    def compile(self, q: Quality, name: str, columns: tuple[str, ...]) -> TableRule:
        col = ident(columns[0])
        age = (
            f"date_diff('second', CAST(max({col}) AS TIMESTAMP), CAST(now() AS TIMESTAMP)) / 3600.0"
        )
        failed = f"coalesce({age} > {q.maxAgeHours}, TRUE)"
        return TableRule(name, q.severity, failed, f"round({age}, 1)", self.name, columns)
