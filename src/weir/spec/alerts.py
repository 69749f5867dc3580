"""The ``alerts:`` block of weir.yml: named channels, severities, rate limits (docs/alerts.md)."""

from __future__ import annotations

from weir.spec.base import Strict


class Alerts(Strict):
    """Where and how alerts go."""
