"""The batches of a pipeline between bronze and silver: list them, and reject one.

Every extraction lands in bronze as one numbered batch before silver sees it. A batch that
silver cannot take (its rows fail a gate, the transform fails on them) waits in bronze and is
tried again, with the current contract and rules, on every run — so fixing the definition is
one way out. ``weir batches reject`` is the other: it moves the whole batch to quarantine
with a reason, marks it applied in silver, and the pipeline goes on. Nothing is lost: the
rows stay in bronze and in quarantine, and the rejection is a run record of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from weir.errors import UsageError
from weir.observe.record import Status
from weir.run.node import Progress, quiet
from weir.run.pipeline import PipelineRun, Tables, rejected_batches
from weir.spec import Pipeline, Project

BatchStatus = Literal["loaded", "pending", "rejected"]


@dataclass(frozen=True)
class Batch:
    number: int
    status: BatchStatus
    rows: int | None
    run_id: str | None
    ingested_at: str | None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch": self.number,
            "status": self.status,
            "rows": self.rows,
            "run_id": self.run_id,
            "ingested_at": self.ingested_at,
            "reason": self.reason,
        }


def list_batches(project: Project, pipeline: Pipeline) -> list[Batch]:
    """Every batch bronze holds, oldest first, with what became of it in silver."""
    tables = Tables.of(project, pipeline)
    app_id = f"weir:{pipeline.name}"
    applied = tables.silver.applied(app_id)
    rejected = rejected_batches(tables.silver)
    found = []
    for info in reversed(tables.bronze.history()):
        if "weir.batch" not in info:
            continue
        number = int(info["weir.batch"])
        metrics = info.get("operationMetrics", {})
        status: BatchStatus = "pending" if number > applied else "loaded"
        if str(number) in rejected:
            status = "rejected"
        stamp = datetime.fromtimestamp(info["timestamp"] / 1000, UTC)
        found.append(
            Batch(
                number=number,
                status=status,
                rows=metrics.get("num_added_rows"),
                run_id=info.get("weir.run_id"),
                ingested_at=stamp.isoformat(timespec="seconds"),
                reason=rejected.get(str(number)),
            )
        )
    return found


class RejectRun(PipelineRun):
    """A run of a pipeline that only rejects its next pending batch into quarantine."""

    def __init__(
        self,
        project: Project,
        pipeline: Pipeline,
        batch: int,
        reason: str,
        *,
        progress: Progress = quiet,
    ):
        super().__init__(project, pipeline, progress=progress)
        if not reason.strip():
            raise UsageError("--reason is required", hint="say why the batch is rejected")
        self.batch = batch
        self.reason = reason.strip()

    def check(self) -> None:
        """UsageError unless the batch is the next one silver waits for."""
        tables, name = self.tables, self.pipeline.name
        bronze = tables.bronze.applied(self.app_id)
        applied = tables.silver.applied(self.app_id)
        if not applied < self.batch <= bronze:
            state = "in silver already" if self.batch <= applied else "not in bronze"
            raise UsageError(
                f"batch {self.batch} of {name} is {state}; only a pending batch can be rejected",
                hint=f"`weir batches {name}` lists the batches and their status",
            )
        if self.batch != applied + 1:
            raise UsageError(
                f"batch {applied + 1} of {name} is pending before batch {self.batch}",
                hint="batches reach silver in order: load or reject the earlier one first",
            )

    def _run(self) -> None:
        record = self.record
        self.enter("position")
        self.check()  # again, under the pipeline's lock
        self.progress(f"moving batch {self.batch} whole to quarantine: {self.reason}")
        self._reject(self.batch, self.reason)
        self.enter("rejected")
        record.warnings.append(f"batch {self.batch} rejected into quarantine: {self.reason}")
        record.changed = True

    def _outcome(self) -> Status:
        return "partial"
