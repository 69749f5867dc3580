"""``weir forget``: remove a data subject from every table that holds it, and the files.

Under the lock of every node that writes (or reads mid-way) the tables concerned:

1. find the subject (forget/plan.py): in silver first, whose rows give the keys and PII
   digests that locate it in gold, then in bronze, quarantine and gold;
2. redact the run records that mention it (forget/records.py);
3. per table, gold first: one DELETE commit naming the forget's audit id (no app
   transaction, no ``weir.batch``: every pipeline's and model's position stays where it
   was), then the removal of every file that still holds the subject, past any vacuum
   retention (lake/purge.py);
4. the audit entry: a row in the state store's ``audit`` table (written at the start with
   status ``running``, completed at the end) and a JSON line in ``.weir/audit.jsonl``.

Without ``apply`` it stops after 1 and says what would be done. A forget that stops half-way
is finished by running it again: each step finds what is left.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from weir.engine.duckdb import connect
from weir.errors import LakeError, UsageError
from weir.forget import plan
from weir.forget.plan import Target, Unlocated
from weir.forget.records import Redaction, redact
from weir.forget.rows import find, predicate
from weir.forget.subject import Request, Subject, resolve
from weir.lake import purge
from weir.observe.record import now_iso
from weir.run.lock import pipeline_lock
from weir.run.node import Progress, quiet
from weir.spec import Project
from weir.state.sqlite import StateStore
from weir.transform.lineage import project_lineage


@dataclass
class TableResult:
    table: str
    rows: int = 0
    """The subject's rows in the current snapshot (deleted, when applied)."""
    files: int = 0
    """Files holding the subject: removed (applied), or to remove (dry run)."""
    unreadable: int = 0
    """Unreferenced files that are not readable parquet (removed with the others)."""
    version: int | None = None
    """The DELETE commit's version."""
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rows": self.rows,
            "files": self.files,
            "unreadable_files": self.unreadable,
            "version": self.version,
            "note": self.note,
        }


@dataclass
class Outcome:
    audit_id: str
    subject: Subject
    reason: str
    applied: bool
    started_at: str = field(default_factory=now_iso)
    completed_at: str | None = None
    status: str = "running"
    tables: list[TableResult] = field(default_factory=list)
    unlocated: list[Unlocated] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)
    scratch: int = 0
    """Files that runs killed half-way left in .weir/ (staged batches, rebuild tables)."""
    warnings: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        tables = any(t.rows or t.files for t in self.tables)
        return tables or any(self.records.values()) or bool(self.scratch)

    def as_dict(self) -> dict[str, Any]:
        """The audit entry (and the ``--json`` output): no raw value, no digest."""
        return {
            "audit_id": self.audit_id,
            "action": "forget",
            "applied": self.applied,
            "status": self.status,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "selector": self.subject.as_dict(),
            "reason": self.reason,
            "tables": [t.as_dict() for t in self.tables],
            "not_located": [
                {"table": u.name, "kind": u.kind, "note": u.note} for u in self.unlocated
            ],
            "records_redacted": self.records,
            "scratch_files": self.scratch,
            "warnings": self.warnings,
        }


def forget(
    project: Project,
    request: Request,
    reason: str,
    *,
    apply: bool = False,
    wait: bool = False,
    progress: Progress = quiet,
) -> Outcome:
    """Find the subject ``request`` names and, with ``apply``, forget it (see the module)."""
    subject = resolve(project, request)
    reason = _checked_reason(reason, subject)
    outcome = Outcome(uuid.uuid4().hex[:12], subject, reason, apply)
    lineage = project_lineage(project)
    reach = plan.scope(project, subject)
    with _locked(project, reach.locks if apply else [], wait):
        progress(f"looking for {subject.describe()}")
        targets, identities = plan.pipeline_targets(project, subject)
        gold, outcome.unlocated = plan.gold_targets(project, lineage, reach, identities)
        targets = [t for t in targets if t.table.exists()]
        for target in targets:
            if target.table.dt is not None and not target.found.searched:
                target.found = find(target.table.dt, target.matchers, target.wanted)
        for target in gold:
            assert target.table.dt is not None
            target.found = find(target.table.dt, target.matchers)
        outcome.warnings += plan.elsewhere(project, subject, identities)
        redaction = _redaction(project, subject, targets, identities)
        pipelines = [s.pipeline.name for s in subject.selections]
        if not apply:
            outcome.scratch = _scratch(project, pipelines, apply=False)
            outcome.records = redact(project, redaction, apply=False)
            outcome.tables = [_survey(t) for t in [*gold, *_ordered(targets)]]
            outcome.status = "dry run"
            outcome.completed_at = now_iso()
            return outcome
        _apply(project, outcome, redaction, [*gold, *_ordered(targets)], progress)
    return outcome


def _checked_reason(reason: str, subject: Subject) -> str:
    reason = reason.strip()
    if not reason:
        raise UsageError("--reason is required", hint="say why, e.g. a request's ticket number")
    if any(len(s) >= 4 and s in reason for s in subject.secrets):
        raise UsageError(
            "--reason contains the value being forgotten; the audit keeps the reason",
            hint="describe the request without the value (a ticket number, say)",
        )
    return reason


@contextmanager
def _locked(project: Project, names: list[str], wait: bool) -> Iterator[None]:
    with ExitStack() as stack:
        for name in sorted(names):
            stack.enter_context(pipeline_lock(project.state_dir, name, wait=wait))
        yield


def _ordered(targets: list[Target]) -> list[Target]:
    """silver, quarantine, then bronze: a forget stopped half-way still finds the subject's
    keys in silver when it is run again."""
    rank = {"silver": 0, "quarantine": 1, "bronze": 2}
    return sorted(targets, key=lambda t: rank.get(t.name.partition(".")[0], 3))


def _redaction(
    project: Project, subject: Subject, targets: list[Target], identities: list[plan.Identity]
) -> Redaction:
    """What to mask in run records: samples of the subject's keys, and its texts (string
    keys, digests, raw values) anywhere."""
    keys: dict[str, list[dict[str, str]]] = {}
    texts = set(subject.secrets)
    con = connect(memory_limit="256MB")
    try:
        for selection in subject.selections:
            found, strings = plan.key_texts(con, selection.pipeline, targets)
            keys[selection.pipeline.name] = found
            texts |= strings
    finally:
        con.close()
    for selection in subject.selections:
        if subject.by == "key":
            pii = set(selection.pipeline.contract.pii_columns)
            given = zip(selection.columns, selection.values, strict=True)
            keys[selection.pipeline.name].append({c: str(v) for c, v in given if c not in pii})
    texts |= {d for i in identities for ds in i.digests.values() for d in ds}
    return Redaction(keys, frozenset(texts))


def _scratch(project: Project, pipelines: list[str], *, apply: bool) -> int:
    """Leftovers of runs killed half-way, which may hold the subject: staged batches and the
    scratch tables of an interrupted rebuild (run/pipeline.py). Under the pipelines' locks
    no run uses them, and the next run extracts or rebuilds them anew, so they go whole."""
    count = 0
    for name in pipelines:
        for folder in (project.staging_dir(name), project.rebuild_dir(name)):
            if folder.is_dir():
                count += sum(1 for f in folder.rglob("*") if f.is_file())
                if apply:
                    shutil.rmtree(folder)
    return count


def _survey(target: Target) -> TableResult:
    """What an apply would do to ``target``: its rows, and every file holding them."""
    result = TableResult(target.name, rows=target.found.rows, note=target.note)
    if not target.matchers or target.table.dt is None:
        return result
    current, other = purge.files(target.table.uri)
    found = _scan(target, [*current, *other])
    result.files = len(found.holding) + len(found.unreadable)
    result.unreadable = len(found.unreadable)
    return result


def _scan(target: Target, paths: list[str]) -> purge.Scan:
    schema = target.table.schema()
    assert schema is not None
    return purge.scan(target.table.uri, paths, target.columns, target.holds, schema)


def _apply(
    project: Project,
    outcome: Outcome,
    redaction: Redaction,
    targets: list[Target],
    progress: Progress,
) -> None:
    store = StateStore(project.root / project.spec.state)
    store.save_audit(outcome.as_dict())
    try:
        pipelines = [s.pipeline.name for s in outcome.subject.selections]
        outcome.scratch = _scratch(project, pipelines, apply=True)
        outcome.records = redact(project, redaction, apply=True)
        for target in targets:
            outcome.tables.append(_forget_in(target, outcome, progress))
        outcome.status = "done"
    except BaseException:
        outcome.status = "failed"
        raise
    finally:
        outcome.completed_at = now_iso()
        store.save_audit(outcome.as_dict())
        path = project.state_dir / "audit.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(outcome.as_dict(), default=str, sort_keys=True) + "\n")


def _forget_in(target: Target, outcome: Outcome, progress: Progress) -> TableResult:
    """One DELETE commit of the subject's rows in ``target``, then the files."""
    result = TableResult(target.name, rows=target.found.rows, note=target.note)
    table = target.table
    if not target.matchers or table.dt is None:
        return result
    if target.found.rows:
        progress(f"{target.name}: deleting {target.found.rows:,} rows")
        metrics = table.delete(predicate(table.dt, target.found), {"weir.forget": outcome.audit_id})
        result.version = table.version()
        deleted = int(metrics.get("num_deleted_rows", 0))
        if deleted != target.found.rows:
            outcome.warnings.append(
                f"{target.name}: found {target.found.rows} rows of the subject, deleted {deleted}"
            )
        assert table.dt is not None
        left = find(table.dt, target.matchers).rows
        if left:
            raise LakeError(
                f"{left} rows of the subject remain in {target.name} after the delete",
                where=table.uri,
                hint="run the same `weir forget` again; it deletes what is left",
            )
    _, other = purge.files(table.uri)
    found = _scan(target, other)
    result.unreadable = len(found.unreadable)
    result.files = purge.remove(table.uri, [*found.holding, *found.unreadable])
    if result.files:
        progress(f"{target.name}: removed {result.files} files that held the subject")
    if found.unreadable:
        outcome.warnings.append(
            f"{target.name}: removed {len(found.unreadable)} unreferenced files that are not "
            "readable parquet (leftovers of a write killed half-way)"
        )
    return result
