"""The outcome of one check, as every runner reports it and every run record holds it.

Pipelines (silver), models (gold) and dbt steps (tests, source freshness) all produce
:class:`CheckResult`. ``as_dict`` is the shape written to ``.weir/runs.jsonl`` and the state
store; :meth:`CheckResult.from_dict` reads it back, and reads the two shapes earlier weirs
wrote (pipeline and model checks without ``status``/``kind``, and dbt freshness results).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

Severity = Literal["error", "warn", "info"]
CheckStatus = Literal["pass", "fail", "error"]
"""``pass``; ``fail``: the data broke the rule; ``error``: the check could not be evaluated
(a dbt test or freshness query that errored)."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str
    """The check kind (``not_null``, …), ``required`` (implicit key and contract rules),
    ``parse`` (rows the source could not parse), ``dbt_test`` or ``dbt_freshness``; empty
    for records written before weir recorded it."""
    severity: Severity
    status: CheckStatus
    failing_rows: int = 0
    observed: str | None = None
    """A table rule's measured value (row count, age in hours) or a dbt freshness summary."""
    samples: tuple[dict[str, Any], ...] = ()
    """Failing rows (key and rule columns, PII masked), up to the pipeline's sample size."""
    columns: tuple[str, ...] = ()
    """The columns the check reads."""
    batch: int | None = None
    """The pipeline batch the result is about (None for models and dbt)."""
    unique_id: str | None = None
    """The dbt node (tests and source freshness)."""
    message: str | None = None
    """What the check says about its outcome (dbt's message for a dbt test that did not
    pass, the comparison of a ``volume`` check)."""

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def failed(self) -> bool:
        """Broken at a severity that counts as a failure (info rules record, never fail)."""
        return not self.passed and self.severity != "info"

    def with_text(self, scrub: Callable[[Any], Any]) -> CheckResult:
        """This result with ``scrub`` applied to every text it holds (secret removal)."""
        return replace(
            self,
            name=scrub(self.name),
            observed=scrub(self.observed),
            message=scrub(self.message),
            samples=tuple(scrub(s) for s in self.samples),
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "severity": self.severity,
            "status": self.status,
            "passed": self.passed,
            "failing_rows": self.failing_rows,
            "observed": self.observed,
            "samples": [dict(s) for s in self.samples],
            "columns": list(self.columns),
        }
        for key in ("batch", "unique_id", "message"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """A result as :meth:`as_dict` wrote it, or in an earlier weir's shape."""
        if data.get("kind") == "dbt source freshness":  # weir ≤ 0.x: dbt's own status
            return _old_freshness(data)
        status: CheckStatus = "pass" if data.get("passed") else "fail"
        if data.get("status") in ("pass", "fail", "error"):
            status = data["status"]
        severity = data.get("severity")
        samples = data.get("samples") or ()
        return cls(
            name=str(data.get("name", "")),
            kind=str(data.get("kind") or ""),
            severity=severity if severity in ("error", "warn", "info") else "error",
            status=status,
            failing_rows=int(data.get("failing_rows") or 0),
            observed=None if data.get("observed") is None else str(data["observed"]),
            samples=tuple(dict(s) for s in samples if isinstance(s, Mapping)),
            columns=tuple(str(c) for c in data.get("columns") or ()),
            batch=None if data.get("batch") is None else int(data["batch"]),
            unique_id=data.get("unique_id"),
            message=data.get("message"),
        )


def _old_freshness(data: Mapping[str, Any]) -> CheckResult:
    dbt_status = str(data.get("status", ""))
    status: CheckStatus = "pass" if data.get("passed") else "fail"
    if dbt_status == "runtime error":
        status = "error"
    severity = data.get("severity")
    return CheckResult(
        name=str(data.get("name", "")),
        kind="dbt_freshness",
        severity=severity if severity in ("error", "warn", "info") else "error",
        status=status,
        observed=data.get("observed"),
        unique_id=data.get("unique_id"),
    )
