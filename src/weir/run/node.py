"""What every run of a node (pipeline, model, dbt step) shares: the lock, the outcome,
the record's persistence. Subclasses implement ``_run`` and describe their tables."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import duckdb

from weir.engine.duckdb import connect
from weir.errors import WeirError
from weir.observe.openlineage import LineageEmitter
from weir.observe.record import RunRecord, Scrubber, Status, emit, scrubbed_logging
from weir.run.lock import pipeline_lock
from weir.spec import Project
from weir.state.sqlite import StateStore

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    return None


class NodeRun:
    """One execution of one node. ``execute`` never raises for a failed run: the outcome is
    in the returned record (status, error_message)."""

    kind: str = "pipeline"

    def __init__(
        self,
        project: Project,
        name: str,
        *,
        run_id: str | None = None,
        wait: bool = False,
        progress: Progress = quiet,
    ):
        self.project = project
        self.name = name
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.wait = wait
        self.scrub = Scrubber(project.secrets)
        self.progress: Progress = lambda message: progress(self.scrub(message))
        self.record = RunRecord(pipeline_name=name, run_id=self.run_id, kind=self.kind)  # type: ignore[arg-type]
        self._con: duckdb.DuckDBPyConnection | None = None
        self._ordered: duckdb.DuckDBPyConnection | None = None
        self.lineage = LineageEmitter.for_project(project)

    def execute(self) -> RunRecord:
        record = self.record
        try:
            self.project.require_env([self.name])
            with (
                scrubbed_logging(self.scrub),
                pipeline_lock(self.project.state_dir, self.name, wait=self.wait),
            ):
                self.lineage.start(self.name, self.run_id, *self._lineage_tables())
                self._run()
            record.finish(self._outcome())
        except WeirError as exc:
            record.finish("failed", self.scrub(str(exc)))
        except Exception as exc:  # a bug: record it, keep other nodes running
            if os.environ.get("WEIR_DEBUG"):
                raise
            record.finish(
                "failed",
                self.scrub(
                    f"internal error: {type(exc).__name__}: {exc} "
                    "(a bug in weir; re-run with WEIR_DEBUG=1 for the traceback)"
                ),
            )
        finally:
            self.close()
            try:
                record.table_versions = self._versions()
            except WeirError as exc:
                record.warnings.append(f"could not read table versions: {exc}")
            self._persist()
        return record

    def _run(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Close this run's DuckDB connections (``execute`` does; so must other callers)."""
        for con in (self._con, self._ordered):
            if con is not None:
                con.close()
        self._con = self._ordered = None

    def close_ordered(self) -> None:
        """Close the ordered connection once its work is done, so that its memory goes back
        before the next stage needs some (``ordered_con`` opens a new one if asked again)."""
        if self._ordered is not None:
            self._ordered.close()
            self._ordered = None

    def _outcome(self) -> Status:
        return "success"

    def _versions(self) -> dict[str, int | None]:
        return {}

    def _lineage_tables(self) -> tuple[list[str], list[str]]:
        """OpenLineage inputs and outputs of this node (qualified table names)."""
        return [], []

    def _persist(self) -> None:
        self.record.scrub(self.scrub)  # before anything leaves the process
        self.record.warnings += self.lineage.finish(self.record, *self._lineage_tables())
        self.record.scrub(self.scrub)
        persist(self.project, self.record, self.scrub)

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """This run's DuckDB connection: bounded memory, spilling to .weir/tmp, reading and
        writing files only there, in the lake and in .weir/rebuild."""
        if self._con is None:
            self._con = self._connect(ordered=False)
        return self._con

    @property
    def ordered_con(self) -> duckdb.DuckDBPyConnection:
        """A second connection whose results keep their input's row order."""
        if self._ordered is None:
            self._ordered = self._connect(ordered=True)
        return self._ordered

    def _connect(self, *, ordered: bool) -> duckdb.DuckDBPyConnection:
        salt = os.environ.get(self.project.spec.pii_salt_env, "")
        con = connect(
            memory_limit=self.project.spec.duckdb_memory_limit,
            temp_dir=self.project.state_dir / "tmp",
            salt=salt,
            ordered=ordered,
            # the lake, and the scratch tables of a rebuild (`weir run --full-refresh`)
            allowed_directories=[self.project.lake, self.project.rebuild_dir()],
        )
        con.execute("SET VARIABLE weir_run_ts = ?", [self.record.started_at])
        return con


def persist(project: Project, record: RunRecord, scrub: Scrubber) -> None:
    """The record as a JSON line (logging.run_records) and a row in the state store."""
    spec = project.spec
    emit(record, spec.logging.run_records, project.root, scrub)
    StateStore(project.root / spec.state).save(record, scrub)
