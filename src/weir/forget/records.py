"""Run records that mention a forgotten subject: redacted where they are kept.

PII never reaches a run record (sample columns that are PII read ``***``), but a
failing-row sample shows the row's natural key, and a message can quote a key (a model's
"the key repeats, e.g. …"). A forget therefore, in ``.weir/runs.jsonl`` (or wherever
``logging.run_records`` points) and in the state store:

- masks every value of a sample whose key columns equal one of the subject's keys
  (``*`` per character, three at most);
- replaces the subject's texts (string keys of four characters or more, its digests, the
  raw value) with ``***`` wherever they appear in a record.

The JSON-lines file is rewritten line by line in place, each line at its own length (padded
with spaces), so runs appending to it meanwhile lose nothing. Records sent to stderr were
never kept by weir and cannot be reached.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weir.observe.record import Scrubber
from weir.spec import Project
from weir.state.sqlite import StateStore


@dataclass(frozen=True)
class Redaction:
    keys: Mapping[str, Sequence[Mapping[str, str]]]
    """Per pipeline, the subject's keys as samples show them (column → text)."""
    texts: frozenset[str]
    """Texts to mask wherever they appear."""

    def apply(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """``record`` redacted, or None when nothing in it concerns the subject."""
        keys = self.keys.get(str(record.get("pipeline_name")), ())
        changed = False
        for check in record.get("checks") or []:
            samples = check.get("samples") or []
            for i, sample in enumerate(samples):
                if isinstance(sample, dict) and any(_is(sample, key) for key in keys):
                    samples[i] = {k: _mask(v) for k, v in sample.items()}
                    changed = True
        scrubbed = Scrubber(self.texts).deep(record)
        if changed or scrubbed != record:
            return dict(scrubbed)
        return None


def _is(sample: Mapping[str, Any], key: Mapping[str, str]) -> bool:
    return bool(key) and all(sample.get(column) == text for column, text in key.items())


def _mask(value: Any) -> str:
    return "*" * min(len(str(value)), 3)


def redact(project: Project, redaction: Redaction, *, apply: bool) -> dict[str, int]:
    """Redact the run records kept by ``project`` (count only unless ``apply``): records
    changed per place."""
    counts = {"runs.jsonl": 0, "state.db": 0}
    destination = project.spec.logging.run_records
    if destination != "stderr":
        path = Path(destination)
        path = path if path.is_absolute() else project.root / path
        counts["runs.jsonl"] = _redact_lines(path, redaction, apply=apply)
    store = project.root / project.spec.state
    if store.exists():
        state = StateStore(store)
        if apply:
            counts["state.db"] = state.edit_runs(redaction.apply)
        else:
            runs = state.runs(limit=-1)
            counts["state.db"] = sum(redaction.apply(r) is not None for r in runs)
    return counts


def _redact_lines(path: Path, redaction: Redaction, *, apply: bool) -> int:
    scratch = path.with_name(path.name + ".weir-forget.tmp")
    if apply:
        scratch.unlink(missing_ok=True)  # left by an earlier attempt that was killed
    if not path.is_file():
        return 0
    edits: list[tuple[int, bytes, bytes]] = []
    with path.open("rb") as fh:
        offset = 0
        for line in fh.read().splitlines(keepends=True):
            body = line.rstrip(b"\r\n")
            new = _redact_line(body, redaction)
            if new is not None:
                edits.append((offset, body, new))
            offset += len(line)
    if not apply or not edits:
        return len(edits)
    if all(len(new) <= len(body) for _, body, new in edits):
        with path.open("r+b") as fh:
            for at, body, new in edits:
                fh.seek(at)
                fh.write(new.ljust(len(body)))
        return len(edits)
    # a line written by another serializer cannot be redacted at its length: rewrite the file
    data = path.read_bytes()
    for at, body, new in sorted(edits, reverse=True):
        data = data[:at] + new + data[at + len(body) :]
    scratch.write_bytes(data)
    scratch.replace(path)
    return len(edits)


def _redact_line(body: bytes, redaction: Redaction) -> bytes | None:
    """The redacted line (no longer than ``body`` when it can be); None when unchanged."""
    try:
        record = json.loads(body)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    new = redaction.apply(record)
    if new is None:
        return None
    shapes: list[dict[str, Any]] = [{}, {"separators": (",", ":")}]
    shapes.append({"separators": (",", ":"), "ensure_ascii": False})
    text = b""
    for shape in shapes:
        text = json.dumps(new, default=str, sort_keys=True, **shape).encode()
        if len(text) <= len(body):
            break
    return text
