"""The run of one pipeline: catch up, extract, stage, bronze commit, silver (+ quarantine).

Crash safety comes from ordering and app transactions, not from clean-up code:

1. bronze's app transaction ``weir:<pipeline>`` says which batch last landed, and its commit
   carries the source position; silver and quarantine carry the same batch number;
2. a batch in bronze but not yet in silver is finished from bronze on the next start
   (catch-up) before anything new is extracted;
3. every write first asks the table whether the batch is already there and skips it.

So a process killed anywhere leaves either nothing of a batch, or bronze (and maybe
quarantine) with it — which the next run completes. Nothing is lost or doubled.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from weir import faults, layout
from weir.engine.base import Flagged, Since
from weir.errors import (
    LakeError,
    QualityError,
    ReconciliationError,
    SchemaDriftError,
    SourceError,
    TransientSourceError,
    WeirError,
)
from weir.lake import changes_scd2, scd2
from weir.lake.changes import METRICS as CHANGE_METRICS
from weir.lake.changes import ChangeLoad
from weir.lake.strategies import LoadSpec
from weir.lake.table import Commit, Table
from weir.observe.record import Status
from weir.quality import runner
from weir.quality.result import CheckResult, CheckStatus
from weir.run.checks import NodeContext
from weir.run.deletes import reconcile_deletes
from weir.run.node import NodeRun, Progress, quiet
from weir.run.stage import Staged, stage
from weir.sources.base import PARSE_ERRORS, Position, Source, SourceContext
from weir.sources.files.extraction import FilesExtraction
from weir.sources.problems import REASONS
from weir.spec import Pipeline, Project
from weir.spec.types import arrow_field, storable, type_name
from weir.transform.boundary import Boundary, pii_derived
from weir.transform.definition import changed_parts, describe, pipeline_definition
from weir.transform.drift import diff
from weir.transform.silver import SilverSql


@dataclass
class Tables:
    bronze: Table
    silver: Table
    quarantine: Table

    @classmethod
    def of(cls, project: Project, pipeline: Pipeline) -> Tables:
        contract = pipeline.contract
        hashed = {d.name for d in pii_derived(pipeline)}
        raw = frozenset({c.source_name for c in contract.columns if c.pii} | hashed)
        shaped = frozenset(set(contract.pii_columns) | hashed)

        def uri(layer: str, name: str) -> str:
            return layout.table_uri(project.lake, layer, name)

        return cls(
            bronze=Table(uri("bronze", pipeline.name), label="bronze", private=raw),
            silver=Table(uri("silver", pipeline.table), label="silver", private=shaped),
            quarantine=Table(uri("quarantine", pipeline.name), label="quarantine", private=shaped),
        )

    def versions(self) -> dict[str, int | None]:
        return {t.label: t.version() for t in (self.bronze, self.silver, self.quarantine)}

    def bytes_added(self) -> int:
        return sum(t.bytes_added for t in (self.bronze, self.silver, self.quarantine))


def source_schema(pipeline: Pipeline) -> pa.Schema:
    """The contract's source-side schema: physical names, contract types, never inferred."""
    keys = set(pipeline.keys)
    return pa.schema(
        arrow_field(c.source_name, c.physicalType, nullable=not (c.required or c.name in keys))
        for c in pipeline.contract.columns
    )


class PipelineRun(NodeRun):
    """One execution of one pipeline: source → bronze → silver (+ quarantine)."""

    kind = "pipeline"

    def __init__(
        self,
        project: Project,
        pipeline: Pipeline,
        *,
        run_id: str | None = None,
        wait: bool = False,
        progress: Progress = quiet,
        full_refresh: bool = False,
    ):
        super().__init__(project, pipeline.name, run_id=run_id, wait=wait, progress=progress)
        self.pipeline = pipeline
        self.app_id = f"weir:{pipeline.name}"
        self.tables = Tables.of(project, pipeline)
        self.boundary = Boundary.of(pipeline)
        self.full_refresh = full_refresh

    @functools.cached_property
    def definition(self) -> dict[str, str]:
        """The fingerprint of this pipeline's definition, as silver commits carry it."""
        return pipeline_definition(self.pipeline, self.session.settings())

    def _lineage_tables(self) -> tuple[list[str], list[str]]:
        """OpenLineage inputs and outputs of this pipeline's runs."""
        p = self.pipeline
        outputs = [f"bronze.{p.name}", f"silver.{p.table}", f"quarantine.{p.name}"]
        return [f"source.{p.name}"], outputs

    def _outcome(self) -> Status:
        # partial: the batch landed, but some rows are in quarantine
        return "partial" if self.record.rows_quarantined else "success"

    def _versions(self) -> dict[str, int | None]:
        # at the end of every run, failed ones too: what the commits so far wrote
        self.record.bytes_written = self.tables.bytes_added()
        return self.tables.versions()

    # ---------------------------------------------------------------- the run
    def _run(self) -> None:
        record = self.record
        self.enter("position")
        bronze_batch, position = self.tables.bronze.position(self.app_id)
        describe = self.pipeline.source_kind.describe
        record.watermark_before = describe(position)
        record.watermark_after = record.watermark_before
        silver_batch = self.tables.silver.applied(self.app_id)
        if not self.full_refresh:
            self._note_definition(silver_batch)
            for batch in range(silver_batch + 1, bronze_batch + 1):
                self.enter("catch-up")
                self.progress(f"finishing batch {batch} from bronze (an earlier run stopped early)")
                if position_only(self.tables.bronze, batch):
                    self._mark_silver(batch)
                    record.changed = True
                    continue
                with self._waiting(batch):
                    self._silver(batch, self.tables.bronze.batch_rows(batch), expected_rows=None)
                record.changed = True
        self.enter("extract")
        batch = bronze_batch + 1
        with self._source() as source:  # one connection for probe and extract, closed here
            schema = self._schema(source, position)
            staged, new_position, watermark, keep = self._extract(source, position, schema, batch)
        try:
            if staged.rows == 0 and keep and new_position != position:
                self._keep_position(batch, new_position, watermark or describe(new_position))
                faults.point("source.before_committed")
                source.committed(new_position)
            elif staged.rows == 0:
                self.progress("nothing new")
                self.enter("silver" if record.changed else "up-to-date")  # not "extract"
            else:
                self._land(staged, batch, new_position, watermark or describe(new_position))
                faults.point("source.before_committed")
                source.committed(new_position)  # e.g. advance a CDC slot: bronze holds it now
        finally:
            staged.remove()
        if self.full_refresh:
            self._rebuild(batch if staged.rows else bronze_batch)
        reconcile_deletes(self)  # deletes: {detect: keys}, when due (run/deletes.py)

    def _keep_position(self, batch: int, position: dict[str, Any], watermark: str | None) -> None:
        """Commit the source's position alone (``Extraction.keep_position``): a bronze batch
        without rows, then silver's mark of it (a crash in between is finished by the next
        run's catch-up, which marks silver too)."""
        record = self.record
        self.enter("bronze")
        self.progress(f"no new rows; committing the position alone ({watermark})")
        meta = {POSITION_ONLY: True}
        commit = Commit(self.app_id, batch, self.run_id, record.started_at, position, meta)
        self.tables.bronze.mark(commit)
        faults.point("pipeline.position_only")
        self._mark_silver(batch)
        record.watermark_after = watermark
        record.changed = True

    def _mark_silver(self, batch: int) -> None:
        """Count a position-only bronze batch as applied in silver (no rows, no checks)."""
        self.enter("silver")
        meta = {"weir.definition": self.definition, POSITION_ONLY: True}
        commit = Commit(self.app_id, batch, self.run_id, self.record.started_at, metadata=meta)
        self.tables.silver.mark(commit)

    def _land(
        self, staged: Staged, batch: int, position: dict[str, Any], watermark: str | None
    ) -> None:
        """Commit a staged batch to bronze, and (but on a full refresh) on to silver."""
        record = self.record
        self.enter("bronze")
        self.progress(f"bronze: appending {staged.rows:,} rows as batch {batch}")
        commit = Commit(self.app_id, batch, self.run_id, record.started_at, position)
        if self.full_refresh:  # silver is rebuilt from all of bronze next
            self._write_bronze(staged, commit, watermark)
            return
        # Bronze first, then the transform: on two cores each is CPU-bound, and beside each
        # other they only contended (5M rows: 8.7-9.5 s together against 4.4-4.6 s and then
        # 2.1-2.7 s; bench/RESULTS.md, 2026-12-03).
        self._write_bronze(staged, commit, watermark)
        with self._waiting(batch):
            self._silver(batch, staged.reader(), expected_rows=staged.rows)

    @contextmanager
    def _waiting(self, batch: int) -> Iterator[None]:
        """A batch that reached bronze but cannot reach silver waits there; say the ways out."""
        try:
            yield
        except WeirError as exc:
            if isinstance(exc, LakeError | SourceError):
                raise
            way_out = (
                f"batch {batch} waits in bronze and is tried again on every run: fix the "
                "contract, the rules or the transform and run again, or "
                f"`weir batches reject {self.pipeline.name} {batch} --reason '…'` moves it "
                "whole to quarantine so the pipeline can go on"
            )
            exc.hint = f"{exc.hint}; {way_out}" if exc.hint else way_out
            raise

    # ---------------------------------------------------------------- rebuild
    def _rebuild(self, last: int) -> None:
        """``--full-refresh``: replay every bronze batch into scratch tables with today's
        definition, then replace quarantine and silver with them, one overwrite commit each.

        Until those commits nothing the readers see changes; a rebuild that stops early
        (a failing batch, a crash) leaves both tables as they were."""
        record, live = self.record, self.tables
        self.enter("rebuild")
        if last == 0:
            self.progress("nothing in bronze to rebuild from")
            return
        scratch_dir = self.project.rebuild_dir(self.pipeline.name)
        shutil.rmtree(scratch_dir, ignore_errors=True)
        scratch = Tables(
            bronze=live.bronze,
            silver=Table(str(scratch_dir / "silver"), label="rebuild", private=live.silver.private),
            quarantine=Table(
                str(scratch_dir / "quarantine"), label="rebuild", private=live.quarantine.private
            ),
        )
        rejected = rejected_batches(live.silver)
        kept = {int(i["weir.batch"]) for i in live.bronze.history() if i.get(POSITION_ONLY)}
        self.tables = scratch
        try:
            for batch in range(1, last + 1):
                self.progress(
                    f"rebuilding silver: batch {batch} of {last} from bronze",
                    done=batch - 1,
                    total=last,
                    unit="batches",
                )
                if batch in kept:
                    continue  # no rows; the rebuilt tables' commit counts every batch
                at = self._ingested_at(batch)
                if str(batch) in rejected:
                    self._reject(batch, rejected[str(batch)], at=at)
                    continue
                try:
                    self._silver(batch, live.bronze.batch_rows(batch), expected_rows=None, at=at)
                except WeirError as exc:
                    exc.hint = (
                        f"the rebuild stopped at batch {batch}; silver and quarantine are "
                        "unchanged. " + (exc.hint or "")
                    ).strip()
                    raise
        finally:
            self.tables = live
        commit = Commit(
            self.app_id,
            last,
            self.run_id,
            record.started_at,
            metadata={"weir.definition": self.definition, "weir.rejected": rejected},
        )
        _replace(live.quarantine, scratch.quarantine, commit, [])
        _replace(live.silver, scratch.silver, commit, self.pipeline.spec.load.partition_by)
        shutil.rmtree(scratch_dir, ignore_errors=True)
        record.changed = True
        self.progress(
            f"rebuilt silver.{self.pipeline.table} and its quarantine from {last} batches"
        )

    def _reject(self, batch: int, reason: str, *, at: str | None = None) -> None:
        """Move bronze batch ``batch`` whole to quarantine with ``reason``, and count it as
        applied in silver (with no rows), so the pipeline goes on. One commit each, the
        quarantine's replacing any rows an earlier attempt left for the batch."""
        record, tables = self.record, self.tables
        rows = tables.bronze.batch_rows(batch).read_all()
        plan = SilverSql.plan(self.pipeline, rows.schema)
        commit = Commit(
            self.app_id,
            batch,
            self.run_id,
            at or record.started_at,
            metadata={"weir.definition": self.definition, "weir.rejected": {str(batch): reason}},
        )
        self.enter("quarantine")
        quarantined = plan.rejected(rows, reason, tables.quarantine.schema())
        if tables.quarantine.exists():
            tables.quarantine.write(
                quarantined, commit, mode="overwrite", predicate=f"_batch = {batch}", evolve=True
            )
        else:
            tables.quarantine.write(quarantined, commit)
        self.enter("silver")
        if tables.silver.exists():
            # not a load: an empty batch would be an empty snapshot to scd2's hard deletes
            tables.silver.mark(commit)
        else:  # the first batch: silver is created, shaped by its strategy, with no rows
            empty = pa.RecordBatchReader.from_batches(rows.schema, [])
            with self.session.flag(plan, empty) as flagged:
                self._load_silver(flagged, batch, commit, 0)
        record.rows_quarantined += rows.num_rows
        record.rows_rejected += rows.num_rows
        record.batches.append(batch)

    def _ingested_at(self, batch: int) -> str:
        """When ``batch`` was staged (its ``_ingested_at``), as ISO text."""
        import pyarrow.compute as pc  # imported when used, like pyarrow.dataset
        import pyarrow.dataset as ds

        data = self.tables.bronze.dataset()
        assert data is not None
        times = data.scanner(columns=["_ingested_at"], filter=ds.field("_batch") == batch)
        value = pc.min(times.to_table().column(0)).as_py()
        return value.isoformat() if value is not None else self.record.started_at

    def _note_definition(self, silver_batch: int) -> None:
        """Warn when silver was built with another definition of this pipeline."""
        if silver_batch == 0:
            return
        info = self.tables.silver.commit_metadata(silver_batch) or {}
        before = json.loads(info.get("weir.definition", "null"))
        parts = changed_parts(before, self.definition)
        if not parts:
            return
        message = (
            f"silver.{self.pipeline.table} holds rows built with an earlier definition "
            f"({describe(parts)} changed); `weir run --full-refresh {self.pipeline.name}` "
            "rebuilds silver and quarantine from bronze"
        )
        if "boundary" in parts:
            message += (
                " (rules and derived columns over PII were applied at ingestion: bronze holds "
                "digests, so the changed ones apply to new rows only)"
            )
        self.record.warnings.append(message)

    def _write_bronze(self, staged: Staged, commit: Commit, watermark: str | None) -> None:
        if self.tables.bronze.applied(self.app_id) < commit.batch:
            self.tables.bronze.write(_guarded(staged), commit, evolve=True)
        self.record.changed = True
        self.record.watermark_after = watermark  # the position is committed from here on

    def _source(self) -> Source[Any]:
        contract = self.pipeline.contract
        source_names = {c.name: c.source_name for c in contract.columns}
        context = SourceContext(
            pipeline=self.pipeline.name,
            project_dir=str(self.project.root),
            run_id=self.run_id,
            keys=tuple(source_names[k] for k in self.pipeline.keys if k in source_names),
            pii=tuple(source_names[c] for c in contract.pii_columns),
            notify=self.notice,  # scrubbed, a warning through logging (run/node.py)
            on_parse_error=self.pipeline.spec.on_parse_error,
        )
        return self.pipeline.source_kind(self.pipeline.source_config, context)

    # ---------------------------------------------------------------- schema
    def _schema(self, source: Source[Any], position: Position | None) -> pa.Schema:
        """Contract schema, plus columns evolved earlier or new in the pending data."""
        expected = source_schema(self.pipeline)
        meta = set(layout.INGEST_NAMES) | self.boundary.outputs
        meta |= {f.name for f in source.meta_fields(source.config)}
        meta.add(PARSE_ERRORS)
        fields = list(expected)
        bronze = self.tables.bronze.schema()
        if bronze is not None:
            known = {f.name for f in fields} | meta
            fields += [f for f in bronze if f.name not in known]
            stored = self.boundary.schema(expected)  # PII columns are digests in bronze
            changed = [
                f"    ~ {f.name}: {type_name(bronze.field(f.name).type)} (table) → "
                f"{type_name(f.type)} (contract)"
                for f in stored
                if f.name in bronze.names and bronze.field(f.name).type != f.type
            ]
            if changed:
                raise SchemaDriftError(
                    f"contract {self.pipeline.contract.id!r} changed a column's type, but the "
                    "bronze table holds the old one:\n" + "\n".join(changed),
                    where=self.pipeline.contract.path,
                    hint="revert the type, or rebuild the tables under a new pipeline name "
                    "(a breaking change: bump the contract's version)",
                )
        observed = source.probe(position, expected)
        if observed is not None:
            change = diff(expected, observed, ignore=meta)
            if change.breaking:
                raise SchemaDriftError(
                    change.render(
                        f"the source no longer matches contract {self.pipeline.contract.id!r}:"
                    ),
                    where=self.pipeline.contract.path,
                    hint="update the contract (a breaking change: bump its version) or fix the source; "
                    f"`weir schema diff {self.pipeline.name}` shows this again",
                )
            have = {f.name for f in fields}
            for name, typ in change.added:
                if name in have:
                    continue
                dtype = observed.field(name).type
                if not storable(dtype):  # e.g. only empty objects so far: nothing to keep yet
                    self.record.warnings.append(
                        f"new column {name!r} ({typ}) is not in the contract and has no "
                        "storable type yet (no value, or empty objects only); not kept"
                    )
                    continue
                fields.append(pa.field(name, dtype, nullable=True))
                note = (
                    f"new column {name!r} ({typ}) is not in the contract; tables evolved to keep it"
                )
                self.record.schema_changes.append(note)
                self.record.warnings.append(note)
        return pa.schema(fields)

    # ---------------------------------------------------------------- extract
    def _extract(
        self, source: Source[Any], position: Position | None, schema: pa.Schema, batch: int
    ) -> tuple[Staged, dict[str, Any], str | None, bool]:
        """The staged rows, the position and watermark they reach, whether the source needs
        the position kept even without rows (``Extraction.keep_position``)."""
        handling = self.project.error_handling(self.pipeline)
        attempts = 1 + (handling.max_retries if handling.strategy == "retry" else 0)
        path = self.project.staging_dir(self.pipeline.name) / f"{batch}.arrow"
        for attempt in range(1, attempts + 1):
            self.record.attempts = attempt
            try:
                extraction = source.extract(position, schema)
                offered = pa.schema([*schema, *source.meta_fields(source.config)])
                if self.pipeline.spec.on_parse_error == "quarantine":
                    offered = offered.append(pa.field(PARSE_ERRORS, REASONS))
                staged = stage(
                    extraction,
                    path,
                    schema=self.boundary.schema(offered),
                    run_id=self.run_id,
                    batch=batch,
                    boundary=lambda data: self.session.boundary(self.boundary, data),
                    progress=lambda n: self.progress(f"extracted {n:,} rows", done=n),
                )
                self.record.warnings += extraction.warnings
                if isinstance(extraction, FilesExtraction):
                    self.record.bytes_read += sum(f.size for f in extraction.pending)
                elif staged.rows and staged.path.exists():
                    # other sources: the bytes they delivered, as the staged Arrow file
                    self.record.bytes_read += staged.path.stat().st_size
                if extraction.metrics:
                    self.record.load_metrics.append({"source": source.kind, **extraction.metrics})
                overlap = extraction.overlap()
                if overlap is not None:
                    staged = self._drop_known(staged, schema, overlap)
                self.record.rows_extracted += staged.rows
                reached = extraction.position()
                return staged, reached, extraction.watermark(), extraction.keep_position
            except TransientSourceError as exc:
                if exc.retried or attempt == attempts:
                    # a source that retried by itself already said how often it tried
                    tries = "" if exc.retried else f" (gave up after {attempt} attempts)"
                    raise SourceError(
                        f"{exc.message}{tries}", where=exc.where, hint=exc.hint
                    ) from exc
                delay = handling.retry_delay_seconds * handling.backoff ** (attempt - 1)
                self.progress(f"attempt {attempt} failed ({exc.message}); retrying in {delay:g}s")
                time.sleep(delay)
            except (pa.ArrowException, OSError) as exc:
                raise SourceError(
                    f"reading the source failed: {exc}",
                    hint="see the source's path/URL in the pipeline file",
                ) from exc
        raise AssertionError("unreachable")

    def _drop_known(
        self, staged: Staged, schema: pa.Schema, overlap: tuple[str | None, str | None]
    ) -> Staged:
        """Remove staged rows that bronze already holds (an overlapping re-read)."""
        bronze = self.tables.bronze
        if staged.rows == 0 or not bronze.exists():
            return staged
        column, bound = overlap
        since = None
        if column is not None and bound is not None:
            since = Since(column, schema.field(column).type, bound)
        with self.session.unseen(staged.reader(), bronze, schema.names, since) as fresh:
            replaced = staged.replace(fresh)
        known = staged.rows - replaced.rows
        if known:
            self.record.rows_already_ingested += known
            self.progress(f"{known:,} re-read rows were already in bronze; not ingested again")
        return replaced

    # ---------------------------------------------------------------- silver
    def _silver(
        self,
        batch: int,
        reader: pa.RecordBatchReader,
        *,
        expected_rows: int | None,
        at: str | None = None,
    ) -> None:
        """Transform one batch, quarantine its failing rows and load the rest into silver.

        ``at``: the batch's time (run-time SCD2 versions, the commit); default: this run's
        start, but a rebuild replays each batch at the time it was ingested."""
        record, tables = self.record, self.tables
        self.enter("transform")
        self.session.at(at or record.started_at)
        plan = SilverSql.plan(self.pipeline, reader.schema)
        with self.session.flag(plan, reader) as flagged:
            total, errors = self._checks(plan, flagged, batch)
            valid = total - errors
            if expected_rows is not None and total != expected_rows:
                raise ReconciliationError(
                    f"batch {batch}: staged {expected_rows} rows but transformed {total}"
                )
            self._gate(batch, total, errors)
            commit = Commit(
                self.app_id,
                batch,
                self.run_id,
                at or self.record.started_at,
                metadata={"weir.definition": self.definition},
            )
            quarantined = 0
            if errors:
                self.enter("quarantine")
                rows = flagged.quarantine()
                quarantined = rows.num_rows
                if tables.quarantine.applied(self.app_id) < batch:
                    tables.quarantine.write(rows, commit, evolve=True)
            self.enter("silver")
            written, superseded, late = self._load_silver(flagged, batch, commit, valid)
        # late: scd2 rows that reached the load but opened no version (counted, warned)
        if valid + quarantined != total or written + late + superseded != valid:
            raise ReconciliationError(
                f"batch {batch}: {total} rows in, {valid} valid ({written} written, {late} late, "
                f"{superseded} superseded) and {quarantined} quarantined — the counts do not add up",
                hint="this is a bug in weir; the batch is still in bronze and nothing was lost",
            )
        record.rows_transformed += total
        record.rows_loaded += valid
        record.rows_quarantined += quarantined
        record.rows_rejected += quarantined
        record.rows_superseded += superseded
        record.batches.append(batch)

    def _gate(self, batch: int, total: int, errors: int) -> None:
        """QualityError when the batch's error rows are more than the gates let through."""
        gates = self.pipeline.spec.quality_gates
        if errors and not gates.quarantine:
            raise QualityError(
                f"{errors} rows of batch {batch} fail error-level checks",
                hint="see the checks in the run record; fix the data or the contract",
            )
        if total and errors / total > gates.max_quarantine_ratio:
            raise QualityError(
                f"{errors} of {total} rows of batch {batch} ({errors / total:.1%}) fail error-level "
                f"checks, above quality_gates.max_quarantine_ratio={gates.max_quarantine_ratio}",
                hint="the batch stays in bronze; fix the contract or the source and run again",
            )

    def _load_silver(
        self, flagged: Flagged, batch: int, commit: Commit, valid: int
    ) -> tuple[int, int, int]:
        """Stream the valid, de-duplicated rows into silver; (rows written, rows superseded,
        rows late: scd2 changes older than their key's current version, which open none)."""
        spec, silver = self.pipeline.spec, self.tables.silver
        keys = self.pipeline.keys
        changes = self._changes()
        # change events: the apply counts the events a later one of their key superseded
        superseded = 0
        if keys and changes is None and not self._keys_distinct(batch):
            superseded = valid - flagged.distinct_keys()
        if silver.applied(self.app_id) >= batch:
            return valid - superseded, superseded, 0
        self.progress(
            f"silver: {spec.load.strategy} of {valid - superseded:,} rows into {self.pipeline.table}"
        )
        load_spec = LoadSpec(
            strategy=spec.load.strategy,
            keys=keys,
            partition_by=spec.load.partition_by,
            order_by=spec.transform.dedupe_order_by,
            scd2=spec.load.scd2,
            evolve=True,
            changes=changes,
        )
        message = f"silver: {spec.load.strategy}"
        # the window that keeps the latest row per key runs only when a key repeats
        written, metrics = flagged.load(
            silver,
            commit,
            load_spec,
            dedupe=superseded > 0,
            counting=lambda rows: self.counting(rows, valid - superseded, message),
        )
        keep = (
            "num_target_files_scanned",
            "num_target_files_skipped_during_scan",
            "num_target_rows_inserted",
            "num_target_rows_updated",
            "num_target_rows_deleted",
            "num_source_rows_late",
            "num_hard_deletes",
            "num_hard_deletes_late",
            "hard_deletes_at",
            *CHANGE_METRICS,
            *changes_scd2.METRICS,
        )
        self.record.load_metrics.append(
            {"batch": batch, **{k: metrics[k] for k in keep if k in metrics}}
        )
        if changes is not None:
            stale = metrics["num_changes_stale"]
            superseded = metrics.get("num_changes_superseded", 0)
            # scd2: a change of no tracked column opens no version, like a late row
            unchanged = metrics.get("num_versions_unchanged", 0)
            if stale:
                self.record.warnings.append(
                    f"batch {batch}: {stale} change events at or below their key's applied "
                    "position were not applied (delivered again, or older than what silver holds)"
                )
            return written - stale - superseded - unchanged, superseded, stale + unchanged
        pii = frozenset(self.pipeline.contract.pii_columns)
        self.record.warnings += [f"batch {batch}: {w}" for w in scd2.warnings(metrics, pii)]
        late = int(metrics.get("num_source_rows_late", 0))
        return written - late, superseded, late

    def _keys_distinct(self, batch: int) -> bool:
        """Whether the batch's checks already showed that no key repeats among its valid
        rows: a passing ``unique`` over key columns (valid rows have all of them: keys are
        ``required``), so counting the distinct keys again is not needed."""
        keys = set(self.pipeline.keys)
        return any(
            c.kind == "unique" and c.batch == batch and c.passed and set(c.columns) <= keys
            for c in self.record.checks
            if c.columns
        )

    def _changes(self) -> ChangeLoad | None:
        """How this pipeline's change events load; None: its source yields rows."""
        kind, config = self.pipeline.source_kind, self.pipeline.source_config
        if not kind.emits_changes(config):
            return None
        deletes = kind.deletes(config)
        events = [f.name for f in kind.meta_fields(config)] + list(layout.INGEST_NAMES)
        return ChangeLoad("soft" if deletes is None else deletes.action, tuple(events))

    def _checks(self, plan: SilverSql, flagged: Flagged, batch: int) -> tuple[int, int]:
        """Evaluate every rule's outcome in one aggregate; returns (rows, error rows)."""
        limit = self.pipeline.spec.quality_gates.sample_size
        total, errors, results = flagged.scan(batch=batch, samples=limit)
        context = NodeContext(self.project, self.pipeline.name, self.session, flagged.relation)
        results += runner.evaluate(plan.checks, context, batch=batch)
        if plan.parsed:
            failing, samples = flagged.unparsed(limit)
            status: CheckStatus = "fail" if failing else "pass"
            results.append(
                CheckResult(
                    "parse", "parse", "error", status, failing, samples=tuple(samples), batch=batch
                )
            )
        for result in results:
            self.record.add_check(result)
        return total, errors


def _guarded(staged: Staged) -> pa.RecordBatchReader:
    """The staged rows as a stream that can be killed mid-write by fault injection."""
    reader = staged.reader()
    return pa.RecordBatchReader.from_batches(
        reader.schema, faults.guard("bronze.write", iter(reader))
    )


POSITION_ONLY = "weir.position_only"
"""Commit metadata of a batch that holds no rows, only the source's position."""


def position_only(bronze: Table, batch: int) -> bool:
    """Whether bronze batch ``batch`` was committed for its position alone."""
    info = bronze.commit_metadata(batch) or {}
    return info.get(POSITION_ONLY) == "true"


def rejected_batches(silver: Table) -> dict[str, str]:
    """``{batch: reason}`` of every batch rejected into quarantine (`weir batches reject`),
    from the ``weir.rejected`` metadata of silver's commits."""
    found: dict[str, str] = {}
    for info in reversed(silver.history()):
        found |= json.loads(info.get("weir.rejected", "{}"))
    return found


def _replace(target: Table, built: Table, commit: Commit, partition_by: list[str]) -> None:
    """Overwrite ``target`` with ``built``'s rows, schema and partitioning: one commit."""
    data = built.dataset()
    if data is not None:
        reader = data.scanner().to_reader()
        target.write(
            reader, commit, mode="overwrite", partition_by=partition_by, replace_schema=True
        )
        return
    schema = target.schema()
    if schema is not None:  # nothing left for it: the rebuilt table is empty
        target.write(schema.empty_table(), commit, mode="overwrite")
