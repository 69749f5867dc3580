"""``unique``: no two rows share the value of the column, or of ``columns`` together (rows
with a NULL in them are not compared)."""

from __future__ import annotations

from weir.quality.kinds.base import Kind
from weir.quality.rules import RowRule
from weir.spec.contract import Quality
from weir.sql import ident


class Unique(Kind):
    name = "unique"
    target = "columns"
    on_digests = True

    def compile(self, q: Quality, name: str, columns: tuple[str, ...]) -> RowRule:
        # a semi-join against the repeated values (cheaper than a window over every row);
        # ``derived``: the rows compared (transform/silver.py, quality/runner.py)
        keys = ", ".join(ident(c) for c in columns)
        value = keys if len(columns) == 1 else f"row({keys})"
        present = " AND ".join(f"{ident(c)} IS NOT NULL" for c in columns)
        violation = (
            f"{present} AND {value} IN (SELECT {value} FROM derived WHERE {present} "
            "GROUP BY ALL HAVING count(*) > 1)"
        )
        return RowRule(
            name, q.severity, violation, columns, self.name, self.on_digests, compares_rows=True
        )
