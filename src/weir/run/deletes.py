"""A pipeline run's delete reconciliation (``deletes: {detect: keys}``, spec/deletes.py):
whether it is due, the source's keys in the contract's types, the counts in the run record.

The comparison and its one commit are the engine's (``Session.reconcile``,
weir/lake/reconcile.py); this module holds no SQL.

*Due* means: this is the N-th successful run (``every: N``) since the last reconciliation.
The runs are counted in the state store, whose records mark the runs that reconciled
(a ``load_metrics`` entry with ``reconciliation``); silver's last reconciliation commit
(``weir.reconciled_at``) bounds the count too, so a run killed after that commit but before
its record was written is still known to have reconciled. A run killed earlier has no
record and does not count: the next one is due in its place. A ``--full-refresh`` always
reconciles: the rebuild from bronze brought back every row reconciliation had deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from weir.errors import WeirError
from weir.lake import reconcile
from weir.observe.record import RunRecord
from weir.sources.parse import convert
from weir.spec.deletes import Deletes, by_keys
from weir.spec.types import arrow_field
from weir.state.sqlite import StateStore

if TYPE_CHECKING:
    from weir.run.pipeline import PipelineRun

MARK = "reconciliation"
"""The key of the ``load_metrics`` entry a reconciling run records (its number: the app
transaction version of its commit, or the last one when it changed nothing)."""


def settings_of(run: PipelineRun) -> Deletes | None:
    kind, config = run.pipeline.source_kind, run.pipeline.source_config
    return by_keys(kind.deletes(config), emits_changes=kind.emits_changes(config))


def reconcile_deletes(run: PipelineRun) -> None:
    """Reconcile silver with the source's keys when it is due; counts into the record."""
    deletes = settings_of(run)
    silver = run.tables.silver
    if deletes is None or not silver.exists():
        return
    name = run.pipeline.name
    since = runs_since(run, reconcile.last_reconciled(silver, name), deletes.every)
    if not run.full_refresh and since + 1 < deletes.every:
        run.progress(
            f"deletes: reconciled every {deletes.every} runs; this is run {since + 1} "
            "since the last"
        )
        return
    stage = run.record.stage
    run.enter("deletes")
    number = silver.applied(reconcile.app_id(name))
    commit = reconcile.ReconcileCommit(
        reconcile.app_id(name), number + 1, run.run_id, run.record.started_at
    )
    keys = tuple(run.pipeline.keys)
    settings = reconcile.Reconcile(
        keys,
        deletes.action,
        deletes.max_delete_ratio,
        run.record.started_at,
        str(run.pipeline.path),
    )
    with run._source() as source:
        stream = _KeyStream(run, source)
        try:
            metrics = run.session.reconcile(silver, stream.reader(), commit, settings)
        except WeirError:
            if stream.error is not None:  # the source failed while the engine read it
                raise stream.error from None
            raise
    changed = metrics["num_deletes_applied"] > 0 or metrics["num_keys_revived"] > 0
    entry = {MARK: number + 1 if changed else number, "action": deletes.action, **metrics}
    run.record.load_metrics.append(entry)
    run.progress(reconcile.describe(metrics, deletes.action, keys))
    if changed:
        run.record.changed = True
    else:
        run.enter(stage)  # nothing changed: the run stays what it was (up-to-date)


def runs_since(run: PipelineRun, last_at: str | None, every: int) -> int:
    """The successful runs of the pipeline (in the state store) since the last
    reconciliation, counted up to ``every``."""
    if every <= 1:
        return 0
    project = run.project
    store = StateStore(project.root / project.spec.state)
    count = 0
    for row in store.runs(run.pipeline.name, limit=every + 100):
        if last_at is not None and str(row.get("started_at")) <= last_at:
            break
        record = RunRecord.from_dict(row)
        if any(MARK in entry for entry in record.load_metrics):
            break
        if record.status in ("success", "partial"):
            count += 1
            if count >= every:
                break
    return count


class _KeyStream:
    """The source's key batches as silver's key columns, in the contract's types (a value
    that does not convert is NULL, and NULL keys never match); the source's error, kept."""

    def __init__(self, run: PipelineRun, source: Any):
        columns = {c.name: c for c in run.pipeline.contract.columns}
        self.keys = [columns[k] for k in run.pipeline.keys]
        self.source = source
        self.error: BaseException | None = None
        self.schema = pa.schema(arrow_field(c.name, c.physicalType) for c in self.keys)

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        fields = [arrow_field(c.source_name, c.physicalType) for c in self.keys]
        try:
            found = self.source.key_set([f.name for f in fields])
            assert found is not None, "the loader checks that the source lists its keys"
            for batch in found:
                arrays = [
                    convert(batch.column(i), fld).values.cast(self.schema.field(i).type)
                    for i, fld in enumerate(fields)
                ]
                yield pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        except Exception as exc:
            self.error = exc
            raise
