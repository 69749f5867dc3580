"""The DuckDB engine: weir's first implementation of the seam in weir/engine/base.py.

One :class:`DuckDBSession` per node run owns two connections (weir/engine/duckdb.py:
locked down, spilling to .weir/tmp), opened when first used: one that may reorder rows
(fast) and one that keeps row order (the PII boundary lines results up with their rows).
The temporary relations it builds — ``flagged`` (a pipeline's batch after the silver
transform), ``__model_result`` (a model's result), ``__gold`` (a table's checked rows) —
live for the ``with`` block of their handle. The SQL comes from the builders of
``transform/``, ``quality/`` and ``lake/`` (DuckDB's dialect); this module is the one
caller that executes it, and the writers it calls (``lake/strategies.py``,
``lake/materialize.py``, ``lake/scd2.py``) get this session's connection.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any

import duckdb
import pyarrow as pa

from weir.engine.base import Counting, Engine, Scope, Since
from weir.engine.duckdb import RowCounter, connect, fetch_reader, fetch_table, transform_sql
from weir.errors import TransformError, WeirError
from weir.lake import changes, changes_scd2, materialize, reconcile, scd2
from weir.lake.materialize import Bound
from weir.lake.strategies import LoadSpec, load
from weir.lake.table import Commit, Table
from weir.quality import runner
from weir.quality.result import CheckResult
from weir.quality.rules import CompiledChecks, RowRule
from weir.spec import Project
from weir.spec.model import Materialized
from weir.spec.pipeline import Scd2
from weir.spec.types import duckdb_type, type_name
from weir.sql import ident, literal
from weir.transform.boundary import Boundary
from weir.transform.silver import SilverSql

RESULT_SETTINGS = (
    "TimeZone",
    "Calendar",
    "default_collation",
    "default_null_order",
    "default_order",
    "integer_division",
    "ieee_floating_point_ops",
    "order_by_non_integer_literal",
    "scalar_subquery_error_on_multiple_rows",
)
"""DuckDB settings whose value changes what a query returns (the definition fingerprint's)."""


STREAMING_SHARE = 0.125
"""DuckDB's share of its memory setting while a batch's rows stream into a plain write (no
window, no join): 32MB of the default 256MB."""

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SMALLEST = 16 * 2**20
"""No share goes below this (DuckDB needs a few buffers per column to scan at all)."""

SCAN_BYTES_PER_VALUE = 0.75
"""Memory DuckDB keeps pinned per value of a spilled temp table and per thread while it
scans it, which a lowered limit leaves on top of :data:`_SMALLEST` (with a margin of about
half). Measured (DuckDB 2.0), one thread: 1M rows of 40 columns fail at 30 MB and pass at
36 MB; 10M rows of 17 columns fail below 48-56 MB; two threads need about twice as much.
Without it a 5M-row batch failed while streaming into its silver write, at an eighth of the
default 256MB."""


def size_bytes(text: str) -> int | None:
    """A DuckDB memory size (``256MB``, ``1GiB``) in bytes; None for another form (``80%``)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        return None
    return int(float(match[1]) * _UNITS[(match[2] or "").lower()])


@functools.cache
def result_settings() -> tuple[tuple[str, str], ...]:
    """The :data:`RESULT_SETTINGS` of a connection as weir configures every one (``connect``),
    read once per process: they depend on the DuckDB version and on what ``connect`` sets,
    not on the project, and a no-op node then needs no connection of its own (~15 ms)."""
    con = connect(memory_limit="64MB")
    try:
        # current_setting() per name: listing duckdb_settings() costs a few milliseconds
        [values] = con.execute(
            "SELECT "
            + ", ".join(f"CAST(current_setting({literal(n)}) AS VARCHAR)" for n in RESULT_SETTINGS)
        ).fetchall()
    finally:
        con.close()
    return ("engine", "duckdb"), *(
        (n, str(v)) for n, v in zip(RESULT_SETTINGS, values, strict=True)
    )


TIME_TYPES = frozenset(
    {"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"}
)

FLAGGED = "flagged"
RESULT = "__model_result"
GOLD = "__gold"


class DuckDBEngine(Engine):
    name = "duckdb"

    def session(self, *, started_at: str) -> DuckDBSession:
        return DuckDBSession(self.project, started_at)

    def translate(self, exc: Exception) -> WeirError | None:
        if isinstance(exc, duckdb.OutOfMemoryException):
            return _out_of_memory(exc, where=str(self.project.root / "weir.yml"))
        return None

    def fingerprint(self, table: Table) -> tuple[int, str] | None:
        data = table.dataset()
        if data is None:
            return None
        con = connect(memory_limit="2GB")
        try:
            con.register("t", data)
            row = con.execute(
                "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') "
                "FROM (SELECT md5(CAST(t AS VARCHAR)) AS h FROM t)"
            ).fetchall()[0]
        finally:
            con.close()
        return int(row[0]), str(row[1])


MEMORY_HINT = (
    "raise duckdb_memory_limit in weir.yml (DuckDB spills to .weir/tmp up to it, per node), "
    "or run fewer nodes at once (--threads)"
)


def _out_of_memory(exc: duckdb.OutOfMemoryException, where: str | None = None) -> TransformError:
    """DuckDB's out-of-memory error, told in weir's terms (its own advice names SET commands
    that weir.yml's settings replace)."""
    return TransformError(
        f"DuckDB ran out of memory: {str(exc).splitlines()[0]}", where=where, hint=MEMORY_HINT
    )


@contextmanager
def failing() -> Iterator[None]:
    """A DuckDB error in the block as a TransformError with DuckDB's message."""
    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        raise _out_of_memory(exc) from exc
    except duckdb.Error as exc:
        raise TransformError(str(exc)) from exc


def boundary_rows(con: duckdb.DuckDBPyConnection, sql: str, named: pa.Table) -> pa.Table:
    """The PII boundary's ``sql`` over ``named`` (relation ``boundary_rows``) on ``con``,
    which must keep row order (``connect(ordered=True)``)."""
    con.register("boundary_rows", named)
    try:
        return fetch_table(con, sql)
    finally:
        con.unregister("boundary_rows")


class DuckDBSession:
    """One node run's DuckDB work (weir.engine.base.Session)."""

    name = "DuckDB"
    time_types = TIME_TYPES

    def __init__(self, project: Project, started_at: str):
        self.project = project
        self.started_at = started_at
        self._con: duckdb.DuckDBPyConnection | None = None
        self._ordered: duckdb.DuckDBPyConnection | None = None
        self._share = 1.0
        """The share of the memory setting in effect (``share_memory``)."""

    # ---------------------------------------------------------------- connections
    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The session's connection: bounded memory, spilling to .weir/tmp, reading and
        writing files only there, in the lake and in .weir/rebuild."""
        if self._con is None:
            self._con = self._connect(ordered=False)
        return self._con

    @property
    def ordered(self) -> duckdb.DuckDBPyConnection:
        """A second connection whose results keep their input's row order."""
        if self._ordered is None:
            self._ordered = self._connect(ordered=True)
        return self._ordered

    def _connect(self, *, ordered: bool) -> duckdb.DuckDBPyConnection:
        project = self.project
        con = connect(
            memory_limit=project.spec.duckdb_memory_limit,
            temp_dir=project.state_dir / "tmp",
            salt=os.environ.get(project.spec.pii_salt_env, ""),
            ordered=ordered,
            # the lake, and the scratch tables of a rebuild (`weir run --full-refresh`)
            allowed_directories=[project.lake, project.rebuild_dir()],
        )
        con.execute("SET VARIABLE weir_run_ts = ?", [self.started_at])
        self._apply_limit(con)
        return con

    def close(self) -> None:
        for con in (self._con, self._ordered):
            if con is not None:
                con.close()
        self._con = self._ordered = None

    # ---------------------------------------------------------------- the session
    def settings(self) -> dict[str, str]:
        return dict(result_settings())

    def at(self, timestamp: str) -> None:
        self.con.execute("SET VARIABLE weir_run_ts = ?", [timestamp])

    def share_memory(self, share: float) -> None:
        self._share = share
        for con in (self._con, self._ordered):
            if con is not None:
                self._apply_limit(con)

    def refit(self) -> None:
        """Apply the share again after the temp tables grew (what they need to be scanned
        sets its least value)."""
        if self._share < 1.0:
            self.share_memory(self._share)

    def _limit(self, con: duckdb.DuckDBPyConnection) -> int | None:
        """Bytes for the share in effect; None for the whole setting, or for a setting in a
        form such as 80%, which stays as it is."""
        full = size_bytes(self.project.spec.duckdb_memory_limit)
        if full is None or self._share >= 1.0:
            return None
        [(values, threads)] = con.execute(
            "SELECT coalesce(sum(estimated_size * column_count), 0), "
            "any_value(current_setting('threads')) FROM duckdb_tables() WHERE temporary"
        ).fetchall()
        least = _SMALLEST + int(values * SCAN_BYTES_PER_VALUE * int(threads or 1))
        return min(full, max(least, int(full * self._share)))

    def _apply_limit(self, con: duckdb.DuckDBPyConnection) -> None:
        limit = self._limit(con)
        setting = f"{limit}B" if limit is not None else self.project.spec.duckdb_memory_limit
        # lowering makes DuckDB spill what it holds; it refuses while it cannot yet
        with suppress(duckdb.OutOfMemoryException):
            con.execute(f"SET memory_limit = '{setting}'")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # fetchall: a result left open (fetchone) blocks the connection
        return self.con.execute(sql, list(params)).fetchall()

    def dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, list(params))
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def snapshot(self, table: Table) -> str:
        return table.scan(self.con)

    def read(self, table: Table) -> pa.Table:
        return fetch_table(self.con, f"SELECT * FROM ({table.scan(self.con)})")

    def columns(self, sql: str) -> dict[str, str]:
        with failing():
            rel = self.con.sql(f"SELECT * FROM ({sql}) LIMIT 0")
        return dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))

    # ---------------------------------------------------------------- pipelines
    def boundary(self, boundary: Boundary, rows: pa.Table) -> pa.Table:
        def compute(sql: str, named: pa.Table) -> pa.Table:
            with transform_sql(
                "a derived column or rule over PII failed",
                where=str(boundary.pipeline.path),
                hint="check transform.derived SQL and the contract's rules on PII columns",
            ):
                return boundary_rows(self.ordered, sql, named)

        return boundary.apply(rows, compute)

    @contextmanager
    def unseen(
        self, rows: pa.RecordBatchReader, bronze: Table, columns: Sequence[str], since: Since | None
    ) -> Iterator[pa.RecordBatchReader]:
        known = bronze.dataset()
        assert known is not None, "unseen needs an existing table"
        row = "md5(CAST(struct_pack(" + ", ".join(ident(c) for c in columns) + ") AS VARCHAR))"
        window, params = "", list[object]()
        if since is not None:
            typ = duckdb_type(type_name(since.type))
            window, params = f" WHERE {ident(since.column)} >= CAST(? AS {typ})", [since.bound]
        con = self.con
        con.register("staged_rows", rows)
        con.register("bronze_rows", known)
        try:
            yield fetch_reader(
                con,
                f"SELECT * FROM staged_rows WHERE {row} NOT IN "
                f"(SELECT {row} FROM bronze_rows{window})",
                params=params,
            )
        finally:
            con.unregister("staged_rows")
            con.unregister("bronze_rows")

    @contextmanager
    def flag(self, plan: SilverSql, rows: pa.RecordBatchReader) -> Iterator[DuckDBFlagged]:
        con = self.con
        con.register("input", rows)
        try:
            with transform_sql(
                "the silver transform failed",
                where=str(plan.pipeline.path),
                hint="check transform.derived SQL and the contract's check conditions",
            ):
                con.execute(f"CREATE OR REPLACE TEMP TABLE {FLAGGED} AS {plan.flagged()}")
                for statement in plan.compared():
                    con.execute(statement)
        finally:
            con.unregister("input")
        self.refit()
        with self._dropping(f"DROP TABLE IF EXISTS {FLAGGED}"):
            yield DuckDBFlagged(self, plan)

    def reconcile(
        self,
        table: Table,
        source_keys: pa.RecordBatchReader,
        commit: reconcile.ReconcileCommit,
        settings: reconcile.Reconcile,
    ) -> dict[str, Any]:
        with failing():
            return reconcile.apply(table, self.con, source_keys, commit, settings)

    @contextmanager
    def _dropping(self, drop: str) -> Iterator[None]:
        """Run ``drop`` when the block ends; after a failure, only if DuckDB still can."""
        try:
            yield
        except BaseException:
            with suppress(duckdb.Error):  # the block's error is the one to report
                self.con.execute(drop)
            raise
        self.con.execute(drop)

    # ---------------------------------------------------------------- models
    def expose(self, sources: Mapping[str, Table]) -> None:
        con = self.con
        for name, table in sources.items():
            layer, _, short = name.partition(".")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(layer)}")
            con.execute(
                f"CREATE OR REPLACE VIEW {ident(layer)}.{ident(short)} AS {table.scan(con)}"
            )

    def preview(self, sql: str, limit: int) -> pa.Table:
        with failing():
            return fetch_table(self.con, f"SELECT * FROM ({sql}) AS m LIMIT {limit:d}")

    @contextmanager
    def compute(self, sql: str, bound: Bound | None) -> Iterator[DuckDBResult]:
        select = f"SELECT * FROM ({sql}) AS m"
        if bound is not None:
            select += f" WHERE {bound.sql('m')}"
        with failing():
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {RESULT} AS {select}")
        with self._dropping(f"DROP TABLE IF EXISTS {RESULT}"):
            [(rows,)] = self.rows(f"SELECT count(*) FROM {RESULT}")
            yield DuckDBResult(self, int(rows))

    def window_start(self, high: str, column_type: str, lookback: str) -> Any:
        typ = "TIMESTAMPTZ" if column_type == "TIMESTAMP WITH TIME ZONE" else column_type
        [(start,)] = self.rows(
            f"SELECT CAST(CAST(? AS {typ}) - INTERVAL {literal(lookback)} AS {typ})", [high]
        )
        return start

    @contextmanager
    def checking(self, table: Table, scope: Scope) -> Iterator[DuckDBChecked]:
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {GOLD} AS {table.scan(self.con)}")
        with self._dropping(f"DROP VIEW IF EXISTS {GOLD}"):
            yield DuckDBChecked(self, _condition(scope))


def _condition(scope: Scope) -> str:
    if scope == "all":
        return "TRUE"
    if scope == "current":
        return "is_current"
    return scope.sql()


class DuckDBFlagged:
    """The ``flagged`` temp table of one batch (weir.engine.base.Flagged)."""

    relation = FLAGGED

    def __init__(self, session: DuckDBSession, plan: SilverSql):
        self.session = session
        self.plan = plan

    def scan(self, *, batch: int, samples: int) -> tuple[int, int, list[CheckResult]]:
        plan, session = self.plan, self.session

        def sample(rule: RowRule) -> list[dict[str, Any]]:
            return session.dicts(plan.sample(rule.flag_column, rule.name, samples), [rule.name])

        totals = ("count(*)", "count(*) FILTER (WHERE len(_errors) > 0)")
        checks, images = plan.checks, None
        if plan.changes and checks.table:  # table rules judge the images a batch upserts
            checks, images = replace(checks, table=()), replace(checks, row=())
        (total, errors), results = runner.scan(
            session,
            checks,
            FLAGGED,
            extra=totals,
            batch=batch,
            sample=sample if samples else None,
        )
        if images is not None:
            results += runner.scan(session, images, f"({plan.images()})", batch=batch)[1]
        return int(total), int(errors), results

    def unparsed(self, samples: int) -> tuple[int, list[dict[str, Any]]]:
        [(failing,)] = self.session.rows(
            f"SELECT count(*) FROM {FLAGGED} WHERE {self.plan.unparsed()}"
        )
        found = self.session.dicts(self.plan.parse_sample(samples)) if failing and samples else []
        return int(failing), found

    def quarantine(self) -> pa.Table:
        return fetch_table(self.session.con, self.plan.quarantine())

    def distinct_keys(self) -> int:
        distinct = ", ".join(ident(k) for k in self.plan.pipeline.keys)
        [(n,)] = self.session.rows(
            f"SELECT count(*) FROM (SELECT DISTINCT {distinct} FROM {FLAGGED} "
            "WHERE len(_errors) = 0)"
        )
        return int(n)

    def load(
        self, table: Table, commit: Commit, spec: LoadSpec, *, dedupe: bool, counting: Counting
    ) -> tuple[int, dict[str, Any]]:
        con = self.session.con
        if spec.changes is not None:
            return self._apply_changes(table, commit, spec, counting)
        partitions = {
            p: [
                r[0]
                for r in self.session.rows(
                    f"SELECT DISTINCT {ident(p)} FROM {FLAGGED} WHERE len(_errors) = 0"
                )
            ]
            for p in spec.partition_by
        }
        key_ranges = self._key_ranges(spec, table)
        if spec.strategy == "scd2":
            # quarantined rows: in the batch though not loaded, so not deleted upstream
            spec = replace(spec, held=self.plan.quarantine())
        # one DuckDB thread feeds the writer: parallel producers buffer batches ahead of a
        # writer that cannot go faster, which costs memory and gains no time
        con.execute("SET threads = 1")
        # Streaming the rows out needs little of DuckDB's memory, unless a window keeps the
        # latest row per key or SCD2 joins the table's current rows. A lower limit meanwhile
        # makes DuckDB move `flagged` to its spill files and return that memory, which the
        # writer (delta-rs) then needs (bench (d)).
        lean = not dedupe and spec.strategy != "scd2"
        if lean:
            self.session.share_memory(STREAMING_SHARE)
        counter = RowCounter(fetch_reader(con, self.plan.silver(dedupe=dedupe)))
        try:
            metrics = load(
                table,
                counting(counter.reader()),
                commit,
                spec,
                con,
                partitions=partitions,
                key_ranges=key_ranges,
            )
        finally:
            counter.close()  # a failed write leaves the result open; the error is the write's
            con.execute("RESET threads")
            if lean:
                self.session.share_memory(1.0)
        return counter.rows, metrics

    def _key_ranges(self, spec: LoadSpec, table: Table) -> dict[str, tuple[Any, Any]]:
        """The least and greatest value of each key column (not a partition column) in the
        batch's valid rows, for a MERGE into an existing table to prune files by."""
        keys = [k for k in spec.keys if k not in spec.partition_by]
        if spec.strategy != "merge" or not keys or not table.exists():
            return {}
        bounds = ", ".join(f"min({ident(k)}), max({ident(k)})" for k in keys)
        [row] = self.session.rows(f"SELECT {bounds} FROM {FLAGGED} WHERE len(_errors) = 0")
        return {k: (row[2 * i], row[2 * i + 1]) for i, k in enumerate(keys)}

    def _apply_changes(
        self, table: Table, commit: Commit, spec: LoadSpec, counting: Counting
    ) -> tuple[int, dict[str, Any]]:
        """Change events, applied by key in log order (lake/changes.py; as versions with
        ``scd2``, lake/changes_scd2.py); (events, metrics)."""
        assert spec.changes is not None
        common: dict[str, Any] = {
            "keys": spec.keys,
            "settings": spec.changes,
            "partition_by": spec.partition_by,
            "evolve": spec.evolve,
            "counting": counting,
        }
        events = self.plan.silver(dedupe=False)
        con = self.session.con
        with failing():
            if spec.strategy == "scd2":
                assert spec.scd2 is not None
                metrics = changes_scd2.apply(table, con, events, commit, scd2=spec.scd2, **common)
            else:
                metrics = changes.apply(table, con, events, commit, **common)
        return int(metrics["num_change_events"]), metrics


class DuckDBResult:
    """The ``__model_result`` temp table of one model run (weir.engine.base.Result)."""

    def __init__(self, session: DuckDBSession, rows: int):
        self.session = session
        self.rows = rows

    def columns(self) -> list[str]:
        return list(self.session.con.sql(f"SELECT * FROM {RESULT} LIMIT 0").columns)

    def key_problems(self, keys: Sequence[str]) -> tuple[int, list[dict[str, Any]]]:
        k = ", ".join(ident(c) for c in keys)
        nulls = " OR ".join(f"{ident(c)} IS NULL" for c in keys)
        dupes = fetch_table(
            self.session.con,
            f"SELECT {k}, count(*) AS n FROM {RESULT} GROUP BY ALL HAVING count(*) > 1 LIMIT 3",
        )
        [(null_rows,)] = self.session.rows(f"SELECT count(*) FROM {RESULT} WHERE {nulls}")
        return int(null_rows), dupes.to_pylist()

    def nulls(self, column: str) -> int:
        [(n,)] = self.session.rows(f"SELECT count(*) FROM {RESULT} WHERE {ident(column)} IS NULL")
        return int(n)

    def high(self, column: str) -> Any:
        [(high,)] = self.session.rows(f"SELECT max({ident(column)}) FROM {RESULT}")
        return high

    def fits(self, checks: CompiledChecks) -> None:
        with failing():
            runner.scan_relation(self.session, checks, RESULT, "FALSE")

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
        con = self.session.con
        if bound is None:
            counter = RowCounter(fetch_reader(con, f"SELECT * FROM {RESULT}"))
            try:
                materialize.overwrite(table, counter.reader(), commit, partition_by=partition_by)
            finally:
                counter.close()
            return {"num_target_rows_inserted": counter.rows}
        if materialized == "partition-swap":
            return materialize.swap_partitions(
                table, con, RESULT, commit, partition_by=partition_by, bound=bound
            )
        return materialize.merge_window(table, con, RESULT, commit, keys=keys, bound=bound)

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
        con = self.session.con
        return scd2.apply(
            table,
            fetch_reader(con, f"SELECT * FROM {RESULT}"),
            commit,
            con,
            keys=keys,
            settings=settings,
            partition_by=partition_by,
            evolve=evolve,
            replace=replace,
        )


class DuckDBChecked:
    """A table's rows in a scope, over the ``__gold`` view (weir.engine.base.Checked)."""

    def __init__(self, session: DuckDBSession, condition: str):
        self.session = session
        self.condition = condition
        self.relation = f"(SELECT * FROM {GOLD} WHERE {condition})"

    def columns(self) -> list[str]:
        return list(self.session.con.sql(f"SELECT * FROM {GOLD} LIMIT 0").columns)

    def scan(self, checks: CompiledChecks) -> list[CheckResult]:
        with failing():
            return runner.scan_relation(self.session, checks, GOLD, self.condition)
