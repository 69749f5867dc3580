"""``volume``: the number of checked rows (a pipeline's batch, a model's checked rows) is
within ``maxChangePercent`` of the mean this check observed in the node's last seven
successful runs. Without an earlier observation it passes. The observed value is the count.

A :class:`~weir.quality.kinds.base.ContextKind`: its history comes from the run records.
"""

from __future__ import annotations

from weir.quality.kinds.base import CheckContext, ContextKind
from weir.quality.result import CheckResult, CheckStatus
from weir.spec.contract import Quality

RUNS = 7
"""How many earlier runs the mean covers (the health view's volume window)."""


class Volume(ContextKind):
    name = "volume"
    target = "table"
    needs = ("maxChangePercent",)

    def evaluate(self, q: Quality, name: str, context: CheckContext) -> CheckResult:
        [(count,)] = context.rows(f"SELECT count(*) FROM {context.relation}")
        earlier = [
            float(c.observed)
            for run in context.history(RUNS)
            if run.status in ("success", "partial")
            for c in run.checks
            if c.name == name and c.observed is not None
        ]
        limit = float(q.maxChangePercent or 0)
        if not earlier:
            return CheckResult(name, self.name, q.severity, "pass", observed=str(count))
        mean = sum(earlier) / len(earlier)
        if mean:
            change = abs(count - mean) / mean * 100
            ok, how = change <= limit, f"{change:.0f}% change (at most {limit:g}%)"
        else:  # from nothing, any rows are an unbounded change
            ok, how = count == 0, "no rows before"
        status: CheckStatus = "pass" if ok else "fail"
        message = f"{count} rows against a mean of {mean:.1f} over {len(earlier)} earlier: {how}"
        return CheckResult(
            name, self.name, q.severity, status, observed=str(count), message=message
        )
