"""What every run of a node (pipeline, model, dbt step) shares: the lock, the outcome, the
events it tells its observers. Subclasses implement ``_run`` and describe their tables; they
enter stages with :meth:`NodeRun.enter` and report progress with :meth:`NodeRun.progress`."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pyarrow as pa

from weir.engine.base import Session, engine_for
from weir.errors import TransformError, WeirError
from weir.observe.events import (
    Event,
    Kind,
    NodeFinished,
    NodeProgress,
    NodeStage,
    NodeStarted,
    Observer,
    notify,
)
from weir.observe.record import RunRecord, Scrubber, Status, scrubbed_logging
from weir.run.lock import pipeline_lock
from weir.spec import Project

Progress = Callable[[str], None]
"""A plain-text progress callback, for callers that want only the lines."""

PROGRESS_EVERY = 1.0
"""Seconds between two progress events of one count."""


_log = logging.getLogger("weir.run")


def quiet(_: str) -> None:
    return None


class NodeRun:
    """One execution of one node. ``execute`` never raises for a failed run: the outcome is
    in the returned record (status, error_message)."""

    kind: Kind = "pipeline"

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
        self._lines = progress
        self.observers: tuple[Observer, ...] = ()
        self.record = RunRecord(
            pipeline_name=name, run_id=self.run_id, kind=self.kind, target=project.target
        )
        self._session: Session | None = None

    def execute(self, observers: Sequence[Observer] | None = None) -> RunRecord:
        """Run the node, telling ``observers`` (default: the project's own, which write the
        run record: :func:`weir.observe.observers.observers_for`) what happens."""
        if observers is None:
            from weir.observe.observers import observers_for

            observers = observers_for(self.project)
        self.observers = tuple(observers)
        record = self.record
        try:
            self.project.require_env([self.name])
            with (
                scrubbed_logging(self.scrub),
                pipeline_lock(self.project.state_dir, self.name, wait=self.wait),
            ):
                inputs, outputs = self._lineage_tables()
                self._emit(NodeStarted(self.name, self.kind, self.run_id, (*inputs,), (*outputs,)))
                self._run()
            record.finish(self._outcome())
        except WeirError as exc:
            record.finish("failed", self.scrub(str(exc)))
        except Exception as exc:  # a bug (or the engine's resources): record it, go on
            known = engine_for(self.project).translate(exc)
            if known is None and os.environ.get("WEIR_DEBUG"):
                raise
            message = (
                str(known)
                if known is not None
                else (
                    f"internal error: {type(exc).__name__}: {exc} "
                    "(a bug in weir; re-run with WEIR_DEBUG=1 for the traceback)"
                )
            )
            record.finish("failed", self.scrub(message))
        finally:
            self.close()
            try:
                record.table_versions = self._versions()
            except WeirError as exc:
                record.warnings.append(f"could not read table versions: {exc}")
            self._finished()
        return record

    # ---------------------------------------------------------------- events
    def enter(self, stage: str) -> None:
        """The run is in ``stage`` now (the record says so, observers hear it)."""
        self.record.stage = stage
        self._emit(NodeStage(self.name, self.kind, self.run_id, stage))

    def progress(
        self, message: str, *, done: int | None = None, total: int | None = None, unit: str = "rows"
    ) -> None:
        """A line of progress (scrubbed here), maybe with ``done`` of ``total`` ``unit``."""
        message = self.scrub(message)
        self._lines(message)
        self._emit(NodeProgress(self.name, self.kind, message, self.run_id, done, total, unit))

    def notice(self, message: str) -> None:
        """Something a person should know that is not progress (a source retrying a
        request): a warning through logging, which the command line shows on stderr."""
        _log.warning("%s: %s", self.name, self.scrub(message))

    def counting(
        self, reader: pa.RecordBatchReader, total: int, message: str
    ) -> pa.RecordBatchReader:
        """``reader``, reporting the rows read of ``total`` as progress while a writer
        consumes it: at most once a second, and at the end if it said anything before."""

        def batches() -> Iterator[pa.RecordBatch]:
            done, told, last = 0, False, time.monotonic()
            for batch in reader:
                done += batch.num_rows
                if time.monotonic() - last >= PROGRESS_EVERY:
                    self.progress(f"{message}: {done:,} of {total:,} rows", done=done, total=total)
                    told, last = True, time.monotonic()
                yield batch
            if told:  # a quick one says nothing more
                self.progress(f"{message}: {done:,} of {total:,} rows", done=done, total=total)

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def _emit(self, event: Event) -> None:
        notify(self.observers, event)

    def _finished(self) -> None:
        self.record.scrub(self.scrub)  # before anything leaves the process
        inputs: tuple[str, ...] = ()
        outputs: tuple[str, ...] = ()
        try:
            ins, outs = self._lineage_tables()
            inputs, outputs = (*ins,), (*outs,)
        except Exception as exc:  # the record is written all the same
            self.record.warnings.append(self.scrub(f"could not list the node's tables: {exc}"))
        self._emit(NodeFinished(self.name, self.kind, self.record, inputs, outputs))

    def _run(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """End this run's engine session (``execute`` does; so must other callers)."""
        if self._session is not None:
            self._session.close()
        self._session = None

    def _outcome(self) -> Status:
        return "success"

    def _versions(self) -> dict[str, int | None]:
        return {}

    def _lineage_tables(self) -> tuple[list[str], list[str]]:
        """The qualified tables this node reads and writes (OpenLineage inputs and outputs)."""
        return [], []

    @property
    def session(self) -> Session:
        """This run's engine session (weir.engine.base), from the engine weir.yml names,
        opened when first used; its time is the run's start."""
        if self._session is None:
            self._session = engine_for(self.project).session(started_at=self.record.started_at)
        return self._session

    @contextmanager
    def failing(self, what: str, *, where: str, hint: str) -> Iterator[None]:
        """An engine error in the block, raised as the TransformError ``what``: its message."""
        try:
            yield
        except TransformError as exc:
            # the engine's own advice (out of memory) outranks the caller's general one
            raise TransformError(
                f"{what}: {exc.message}", where=where, hint=exc.hint or hint
            ) from exc
