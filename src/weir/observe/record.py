"""The run record: one per run, as a JSON line and as a row in the state store."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from weir.quality.result import CheckResult

Status = Literal["running", "success", "failed", "partial", "skipped"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class RunRecord:
    pipeline_name: str
    run_id: str
    started_at: str = field(default_factory=now_iso)
    completed_at: str | None = None
    status: Status = "running"
    stage: str = "start"
    rows_extracted: int = 0
    rows_transformed: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    quality_checks_passed: int = 0
    quality_checks_failed: int = 0
    duration_seconds: float = 0.0
    error_message: str | None = None
    watermark_before: str | None = None
    watermark_after: str | None = None
    # weir's additions
    kind: Literal["pipeline", "model", "dbt"] = "pipeline"
    rows_quarantined: int = 0
    rows_superseded: int = 0
    rows_already_ingested: int = 0
    batches: list[int] = field(default_factory=list)
    table_versions: dict[str, int | None] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    """Every check's outcome: per batch and rule for pipelines, per rule for models, per
    test and source freshness for dbt steps."""
    load_metrics: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    schema_changes: list[str] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    """Per-node results of a dbt step (unique_id, resource_type, status, timing, message)."""
    bytes_read: int = 0
    """Bytes of source data read: the sizes of the files a files source read; 0 where the
    run cannot know them cheaply (REST, SQL, Kafka, memory sources; models; dbt)."""
    bytes_written: int = 0
    """Bytes of the Delta data files the run's commits added (bronze, silver, quarantine,
    gold); 0 for dbt steps (dbt writes its own warehouse)."""
    attempts: int = 1
    changed: bool = False
    target: str | None = None
    """The weir.yml target the run used (``--target``), None without one."""
    definition: dict[str, str] = field(default_factory=dict)
    """A dbt step's definition fingerprint (transform/definition.py) as the run found it;
    pipelines and models carry theirs with their tables instead."""
    _t0: float = field(default_factory=time.monotonic, repr=False)

    def add_check(self, result: CheckResult) -> None:
        """Record one check's outcome and count it as passed or failed."""
        self.checks.append(result)
        self.quality_checks_failed += result.failed
        self.quality_checks_passed += not result.failed

    def finish(self, status: Status, error: str | None = None) -> None:
        self.status = status
        self.error_message = error
        self.completed_at = now_iso()
        self.duration_seconds = round(time.monotonic() - self._t0, 3)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_t0")
        data["checks"] = [c.as_dict() for c in self.checks]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """A record as :meth:`as_dict` wrote it (a line of ``runs.jsonl``, a row of the
        state store), also one an earlier weir wrote: checks in their old shapes are read
        into :class:`CheckResult`, fields this weir does not know are left out."""
        known = {f.name for f in fields(cls) if f.init and not f.name.startswith("_")}
        values = {k: v for k, v in data.items() if k in known}
        values["checks"] = [CheckResult.from_dict(c) for c in data.get("checks") or []]
        return cls(**values)

    def scrub(self, scrub: Scrubber) -> None:
        """Remove secret values from every text the record holds (messages, warnings,
        positions, check samples), before anyone prints or stores it."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "checks":
                self.checks = [c.with_text(scrub.deep) for c in self.checks]
            elif isinstance(value, str | list | dict):
                setattr(self, f.name, scrub.deep(value))


class Scrubber:
    """Replaces every secret value (env-supplied credentials, the PII salt) with ``***``."""

    def __init__(self, secrets: frozenset[str]):
        self.secrets = sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def deep(self, value: Any) -> Any:
        """``value`` with every string inside it (lists, dicts) scrubbed."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        return value


_active: list[Scrubber] = []
_lock = threading.Lock()
_plain_factory = logging.getLogRecordFactory()


def _scrubbing_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _plain_factory(*args, **kwargs)
    if _active:
        text = record.getMessage()
        for scrub in list(_active):
            text = scrub(text)
        record.msg, record.args = text, None
    return record


@contextmanager
def scrubbed_logging(scrub: Scrubber) -> Iterator[None]:
    """While active, every log record of every library (weir, httpx, …) has ``scrub``'s
    secrets replaced before any handler sees it."""
    with _lock:
        _active.append(scrub)
        logging.setLogRecordFactory(_scrubbing_factory)
    try:
        yield
    finally:
        with _lock:
            _active.remove(scrub)
            if not _active:
                logging.setLogRecordFactory(_plain_factory)


def emit(record: RunRecord, destination: str, project_root: Path, scrub: Scrubber) -> None:
    """Write the record as one JSON line to ``destination`` (a path or ``stderr``)."""
    line = scrub(json.dumps(record.as_dict(), default=str, sort_keys=True))
    if destination == "stderr":
        print(line, file=sys.stderr, flush=True)
        return
    path = Path(destination)
    if not path.is_absolute():
        path = project_root / path
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
