"""``weir verify`` (idempotency proof) and ``weir schema diff``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from weir import layout
from weir.engine.base import engine_for
from weir.lake.table import Table
from weir.observe.record import RunRecord
from weir.run.pipeline import PipelineRun, Tables, source_schema
from weir.spec import Pipeline, Project
from weir.spec.types import arrow_type
from weir.transform.drift import Diff, diff


@dataclass
class VerifyReport:
    pipeline: str
    first: RunRecord
    second: RunRecord
    versions_before: dict[str, int | None]
    versions_after: dict[str, int | None]
    content_before: dict[str, Any] = field(default_factory=dict)
    content_after: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.first.status != "failed"
            and self.second.status != "failed"
            and self.versions_before == self.versions_after
            and self.content_before == self.content_after
        )

    def render(self) -> str:
        head = "✓ idempotent" if self.ok else "✗ NOT idempotent"
        lines = [
            f"{head}: {self.pipeline}",
            f"  run 1 ({self.first.run_id}): {self.first.status}, loaded {self.first.rows_loaded:,}",
            f"  run 2 ({self.second.run_id}): {self.second.status}, loaded {self.second.rows_loaded:,}",
        ]
        for name in self.versions_after:
            before, after = self.versions_before.get(name), self.versions_after[name]
            same = self.content_before.get(name) == self.content_after.get(name)
            lines.append(
                f"  {name:<10} version {before} → {after}   content {'identical' if same else 'CHANGED'}"
            )
        if self.first.status == "failed":
            lines.append(f"  run 1 failed: {self.first.error_message}")
        if self.second.status == "failed":
            lines.append(f"  run 2 failed: {self.second.error_message}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "idempotent": self.ok,
            "versions_before": self.versions_before,
            "versions_after": self.versions_after,
            "content_before": self.content_before,
            "content_after": self.content_after,
            "runs": [self.first.as_dict(), self.second.as_dict()],
        }


def verify(
    project: Project, pipeline: Pipeline, *, progress: Callable[[str], None]
) -> VerifyReport:
    first = PipelineRun(project, pipeline, progress=progress).execute()
    tables = Tables.of(project, pipeline)
    all_tables = (tables.bronze, tables.silver, tables.quarantine)
    versions = tables.versions()
    engine = engine_for(project)
    content = {t.label: engine.fingerprint(t) for t in all_tables}
    second = PipelineRun(project, pipeline, progress=progress).execute()
    return VerifyReport(
        pipeline.name,
        first,
        second,
        versions,
        tables.versions(),
        content,
        {t.label: engine.fingerprint(Table(t.uri, label=t.label)) for t in all_tables},
    )


def schema_diff(project: Project, pipeline: Pipeline) -> list[tuple[str, Diff]]:
    """Contract vs pending source data, and contract vs the silver table."""
    project.require_env([pipeline.name])  # it reads the source
    run = PipelineRun(project, pipeline)
    _, position = run.tables.bronze.position(run.app_id)
    meta = set(layout.INGEST_NAMES) | set(pipeline.source_kind.meta_columns)
    sections: list[tuple[str, Diff]] = []
    expected = source_schema(pipeline)
    with run._source() as source:
        observed = source.probe(position, expected)
    if observed is None:
        sections.append(("contract vs source: no pending data to compare", Diff()))
    else:
        sections.append(
            (
                f"contract {pipeline.contract.id!r} vs pending source data",
                diff(expected, observed, ignore=meta),
            )
        )
    silver = run.tables.silver.schema()
    if silver is not None:
        wanted = _silver_expected(pipeline)
        generated = layout.SILVER_GENERATED
        extra = {f.name for f in silver if f.name not in {w.name for w in wanted}}
        sections.append(
            (
                f"contract vs silver table {pipeline.table!r}",
                diff(wanted, silver, ignore=meta | generated | extra),
            )
        )
    return sections


def _silver_expected(pipeline: Pipeline) -> Any:
    import pyarrow as pa

    pii = set(pipeline.contract.pii_columns)
    fields = [
        pa.field(c.name, pa.string() if c.name in pii else arrow_type(c.physicalType))
        for c in pipeline.contract.columns
    ]
    fields += [pa.field(d.name, arrow_type(d.type)) for d in pipeline.spec.transform.derived]
    return pa.schema(fields)
