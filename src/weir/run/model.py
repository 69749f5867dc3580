"""The run of one gold model: read its sources at their current versions, recompute what
its materialization needs, commit once with the position, then check the result.

The position committed with the data (app transaction ``weir:model:<name>``) holds the
source tables' versions, the window column's maximum and the fingerprint of the model's
definition (transform/definition.py). A run whose sources are all at the versions of the last
commit, with the same definition, has nothing to do and writes nothing. A changed definition
rebuilds the table (a snapshot, whose history cannot be rebuilt, runs: the change applies
from then on).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from weir import layout
from weir.engine.base import Checked, Result, Scope
from weir.errors import ConfigError, LakeError, QualityError, TransformError
from weir.lake import materialize, scd2
from weir.lake.table import Commit, Table
from weir.quality import runner
from weir.quality.compile import compile_rules
from weir.quality.result import CheckResult
from weir.run.checks import NodeContext
from weir.run.node import NodeRun, Progress, quiet
from weir.spec import Model, Project
from weir.spec.modelsql import rewrite
from weir.spec.pipeline import Scd2
from weir.transform import definition as defs


def table_uri(project: Project, qualified: str) -> str:
    return layout.qualified_uri(project.lake, qualified)


def compiled_sql(model: Model, *, pretty: bool = False) -> str:
    """The SELECT a run of ``model`` executes: weir's rewrites applied (``valid_at``, table
    names qualified by layer), in DuckDB's dialect."""
    query = rewrite(model.sql.expression, model.depends_on)
    return query.sql(dialect="duckdb", pretty=pretty)


class ModelRun(NodeRun):
    kind = "model"

    def __init__(
        self,
        project: Project,
        model: Model,
        *,
        run_id: str | None = None,
        wait: bool = False,
        progress: Progress = quiet,
        full_refresh: bool = False,
    ):
        super().__init__(project, model.name, run_id=run_id, wait=wait, progress=progress)
        self.model = model
        self.full_refresh = full_refresh
        self.app_id = f"weir:model:{model.name}"
        self.target = Table(table_uri(project, model.table), label="gold")

    def _versions(self) -> dict[str, int | None]:
        self.record.bytes_written = self.target.bytes_added  # and what its commits wrote
        return {"gold": self.target.version()}

    def _lineage_tables(self) -> tuple[list[str], list[str]]:
        return list(self.model.depends_on), [self.model.table]

    # ---------------------------------------------------------------- the run
    def _run(self) -> None:
        record = self.record
        if self.full_refresh and self.model.spec.materialized == "snapshot":
            record.warnings.append(
                f"--full-refresh does not rebuild snapshot {self.model.name!r}: a history "
                "cannot be recomputed from today's sources. It ran as usual (the result "
                "compared with the current versions, new columns added); to start its "
                f"history over, move {self.target.uri} away and run again"
            )
        self.enter("position")
        batch, position = self.target.position(self.app_id)
        sources = self._sources()
        versions = {name: table.version() for name, table in sources.items()}
        record.watermark_before = _describe(position)
        record.watermark_after = record.watermark_before
        definition = defs.model_fingerprint(self.model, self.session.settings())
        changed = (
            defs.model_changes(position.get("definition"), definition)
            if position is not None
            else []
        )
        up_to_date = (
            position is not None
            and position.get("sources") == versions
            and not changed
            and not self.full_refresh
        )
        self.enter("read")
        if up_to_date:
            self.progress("sources and definition unchanged since the last run; nothing to do")
        else:
            # the model's SQL reads its sources by name; its checks read only the table
            # itself, and check kinds that need another table ask the context for it
            self.session.expose(sources)
            self.enter("transform")
            position = self._materialize(batch + 1, position, versions, definition, changed)
            record.watermark_after = _describe(position)
            record.changed = True
        self.enter("checks")
        self._checks(self._scope(position))

    def _sources(self) -> dict[str, Table]:
        tables = {}
        for name in self.model.depends_on:
            table = Table(table_uri(self.project, name), label=name.partition(".")[0])
            if not table.exists():
                raise LakeError(
                    f"model {self.model.name!r} reads {name}, which does not exist yet",
                    where=table.uri,
                    hint="run what produces it first: `weir run +" + self.model.name + "`",
                )
            tables[name] = table
        return tables

    def _sql(self) -> str:
        return compiled_sql(self.model)

    def preview(self, limit: int) -> pa.Table:
        """The first ``limit`` rows of the result, computed now from the sources' current
        versions; nothing is written and no run is recorded."""
        try:
            self.session.expose(self._sources())
            with self._failing():
                return self.session.preview(self._sql(), limit)
        finally:
            self.close()

    def _failing(self) -> AbstractContextManager[None]:
        """The engine's error in the model's SQL, naming the model's file."""
        return self.failing(
            f"model {self.model.name!r} failed in {self.session.name}",
            where=str(self.model.path),
            hint="run the SELECT by hand against the silver tables to see the problem",
        )

    # ---------------------------------------------------------------- materialize
    def _materialize(
        self,
        batch: int,
        position: dict[str, Any] | None,
        versions: dict[str, int | None],
        definition: dict[str, str],
        changed: list[str],
    ) -> dict[str, Any]:
        spec = self.model.spec
        sql = self._sql()
        window = spec.incremental
        bound: materialize.Bound | None = None
        if window is not None and position is not None and not changed:
            changed = ["columns"] if self._columns_changed(sql) else []
        if changed:
            self._announce(changed)
        rebuild = self.full_refresh or not self.target.exists() or position is None or bool(changed)
        if window is not None and not rebuild and position is not None:
            bound = self._bound(sql, position)
        with self._compute(sql, bound) as result:
            return self._commit(result, batch, position, versions, definition, changed, bound)

    def _commit(
        self,
        result: Result,
        batch: int,
        position: dict[str, Any] | None,
        versions: dict[str, int | None],
        definition: dict[str, str],
        changed: list[str],
        bound: materialize.Bound | None,
    ) -> dict[str, Any]:
        """Write ``result`` with the model's materialization, in one commit; the position."""
        spec = self.model.spec
        high = self._high(result, position, bound)
        new_position = {
            "sources": versions,
            "high": high,
            # the rows this write recomputed: what its checks answer for (None: all of them)
            "window": _iso(bound.start) if bound is not None else None,
            "definition": definition,
        }
        commit = Commit(self.app_id, batch, self.run_id, self.record.started_at, new_position)
        self.enter("gold")
        if spec.materialized == "snapshot":
            metrics = self._snapshot(result, commit, position)
        else:
            metrics = result.write(
                self.target,
                commit,
                materialized=spec.materialized,
                partition_by=spec.partition_by,
                keys=spec.unique_key,
                bound=bound,
            )
        self.record.warnings += scd2.warnings(metrics)
        metrics.pop("examples", None)
        if changed:
            metrics["definition_changed"] = changed
        self.record.load_metrics.append({"batch": batch, **metrics})
        self.record.rows_loaded = int(
            metrics.get("num_target_rows_inserted", 0) + metrics.get("num_target_rows_updated", 0)
        )
        self.record.batches.append(batch)
        return new_position

    @contextmanager
    def _compute(self, sql: str, bound: materialize.Bound | None) -> Iterator[Result]:
        """The result (or the window's part of it), its keys and checks verified before
        anything is written."""
        spec = self.model.spec
        if bound is not None:
            self.progress(f"recomputing rows with {bound.column} >= {bound.start} (window)")
        else:
            self.progress(f"computing {self.model.name} in full ({spec.materialized})")
        with ExitStack() as stack:
            with self._failing():
                result = stack.enter_context(self.session.compute(sql, bound))
            self.record.rows_extracted = self.record.rows_transformed = result.rows
            self._check_keys(result)
            if spec.checks and spec.materialized != "snapshot":
                # a check that cannot run fails the run before anything is written
                checks = compile_rules(spec.checks, self.model.name)
                self._fitting(result, lambda: result.fits(checks))
            yield result

    def _announce(self, changed: list[str]) -> None:
        """Say that (and how) the definition changed, and what the run does about it."""
        parts = ", ".join(
            "unrecorded: an earlier weir wrote the position" if p == defs.UNRECORDED else p
            for p in changed
        )
        if self.model.spec.materialized == "snapshot":
            then = "a snapshot's history cannot be rebuilt, so the change applies from this run on"
        else:
            then = "rebuilding the table in full"
        message = f"the definition of model {self.model.name!r} changed ({parts}): {then}"
        self.record.warnings.append(message)
        self.progress(message)

    # ---------------------------------------------------------------- snapshot
    def _snapshot(
        self, result: Result, commit: Commit, position: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Version the result into the SCD2 table: one MERGE (module lake/scd2.py)."""
        spec, target = self.model.spec, self.target
        assert spec.snapshot is not None
        snap = spec.snapshot
        settings = Scd2(
            tracked=[snap.updated_at] if snap.updated_at else snap.check_cols,
            valid_from=snap.updated_at,
            hard_deletes=snap.hard_deletes,
        )
        self._check_valid_from(result, snap.updated_at)
        schema = target.schema()
        # a table another materialization wrote holds no history: the versions replace it
        replace = schema is not None and not {"valid_from", "is_current"} <= set(schema.names)
        evolve = False
        if schema is not None and not replace:
            evolve = self._evolve(result, schema, settings)
            self._repartition(commit, position)
        metrics = result.snapshot(
            target,
            commit,
            keys=spec.unique_key,
            settings=settings,
            partition_by=spec.partition_by,
            evolve=evolve,
            replace=replace,
        )
        target.mark(commit)
        return metrics

    def _check_valid_from(self, result: Result, column: str | None) -> None:
        """With ``updated_at``, every row needs one: a version cannot start at NULL."""
        if column is None:
            return
        nulls = result.nulls(column)
        if nulls:
            raise QualityError(
                f"model {self.model.name!r}: {nulls} rows have a NULL {column} "
                "(snapshot.updated_at), and a version cannot start at an unknown time",
                where=self.model.config.where(("snapshot", "updated_at")),
                hint=f"filter those rows out or give them a time (coalesce({column}, …)) "
                "in the SELECT; nothing was written",
            )

    def _evolve(self, result: Result, schema: pa.Schema, settings: Scd2) -> bool:
        """Compare the result's columns with the snapshot table's: a new column is added
        (earlier versions hold NULL; a tracked one opens a version for every key), a removed
        one is an error (a history does not lose columns). True when columns are added."""
        now = result.columns()
        held = [c for c in schema.names if c not in scd2.VERSION_COLUMNS]
        removed = [c for c in held if c not in now]
        if removed:
            types = self._table_types()
            keep = ", ".join(f"CAST(NULL AS {types.get(c, 'VARCHAR')}) AS {c}" for c in removed)
            raise ConfigError(
                f"snapshot {self.model.name!r} no longer returns {', '.join(removed)}, which "
                "its table holds; a snapshot keeps its history, so weir does not drop columns",
                where=str(self.model.path),
                hint=f"return the column again, or keep it empty from now on with `{keep}` "
                "in the SELECT; nothing was written",
            )
        added = [c for c in now if c not in schema.names and c not in scd2.VERSION_COLUMNS]
        if not added:
            return False
        tracked = set(scd2.tracked_columns(now, self.model.spec.unique_key, settings))
        effect = (
            "they are tracked, so every key opens a new version from this run on"
            if tracked & set(added)
            else "they are not tracked, so a key records them when it next opens a version"
        )
        note = (
            f"snapshot {self.model.name!r}: new column(s) {', '.join(added)} added to its "
            f"table; earlier versions hold NULL in them, and {effect}"
        )
        self.record.schema_changes.append(note)
        self.record.warnings.append(note)
        return True

    def _table_types(self) -> dict[str, str]:
        """The snapshot table's columns and their types in the engine's SQL."""
        return self.session.columns(self.session.snapshot(self.target))

    def _repartition(self, commit: Commit, position: dict[str, Any] | None) -> None:
        """A changed ``partition_by``: rewrite the history with the new partitioning, in a
        commit that keeps the last batch's position, before this run's MERGE."""
        dt = self.target.dt
        wanted = self.model.spec.partition_by
        if dt is None or position is None or list(dt.metadata().partition_columns) == wanted:
            return
        rows = self.session.read(self.target)
        keep = Commit(self.app_id, commit.batch - 1, self.run_id, commit.started_at, position)
        self.target.write(rows, keep, mode="overwrite", partition_by=wanted, replace_schema=True)
        self.progress(f"rewrote the history partitioned by ({', '.join(wanted)})")

    # ---------------------------------------------------------------- window
    def _bound(self, sql: str, position: dict[str, Any]) -> materialize.Bound | None:
        window = self.model.spec.incremental
        assert window is not None
        high = position.get("high")
        if high is None:  # the last run saw no rows: recompute everything
            return None
        typ = self._column_type(sql, window.column)
        return materialize.Bound(
            window.column, self.session.window_start(high, typ, window.lookback)
        )

    def _column_type(self, sql: str, column: str) -> str:
        with self._failing():
            types = self.session.columns(sql)
        where = self.model.config.where(("incremental", "column"))
        if column not in types:
            raise ConfigError(
                f"incremental.column {column!r} is not a column of the model's result",
                where=where,
                hint="columns: " + ", ".join(types),
            )
        typ = types[column]
        if typ not in self.session.time_types:
            raise ConfigError(
                f"incremental.column {column!r} is {typ}; the window needs a DATE or TIMESTAMP",
                where=where,
                hint="cast it in the SELECT, or use a date column of the result",
            )
        return typ

    def _high(
        self, result: Result, position: dict[str, Any] | None, bound: materialize.Bound | None
    ) -> str | None:
        window = self.model.spec.incremental
        if window is None:
            return None
        high = result.high(window.column)
        before = (position or {}).get("high") if bound is not None else None
        values = [v for v in (_iso(high), before) if v is not None]
        return max(values) if values else None

    def _check_keys(self, result: Result) -> None:
        keys = self.model.spec.unique_key
        if not keys:
            return
        null_rows, dupes = result.key_problems(keys)
        if dupes or null_rows:
            problem = (
                f"{null_rows} rows have a NULL in the key"
                if null_rows
                else f"the key repeats, e.g. {json.dumps(dupes, default=str)}"
            )
            raise QualityError(
                f"model {self.model.name!r}: unique_key ({', '.join(keys)}) is not unique: {problem}",
                where=self.model.config.where(("unique_key",)),
                hint="fix the SELECT (aggregate or de-duplicate), or correct unique_key",
            )

    def _columns_changed(self, sql: str) -> bool:
        """The result's columns differ from the table's (a source gained a column under a
        ``SELECT *``, say): a window cannot be merged, the table is rebuilt."""
        schema = self.target.schema()
        if schema is None:
            return False
        try:
            now = self.session.columns(sql)
        except TransformError:
            return False  # the full computation reports the error, naming the model's file
        return list(schema.names) != list(now)

    # ---------------------------------------------------------------- checks
    def _fitting(
        self, rows: Result | Checked, scan: Callable[[], list[CheckResult] | None]
    ) -> list[CheckResult]:
        """``scan``'s results; a check that does not fit the model's columns is a ConfigError."""
        try:
            return scan() or []
        except TransformError as exc:
            raise ConfigError(
                f"the checks of model {self.model.name!r} do not fit its result: "
                f"{exc.message.splitlines()[0]}",
                where=self.model.config.where(("checks",)),
                hint=f"the model's columns are: {', '.join(rows.columns())}",
            ) from None

    def _scope(self, position: dict[str, Any] | None) -> Scope:
        """The rows the last write (committed with ``position``) recomputed, which its checks
        answer for: the window of an incremental or partition-swap run, the current rows of
        a snapshot, else all rows."""
        spec = self.model.spec
        if spec.materialized == "snapshot":
            return "current"
        if spec.incremental is None:
            return "all"
        start = (position or {}).get("window")
        if start is None:
            return "all"
        return materialize.Bound(spec.incremental.column, start)

    def _checks(self, scope: Scope) -> None:
        spec = self.model.spec
        if not spec.checks:
            return
        if not self.target.exists():
            return
        checks = compile_rules(spec.checks, self.model.name)
        with self.session.checking(self.target, scope) as checked:
            results = self._fitting(checked, lambda: checked.scan(checks))
            context = NodeContext(self.project, self.model.name, self.session, checked.relation)
            results += runner.evaluate(checks, context)
        failed = []
        for result in results:
            self.record.add_check(result)
            if result.failed and result.severity == "warn":
                self.record.warnings.append(f"check {result.name} failed (warn)")
            if result.failed and result.severity == "error":
                failed.append(result.name)
        if failed:
            raise QualityError(
                f"error-level checks failed on gold.{self.model.name}: {', '.join(failed)}",
                where=str(self.model.path),
                hint="the table is written; downstream models were not run. "
                "See the checks in the run record",
            )


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return None if value is None else str(value)


def _describe(position: dict[str, Any] | None) -> str | None:
    if position is None:
        return None
    versions = ", ".join(f"{k}@v{v}" for k, v in sorted(position.get("sources", {}).items()))
    high = position.get("high")
    return (f"{high} · " if high else "") + versions
