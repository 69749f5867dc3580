"""The engine seam: what a node run asks of the engine that computes its rows.

``run/`` holds no SQL of its own and no connection: it asks an :class:`Engine` (chosen by
``weir.yml``'s ``engine``, :func:`engine_for`) for one :class:`Session` per node run and
hands it plans, tables and commits. The session owns its connections, the temporary
relations it builds and their clean-up (``close``). Three kinds of work come back as
handles whose relation the session drops when their ``with`` block ends:

- a pipeline's batch, **flagged** by the silver transform (:meth:`Session.flag` →
  :class:`Flagged`): checked, quarantined, loaded by a strategy with one commit;
- a model's **result** (:meth:`Session.compute` → :class:`Result`): counted, checked,
  materialized or merged into a snapshot with one commit;
- a table's **checked rows** (:meth:`Session.checking` → :class:`Checked`).

What the engine is given is engine-neutral (a :class:`~weir.transform.silver.SilverSql`
plan, :class:`~weir.quality.rules.CompiledChecks`, a :class:`~weir.lake.table.Table` and a
:class:`~weir.lake.table.Commit`, a :class:`~weir.lake.strategies.LoadSpec`); the SQL those
builders produce is DuckDB's dialect, and the model SQL a user writes is too. An engine
that speaks another dialect transpiles it (sqlglot) or builds its own. Errors in SQL the
engine runs come out as :class:`~weir.errors.TransformError` with the engine's message.
DuckDB is the first engine (``engine/duckdb_engine.py``); docs/architecture.md says what
a second one provides.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

import pyarrow as pa

from weir.errors import WeirError
from weir.registry import ENGINES

if TYPE_CHECKING:
    from weir.lake.materialize import Bound
    from weir.lake.reconcile import Reconcile, ReconcileCommit
    from weir.lake.strategies import LoadSpec
    from weir.lake.table import Commit, Table
    from weir.quality.result import CheckResult
    from weir.quality.rules import CompiledChecks
    from weir.spec import Project
    from weir.spec.model import Materialized
    from weir.spec.pipeline import Scd2
    from weir.transform.boundary import Boundary
    from weir.transform.silver import SilverSql

Scope: TypeAlias = "Bound | Literal['all', 'current']"
"""Which rows of a table checks answer for: all, the current versions (a snapshot), or a
window's (rows from a :class:`~weir.lake.materialize.Bound` on)."""

Counting = Callable[[pa.RecordBatchReader], pa.RecordBatchReader]
"""Wraps the stream a write consumes (the run reports progress from it)."""


@dataclass(frozen=True)
class Since:
    """Rows of ``column`` (of Arrow ``type``) from ``bound`` on: the part of a table an
    overlapping re-read can repeat."""

    column: str
    type: pa.DataType
    bound: str


class Flagged(Protocol):
    """One batch after the silver transform: renamed, typed, derived, each row's flags."""

    relation: str
    """The flagged rows as a relation in the session (what context checks read)."""

    def scan(self, *, batch: int, samples: int) -> tuple[int, int, list[CheckResult]]:
        """(rows, rows failing error-level rules, every compiled rule's outcome) in one
        aggregate; up to ``samples`` failing rows per rule that some rows break."""

    def unparsed(self, samples: int) -> tuple[int, list[dict[str, Any]]]:
        """Rows the source could not parse, and up to ``samples`` of them (key, reasons)."""

    def quarantine(self) -> pa.Table:
        """The rows failing error-level rules, shaped for the quarantine table."""

    def distinct_keys(self) -> int:
        """How many distinct natural keys the valid rows hold."""

    def load(
        self, table: Table, commit: Commit, spec: LoadSpec, *, dedupe: bool, counting: Counting
    ) -> tuple[int, dict[str, Any]]:
        """Write the valid rows (the latest per key when ``dedupe``) into ``table`` with
        ``spec``'s strategy, in one commit; (rows streamed, the write's metrics)."""


class Result(Protocol):
    """A model's result (or its window's part), computed once, before anything is written."""

    rows: int

    def columns(self) -> list[str]: ...

    def key_problems(self, keys: Sequence[str]) -> tuple[int, list[dict[str, Any]]]:
        """(rows with a NULL in ``keys``, up to three keys that repeat, with their count)."""

    def nulls(self, column: str) -> int: ...

    def high(self, column: str) -> Any:
        """The maximum of ``column``."""

    def fits(self, checks: CompiledChecks) -> None:
        """TransformError unless the compiled checks can run over the result (tried over
        none of its rows: a check that cannot run fails a run before anything is written)."""

    def write(
        self,
        table: Table,
        commit: Commit,
        *,
        materialized: Materialized,
        partition_by: list[str],
        keys: list[str],
        bound: Bound | None,
    ) -> dict[str, Any]:
        """Materialize into ``table`` in one commit: an overwrite without ``bound``, else the
        window merged on ``keys`` (incremental) or its partitions swapped."""

    def snapshot(
        self,
        table: Table,
        commit: Commit,
        *,
        keys: list[str],
        settings: Scd2,
        partition_by: list[str],
        evolve: bool,
        replace: bool,
    ) -> dict[str, Any]:
        """Version the result into the SCD2 table ``table``: one MERGE (lake/scd2.py)."""


class Checked(Protocol):
    """The rows of a table that its checks answer for."""

    relation: str
    """Those rows as a relation in the session (what context checks read)."""

    def columns(self) -> list[str]: ...

    def scan(self, checks: CompiledChecks) -> list[CheckResult]:
        """Every compiled rule's outcome over the rows (TransformError when they do not
        fit the table)."""


class Session(Protocol):
    """One node run's work in the engine."""

    name: str
    """The engine's name in messages (``DuckDB``)."""

    def settings(self) -> dict[str, str]:
        """The engine's name and the settings that change results (definition fingerprints)."""

    def at(self, timestamp: str) -> None:
        """The time run-time versions and commits of the next work carry (ISO text)."""

    def share_memory(self, share: float) -> None:
        """Use ``share`` of the project's memory setting from now on (1.0: all of it), while
        something else in the process needs memory too (a delta-rs write the engine streams to).
        Best effort: an engine that cannot shrink to it yet keeps what it has."""

    def close(self) -> None: ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query that a builder (check kinds, weir.quality.runner) made; every row."""

    def snapshot(self, table: Table) -> str:
        """A relation over ``table``'s current snapshot."""

    def read(self, table: Table) -> pa.Table:
        """``table``'s current snapshot, every row, through the engine's reader."""

    def columns(self, sql: str) -> dict[str, str]:
        """The columns of a query's result and their types as the engine spells them
        (for messages and hints in its dialect), without running it."""

    time_types: frozenset[str]
    """The spellings (from :meth:`columns`) of date and timestamp types."""

    # ---------------------------------------------------------------- pipelines
    def boundary(self, boundary: Boundary, rows: pa.Table) -> pa.Table:
        """``rows`` through the PII boundary (digests, rules on raw values), in row order."""

    def unseen(
        self, rows: pa.RecordBatchReader, bronze: Table, columns: Sequence[str], since: Since | None
    ) -> AbstractContextManager[pa.RecordBatchReader]:
        """The ``rows`` that ``bronze`` does not hold yet (compared on ``columns``; only its
        rows ``since`` a bound when given), streamed: a full re-read of a large table must not
        be held in memory."""

    def flag(self, plan: SilverSql, rows: pa.RecordBatchReader) -> AbstractContextManager[Flagged]:
        """The silver transform of one batch (TransformError naming the pipeline's file)."""

    def reconcile(
        self,
        table: Table,
        source_keys: pa.RecordBatchReader,
        commit: ReconcileCommit,
        settings: Reconcile,
    ) -> dict[str, Any]:
        """Delete reconciliation (lake/reconcile.py): ``table``'s live keys missing from
        ``source_keys`` (streamed, never held whole) are soft-deleted or removed in one
        commit, at most ``settings.max_delete_ratio`` of them (else QualityError, nothing
        written); returns the counts (``weir.lake.reconcile.METRICS``)."""

    # ---------------------------------------------------------------- models
    def expose(self, sources: Mapping[str, Table]) -> None:
        """Each ``<layer>.<name>`` table readable by that name, at its current version."""

    def preview(self, sql: str, limit: int) -> pa.Table: ...

    def compute(self, sql: str, bound: Bound | None) -> AbstractContextManager[Result]:
        """The result of ``sql`` (its rows from ``bound`` on, when given)."""

    def window_start(self, high: str, column_type: str, lookback: str) -> Any:
        """``high`` minus ``lookback`` (an interval such as ``3 days``) in ``column_type``."""

    def checking(self, table: Table, scope: Scope) -> AbstractContextManager[Checked]:
        """The rows of ``table`` in ``scope`` (``all``, ``current`` or a window's ``Bound``)."""


class Engine(ABC):
    """An engine of a project (``weir.yml``'s ``engine``): it opens one session per node run."""

    name: str

    def __init__(self, project: Project):
        self.project = project

    @abstractmethod
    def session(self, *, started_at: str) -> Session:
        """A session for one node run that started at ``started_at`` (ISO text)."""

    @abstractmethod
    def fingerprint(self, table: Table) -> tuple[int, str] | None:
        """(row count, order-independent hash of every row) of a table (``weir verify``)."""

    def translate(self, exc: Exception) -> WeirError | None:
        """An error of the engine's own that is the user's to act on (out of memory, out of
        disk), as a WeirError saying what to do; None for anything else (a bug)."""
        return None


def engine_for(project: Project) -> Engine:
    """The engine ``weir.yml`` names (the registry's ``ENGINES``)."""
    name = project.spec.engine
    return ENGINES.get(name, where=str(project.root / "weir.yml"))(project)
