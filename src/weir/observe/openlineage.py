"""OpenLineage run events: ``START`` once a run holds its lock, ``COMPLETE`` or ``FAIL`` when
it ends. Configured in weir.yml (see docs/lineage.md)::

    openlineage:
      file: .weir/openlineage.jsonl     # one JSON line per event, appended
      url: http://localhost:5000/api/v1/lineage
      namespace: shop                   # jobs' namespace; default: the project's name
      api_key_env: OPENLINEAGE_API_KEY  # bearer token for url (never written anywhere)

Datasets are named by their qualified table (``silver.orders``) in the namespace of the lake
(its URI); a pipeline's source is ``source.<pipeline>`` in the jobs' namespace. Output
datasets carry ``schema``, ``columnLineage`` and ``dataQualityAssertions`` facets.

Lineage is an observer of a run's events (:mod:`weir.observe.events`): ``NodeStarted``
sends START, ``NodeFinished`` sends COMPLETE, FAIL or ABORT. Nothing here fails a run: a file
that cannot be written or an endpoint that is down becomes a warning in the run record, with
secrets scrubbed. :func:`weir.observe.observers.observers_for` adds it when weir.yml
configures it.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from weir import __version__, layout
from weir.observe.events import Event, NodeFinished, NodeStarted
from weir.observe.record import RunRecord, Scrubber

if TYPE_CHECKING:  # imported where an event is built: a run without OpenLineage needs neither
    from weir.spec import Project
    from weir.spec.project import OpenLineage
    from weir.transform.lineage import ColumnLineage, Lineage, SourceColumn

PRODUCER = f"urn:weir:{__version__}"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_FACETS = "https://openlineage.io/spec/facets"
FACET_SCHEMAS = {
    "schema": f"{_FACETS}/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "columnLineage": f"{_FACETS}/1-2-0/ColumnLineageDatasetFacet.json"
    "#/$defs/ColumnLineageDatasetFacet",
    "dataQualityAssertions": f"{_FACETS}/1-0-1/DataQualityAssertionsDatasetFacet.json"
    "#/$defs/DataQualityAssertionsDatasetFacet",
    "errorMessage": f"{_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "processing_engine": f"{_FACETS}/1-1-1/ProcessingEngineRunFacet.json"
    "#/$defs/ProcessingEngineRunFacet",
}
_SUBTYPE = {"copy": "IDENTITY", "transform": "TRANSFORMATION", "aggregate": "AGGREGATION"}
_FILE_LOCK = threading.Lock()


def run_uuid(namespace: str, job: str, run_id: str) -> str:
    """The OpenLineage runId of a weir run: stable, so START and its end share it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"weir:{namespace}/{job}/{run_id}"))


def _facet(facet: str, /, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": FACET_SCHEMAS[facet], **fields}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _safe_url(url: str) -> str:
    """The URL without credentials or query string, for messages."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


class LineageEmitter:
    """Sends a run's events to the configured file and/or URL; does nothing when disabled.

    As an observer (called with run events) it sends START when a node starts and its end
    when it finishes, adding the warnings of both to the record, so it must hear
    ``NodeFinished`` before the run-record writer does. :meth:`start` and :meth:`finish`
    are the same without events."""

    def __init__(
        self,
        project: Project | None = None,
        config: OpenLineage | None = None,
        environ: Mapping[str, str] | None = None,
    ):
        self.project = project
        self.config = config
        env = os.environ if environ is None else environ
        self._token = env.get(config.api_key_env, "") if config and config.api_key_env else ""
        secrets = set(project.secrets if project else ())
        self.scrub = Scrubber(frozenset(secrets | ({self._token} if self._token else set())))
        self._runs: dict[str, str] = {}
        self._warnings: dict[str, list[str]] = {}
        self._lineage: Lineage | None = None
        self._lineage_error: str | None = None

    @classmethod
    def for_project(cls, project: Project) -> LineageEmitter:
        config = project.spec.openlineage
        if config is None or not (config.file or config.url):
            return cls()
        return cls(project, config)

    @property
    def enabled(self) -> bool:
        return self.project is not None and self.config is not None

    @property
    def namespace(self) -> str:
        assert self.project is not None and self.config is not None
        return self.config.namespace or self.project.spec.name

    # ---------------------------------------------------------------- the API
    def __call__(self, event: Event) -> None:
        if isinstance(event, NodeStarted):
            self.start(event.node, event.run_id, list(event.inputs), list(event.outputs))
        elif isinstance(event, NodeFinished):
            record = event.record
            record.warnings += self.finish(record, list(event.inputs), list(event.outputs))

    def start(self, job: str, run_id: str, inputs: list[str], outputs: list[str]) -> None:
        """Emit START for ``job``'s run ``run_id`` (qualified table names in and out)."""
        if not self.enabled:
            return
        self._runs[run_id] = job
        warnings = self._warnings.setdefault(run_id, [])
        try:
            event = self._event("START", job, run_id, inputs, outputs, None, None)
        except Exception as exc:  # an observer never fails the run it observes
            warnings.append(self.scrub(f"OpenLineage: START event not built: {exc}"))
            return
        warnings += self._send(event)
        if self._lineage_error:
            warnings.append(self.scrub(self._lineage_error))

    def finish(
        self,
        record: RunRecord,
        inputs: list[str],
        outputs: list[str],
        column_lineage: Mapping[str, Sequence[ColumnLineage]] | None = None,
    ) -> list[str]:
        """Emit COMPLETE (success, partial) or FAIL (failed) for a started run; returns the
        warnings of both events. ``column_lineage`` maps an output table to its columns'
        lineage; left out, weir derives it for pipeline and model tables."""
        if not self.enabled or record.run_id not in self._runs:
            return []
        job = self._runs.pop(record.run_id)
        warnings = self._warnings.pop(record.run_id, [])
        kind = {"failed": "FAIL", "skipped": "ABORT"}.get(record.status, "COMPLETE")
        try:
            event = self._event(kind, job, record.run_id, inputs, outputs, record, column_lineage)
        except Exception as exc:  # an observer never fails the run it observes
            return [*warnings, self.scrub(f"OpenLineage: {kind} event not built: {exc}")]
        warnings += self._send(event)
        if self._lineage_error and self._lineage_error not in warnings:
            warnings.append(self.scrub(self._lineage_error))
        return warnings

    # ---------------------------------------------------------------- events
    def _event(
        self,
        kind: str,
        job: str,
        run_id: str,
        inputs: list[str],
        outputs: list[str],
        record: RunRecord | None,
        column_lineage: Mapping[str, Sequence[ColumnLineage]] | None,
    ) -> dict[str, Any]:
        run_facets: dict[str, Any] = {
            "processing_engine": _facet(
                "processing_engine",
                version=__version__,
                name="weir",
                openlineageAdapterVersion=__version__,
            )
        }
        if record is not None and record.status == "failed" and record.error_message:
            run_facets["errorMessage"] = _facet(
                "errorMessage",
                message=self.scrub(record.error_message),
                programmingLanguage="python",
            )
        out = [self._dataset(t) for t in outputs]
        if record is not None:
            given = dict(column_lineage or {})
            for dataset in out:
                self._output_facets(dataset, record, given)
        return {
            "eventType": kind,
            "eventTime": _now(),
            "producer": PRODUCER,
            "schemaURL": SCHEMA_URL,
            "run": {"runId": run_uuid(self.namespace, job, run_id), "facets": run_facets},
            "job": {"namespace": self.namespace, "name": job, "facets": {}},
            "inputs": [self._dataset(t) for t in inputs],
            "outputs": out,
        }

    def lineage(self) -> Lineage | None:
        """The project's lineage for schema and column facets; None when it cannot be built
        (the events then go out without those facets, and the run gets a warning)."""
        if self._lineage is None and self._lineage_error is None:
            assert self.project is not None
            try:
                from weir.transform.lineage import project_lineage

                self._lineage = project_lineage(self.project)
            except Exception as exc:  # facets are optional; the events still go out
                self._lineage_error = f"OpenLineage: schema and column facets left out: {exc}"
        return self._lineage

    def dataset_namespace(self, table: str) -> str:
        assert self.project is not None
        if table.partition(".")[0] not in layout.LAYERS:
            return self.namespace
        lake = self.project.lake
        return lake if "://" in lake else Path(lake).as_uri()

    def _dataset(self, table: str) -> dict[str, Any]:
        dataset: dict[str, Any] = {
            "namespace": self.dataset_namespace(table),
            "name": table,
            "facets": {},
        }
        lineage = self.lineage()
        columns = lineage.schemas.get(table) if lineage else None
        if columns:
            fields = [{"name": c.name, "type": c.type} for c in columns]
            dataset["facets"]["schema"] = _facet("schema", fields=fields)
        return dataset

    def _output_facets(
        self,
        dataset: dict[str, Any],
        record: RunRecord,
        given: Mapping[str, Sequence[ColumnLineage]],
    ) -> None:
        table = dataset["name"]
        columns = given.get(table) or self._derived_columns(table)
        fields = {c.column: {"inputFields": self._input_fields(c)} for c in columns}
        fields = {name: f for name, f in fields.items() if f["inputFields"]}
        if fields:
            dataset["facets"]["columnLineage"] = _facet("columnLineage", fields=fields)
        if record.checks and table.partition(".")[0] in ("silver", "gold"):
            names = {f["name"] for f in dataset["facets"].get("schema", {}).get("fields", [])}
            dataset["facets"]["dataQualityAssertions"] = _facet(
                "dataQualityAssertions", assertions=assertions(record, names)
            )

    def _derived_columns(self, table: str) -> Sequence[ColumnLineage]:
        from weir.transform.lineage import ColumnLineage, SourceColumn, silver_column

        lineage = self.lineage()
        if lineage is None:
            return []
        if table in lineage.models:
            return lineage.models[table].columns
        layer, _, name = table.partition(".")
        if layer == "silver":
            return [silver_column(lineage.project, table, c.name) for c in lineage.schemas[table]]
        if layer == "bronze" and f"source.{name}" in lineage.schemas:
            return [
                ColumnLineage(
                    table, c.name, "copy", (SourceColumn(f"source.{name}", c.name, "copy"),)
                )
                for c in lineage.schemas[f"source.{name}"]
            ]
        return []

    def _input_fields(self, column: ColumnLineage) -> list[dict[str, Any]]:
        fields = []
        lineage = self.lineage()
        sources = _resolve_silver(lineage, column) if lineage else list(column.sources)
        for src in sources:
            transformation: dict[str, Any] = {
                "type": "DIRECT",
                "subtype": _SUBTYPE.get(src.kind, "TRANSFORMATION"),
                "masking": column.reason is not None and column.reason.startswith("PII"),
            }
            if column.expression:
                transformation["description"] = column.expression
            fields.append(
                {
                    "namespace": self.dataset_namespace(src.table),
                    "name": src.table,
                    "field": src.column,
                    "transformations": [transformation],
                }
            )
        return fields

    # ---------------------------------------------------------------- transports
    def _send(self, event: dict[str, Any]) -> list[str]:
        assert self.project is not None and self.config is not None
        line = json.dumps(event, default=str, sort_keys=True)
        warnings = []
        if self.config.file:
            path = self.project.root / self.config.file
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with _FILE_LOCK, path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            except OSError as exc:
                warnings.append(f"OpenLineage: could not append to {path}: {exc}")
        if self.config.url:
            warnings += self._post(self.config.url, line, event["eventType"])
        return [self.scrub(w) for w in warnings]

    def _post(self, url: str, body: str, kind: str) -> list[str]:
        assert self.config is not None
        headers = {"Content-Type": "application/json"}
        if self.config.api_key_env:
            if not self._token:
                return [
                    f"OpenLineage: {kind} not sent to {_safe_url(url)}: environment variable "
                    f"{self.config.api_key_env} (openlineage.api_key_env) is not set"
                ]
            headers["Authorization"] = f"Bearer {self._token}"
        import httpx  # only where events are posted (start-up of every other run)

        try:
            response = httpx.post(
                url, content=body, headers=headers, timeout=self.config.timeout_seconds
            )
        except httpx.HTTPError as exc:
            reason = str(exc).replace(url, _safe_url(url))
            return [
                f"OpenLineage: {kind} not sent to {_safe_url(url)}: {type(exc).__name__}: {reason}"
            ]
        if response.status_code >= 300:
            return [
                f"OpenLineage: {_safe_url(url)} answered {kind} with HTTP {response.status_code}"
            ]
        return []


def _resolve_silver(lineage: Lineage, column: ColumnLineage) -> list[SourceColumn]:
    """Inputs of a column as datasets of another job: a silver column made from its own
    table's columns (derived, surrogate key) is traced to their source columns."""
    from weir.transform.lineage import SourceColumn, silver_column

    if not column.table.startswith("silver."):
        return list(column.sources)
    out = []
    for src in column.sources:
        if src.table == column.table:
            inner = silver_column(lineage.project, src.table, src.column)
            out += [SourceColumn(s.table, s.column, "transform") for s in inner.sources]
        else:
            out.append(src)
    return list(dict.fromkeys(out))


def assertions(record: RunRecord, columns: set[str]) -> list[dict[str, Any]]:
    """The run's checks as OpenLineage assertions: one per check (failed in any batch →
    ``success: false``), with the column when the check's name starts with one."""
    merged: dict[str, bool] = {}
    for check in record.checks:
        merged[check.name] = merged.get(check.name, True) and check.passed
    out = []
    for name, success in merged.items():
        item: dict[str, Any] = {"assertion": name, "success": success}
        column = next((part for part in name.split(".") if part in columns), None)
        if column is not None:
            item["column"] = column
        out.append(item)
    return out
