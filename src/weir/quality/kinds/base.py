"""What a check kind is: the settings its entries need, the columns it reads, its SQL.

A kind is one module in this package with one subclass of :class:`Kind`, registered in
``kinds/__init__.py``. Entries are the ``quality`` items of a contract (on a column or on
the schema object) and the ``checks`` of a model, all parsed as
:class:`weir.spec.contract.Quality`; the kind decides what in them it needs
(:meth:`Kind.problem`, run by ``weir validate`` and before every run) and compiles them
(:meth:`Kind.compile`).

Kinds that need more than the checked rows — another table (relationships,
reconciliation) or earlier runs (volume against recent runs) — subclass
:class:`ContextKind`: instead of SQL fused into the scan, they get a :class:`CheckContext`
after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Protocol

from weir.quality.result import CheckResult
from weir.quality.rules import RowRule, TableRule
from weir.spec.contract import Quality

Target = Literal["column", "columns", "table"]
"""What an entry checks: one column, one column or several together, or the whole table."""


class Kind:
    name: ClassVar[str]
    target: ClassVar[Target] = "column"
    needs: ClassVar[tuple[str, ...]] = ()
    """Settings an entry of this kind must give."""
    on_digests: ClassVar[bool] = False
    """True when the verdict on salted digests equals the verdict on values (so a PII
    column's rule can run in silver, on digests)."""

    def problem(self, q: Quality, column: str | None) -> str | None:
        """What is wrong with entry ``q`` (None: nothing). ``column``: the contract column
        the entry is declared on (None for table-level entries and model checks)."""
        for param in self.needs:
            if getattr(q, param) is None:
                return f"rule {q.rule!r} needs {param!r}"
        if self.target == "column" and not (column or q.column):
            return f"rule {q.rule!r} needs 'column'"
        if self.target == "columns" and not (column or q.column or q.columns):
            return f"rule {q.rule!r} needs 'column' or 'columns'"
        return None

    def columns(self, q: Quality, column: str | None) -> tuple[str, ...]:
        """The columns entry ``q`` reads (``column``: as for :meth:`problem`)."""
        if self.target == "table":
            return ()
        if self.target == "columns" and q.columns and not column:
            return tuple(q.columns)
        return (column or q.column or "",)

    def compile(self, q: Quality, name: str, columns: tuple[str, ...]) -> RowRule | TableRule:
        """The SQL of entry ``q`` as rule ``name`` over ``columns`` (from :meth:`columns`)."""
        raise NotImplementedError


def bounds_problem(q: Quality) -> str | None:
    if (
        q.mustBeBetween is None
        and q.mustBeGreaterThanOrEqualTo is None
        and q.mustBeLessThanOrEqualTo is None
    ):
        return (
            f"rule {q.rule!r} needs mustBeBetween, mustBeGreaterThanOrEqualTo "
            "or mustBeLessThanOrEqualTo"
        )
    return None


# ---------------------------------------------------------------- the hook for context kinds
class PastRun(Protocol):
    """An earlier run of the same node, as its run record holds it."""

    @property
    def status(self) -> str: ...
    @property
    def started_at(self) -> str: ...
    @property
    def rows_loaded(self) -> int: ...
    @property
    def checks(self) -> Sequence[CheckResult]: ...


class CheckContext(Protocol):
    """What a :class:`ContextKind` gets, after the node's own rows are checked."""

    relation: str
    """The checked rows (a relation that :meth:`rows` can read)."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query (DuckDB's dialect) in the node's engine session; every row."""

    def snapshot(self, table: str) -> str:
        """A relation that :meth:`rows` can read over the current snapshot of another table
        (``silver.<table>`` or ``gold.<model>``)."""

    def history(self, limit: int) -> Sequence[PastRun]:
        """The node's last ``limit`` finished runs, newest first."""


class ContextKind(Kind):
    """A kind evaluated on its own, with a :class:`CheckContext`, after the fused scan."""

    def compile(self, q: Quality, name: str, columns: tuple[str, ...]) -> RowRule | TableRule:
        raise TypeError(f"rule {q.rule!r} is evaluated with a context, not compiled")

    def evaluate(self, q: Quality, name: str, context: CheckContext) -> CheckResult:
        raise NotImplementedError
