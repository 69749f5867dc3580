"""The ``health:`` block of weir.yml: the health view's targets and thresholds (docs/health.md).

Every metric has a target and an alert threshold, in the metric's own unit, or for runtime
and freshness in percent of the node's SLA. Defaults are the seeds' "Pipeline Health
Dashboard"; a project overrides any of them::

    health:
      window_days: 14
      price_per_compute_hour: 0.25
      success_rate: {target: 98, alert: 90}
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from weir.spec.base import Strict


class Threshold(Strict):
    """A metric's target (met: ``ok``) and alert threshold (past it: ``alert``); between
    the two: ``warn``. A value exactly at the target meets it; one exactly at the alert
    threshold is not yet in alert."""

    target: float = Field(ge=0)
    alert: float = Field(ge=0)


DEFAULTS: dict[str, tuple[float, float]] = {
    "success_rate": (99, 95),
    "runtime": (100, 80),
    "freshness": (100, 100),
    "volume_variance": (20, 50),
    "quality_pass_rate": (100, 95),
    "failed_24h": (0, 0),
    "backfill_queue": (0, 5),
}
"""Each metric's (target, alert threshold): the seeds' "Pipeline Health Dashboard"."""


def _at(metric: str) -> Any:
    target, alert = DEFAULTS[metric]
    return Field(default_factory=lambda: Threshold(target=target, alert=alert))


class Cost(Strict):
    budget: float | None = Field(default=None, gt=0)
    """What the project's runs may cost per window, in ``currency`` (needs
    ``price_per_compute_hour``); None: cost has no status."""
    alert_percent: float = Field(default=110.0, gt=0)
    """Past this share of the budget the cost is in alert; between the budget and it, warn."""


class Health(Strict):
    """Overrides of the health metrics' defaults."""

    reference: ClassVar[str] = "docs/health.md"
    window_days: int = Field(default=7, ge=1, le=366)
    """The window of success rate, runtime, quality pass rate and cost."""
    volume_runs: int = Field(default=7, ge=1, le=1000)
    """How many loads before the last one its volume is compared with."""
    success_rate: Threshold = _at("success_rate")
    """Percent of finished runs that succeeded (higher is better)."""
    runtime: Threshold = _at("runtime")
    """Average run time in percent of the pipeline's ``sla_minutes`` (lower is better). The
    seeds alert at 80 % of the SLA, before the target (the SLA) is missed: with these
    defaults there is no warn band; ``{target: 80, alert: 100}`` makes one."""
    freshness: Threshold = _at("freshness")
    """Age of the last load with new rows in percent of the contract's freshness SLA."""
    volume_variance: Threshold = _at("volume_variance")
    """Percent the last load's rows differ from the average of the loads before it."""
    quality_pass_rate: Threshold = _at("quality_pass_rate")
    """Percent of quality checks that passed (higher is better)."""
    failed_24h: Threshold = _at("failed_24h")
    """Failed runs in the last 24 hours."""
    backfill_queue: Threshold = _at("backfill_queue")
    """Pending backfill requests (weir has no backfill queue yet: always n/a)."""
    price_per_compute_hour: float | None = Field(default=None, ge=0)
    """What an hour of run time costs, in ``currency``; None: cost in compute seconds only."""
    currency: str = Field(default="USD", min_length=1, max_length=8)
    cost: Cost = Field(default_factory=Cost)

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        """A block that gives only ``target`` or ``alert`` keeps the default of the other."""
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        for metric, (target, alert) in DEFAULTS.items():
            if isinstance(filled.get(metric), dict):
                filled[metric] = {"target": target, "alert": alert, **filled[metric]}
        return filled

    @model_validator(mode="after")
    def _budget_needs_price(self) -> Health:
        if self.cost.budget is not None and self.price_per_compute_hour is None:
            raise ValueError(
                "cost.budget needs price_per_compute_hour (the budget is money, runs are "
                "measured in compute time)"
            )
        return self
