"""The one runner: compiled checks evaluated by the engine, as :class:`CheckResult` values.

The SQL the rules compile to is DuckDB's dialect; the engine's session runs it (a
:class:`Query`: weir.engine.base.Session), and only the engine calls this module's scans.
Pipelines run :func:`scan` over ``flagged`` (the batch with its flag columns, built by the
silver transform in the same projection that shapes the rows); models run
:func:`scan_relation` over their result or table, which adds the flag columns first. Both
then run :func:`evaluate` for the kinds that need a context (run history, other tables),
which the node provides (weir.run.checks). A dbt step turns dbt's own results into the
same type (weir.run.dbt). Every caller records the results with ``RunRecord.add_check``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from weir.quality import kinds
from weir.quality.kinds.base import CheckContext, ContextKind
from weir.quality.result import CheckResult
from weir.quality.rules import CompiledChecks, RowRule

Sampler = Callable[[RowRule], list[dict[str, Any]]]
"""Failing rows of one row rule (the caller masks PII and bounds the number)."""


class Query(Protocol):
    """What the runner needs of the engine: run a query, return its rows."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def scan(
    query: Query,
    checks: CompiledChecks,
    relation: str,
    *,
    extra: Sequence[str] = (),
    batch: int | None = None,
    sample: Sampler | None = None,
) -> tuple[tuple[Any, ...], list[CheckResult]]:
    """Every rule's outcome over ``relation`` (which has the flag columns), in one aggregate.

    ``extra``: more aggregates computed in the same scan, returned first (a batch's totals).
    ``sample``: called for each row rule that some rows break."""
    items = [*extra, checks.failure_counts()]
    row = query.rows(f"SELECT {', '.join(items)} FROM {relation}")[0]
    head, counts = tuple(row[: len(extra)]), row[len(extra) :]
    results = checks.results(counts, batch=batch)
    if sample is not None:
        for i, rule in enumerate(checks.row):
            if results[i].failing_rows:
                results[i] = replace(results[i], samples=tuple(sample(rule)))
    return head, results


def scan_relation(
    query: Query, checks: CompiledChecks, relation: str, scope: str = "TRUE"
) -> list[CheckResult]:
    """Every rule's outcome over the rows of ``relation`` in ``scope`` (a condition), which
    has no flag columns: they are computed in the same query."""
    flagged = (
        f"(WITH derived AS (SELECT * FROM {relation} WHERE {scope}) "
        f"SELECT *, {checks.flag_columns()} FROM derived)"
    )
    return scan(query, checks, flagged)[1]


def evaluate(
    checks: CompiledChecks, context: CheckContext, *, batch: int | None = None
) -> list[CheckResult]:
    """The outcome of every rule whose kind needs a context (after :func:`scan`)."""
    results = []
    for rule in checks.context:
        kind = kinds.KINDS[rule.kind]
        assert isinstance(kind, ContextKind)
        results.append(replace(kind.evaluate(rule.entry, rule.name, context), batch=batch))
    return results
