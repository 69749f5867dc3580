"""Fingerprints of definitions: what a table was built with, so that a change is never
silently ignored (DESIGN invariant 2).

A definition is split into named parts (``columns``, ``rules``, ``transform`` …), each hashed
on its own, so a run can say *what* changed. The fingerprint travels with the data: in the
commit that wrote it (``weir.definition`` commit metadata for silver, the position for gold
models).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from weir.spec import Pipeline
from weir.transform.boundary import Boundary

ENGINE_SETTINGS = {"engine": "duckdb", "timezone": "UTC"}
"""The session settings weir fixes that change results (engine/duckdb.py)."""


def digest(value: Any) -> str:
    """A short stable hash of a JSON-able value (dict keys sorted)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pipeline_definition(pipeline: Pipeline) -> dict[str, str]:
    """The parts of a pipeline that decide what silver and quarantine hold, hashed."""
    contract, spec = pipeline.contract, pipeline.spec
    columns = [
        c.model_dump(include={"name", "physicalName", "physicalType", "required", "primaryKey"})
        | {"pii": c.pii}
        for c in contract.columns
    ]
    rules = {
        "columns": {c.name: [q.model_dump() for q in c.quality] for c in contract.columns},
        "table": [q.model_dump() for q in contract.table.quality],
        "gates": spec.quality_gates.model_dump(exclude={"sample_size"}),
    }
    boundary = Boundary.of(pipeline)
    return {
        "columns": digest(columns),
        "rules": digest(rules),
        "transform": digest(spec.transform.model_dump()),
        "load": digest(
            spec.load.model_dump(exclude={"target_file_size_mb"}) | {"keys": pipeline.keys}
        ),
        "engine": digest(ENGINE_SETTINGS),
        "boundary": digest(
            {
                "rules": [r.name + ":" + r.violation for r in boundary.rules],
                "derived": [d.model_dump() for d in boundary.derived],
            }
        ),
    }


def changed_parts(before: Mapping[str, str] | None, now: Mapping[str, str]) -> list[str]:
    """The parts whose hash differs (empty when ``before`` is unknown: an older table)."""
    if not before:
        return []
    return [part for part, value in now.items() if before.get(part) != value]


def describe(parts: list[str]) -> str:
    words = {
        "columns": "the contract's columns",
        "rules": "the quality rules",
        "transform": "the transform",
        "load": "the load settings",
        "engine": "the engine settings",
        "boundary": "the rules or derived columns over PII",
    }
    return ", ".join(words.get(p, p) for p in parts)
