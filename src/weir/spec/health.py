"""The ``health:`` block of weir.yml: the health view's targets and thresholds (docs/health.md)."""

from __future__ import annotations

from weir.spec.base import Strict


class Health(Strict):
    """Overrides of the health metrics' defaults."""
