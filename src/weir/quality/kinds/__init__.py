"""The registry of check kinds: ``rule`` name → its :class:`~weir.quality.kinds.base.Kind`.

Adding a kind: a module here with one ``Kind`` subclass, and its line below.
"""

from __future__ import annotations

from weir.errors import ConfigError
from weir.hints import did_you_mean
from weir.quality.kinds import (
    accepted_values,
    freshness,
    not_null,
    range,
    regex,
    row_condition,
    row_count,
    unique,
    volume,
)
from weir.quality.kinds.base import Kind

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        not_null.NotNull(),
        unique.Unique(),
        accepted_values.AcceptedValues(),
        range.Range(),
        regex.Regex(),
        row_condition.RowCondition(),
        row_count.RowCount(),
        freshness.Freshness(),
        volume.Volume(),
    )
}


def get(rule: str, *, where: str | None = None) -> Kind:
    """The kind named ``rule``; a ConfigError with a suggestion for a name that is none."""
    if rule not in KINDS:
        raise ConfigError(unknown(rule), where=where, hint="see docs/contracts.md#check-kinds")
    return KINDS[rule]


def unknown(rule: str) -> str:
    return f"unknown rule {rule!r}; {did_you_mean(rule, KINDS)}"
