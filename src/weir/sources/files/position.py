"""The position of a files source: the cumulative set of ingested files.

``{"files": {"<key>": {"size": int, "mtime_ns": int}, …}}``, keyed by the path relative to
the project (local files) or the full URL (object stores). A run reads only the files not in
the set; a file that changed after it was ingested is not read again, only warned about.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from weir.errors import SourceError
from weir.sources.base import Position
from weir.sources.files.listing import DataFile

_MAX_CHANGED_WARNINGS = 20


def ingested(position: Position | None) -> dict[str, dict[str, int]]:
    files = (position or {}).get("files", {})
    if not isinstance(files, Mapping) or not all(isinstance(v, Mapping) for v in files.values()):
        raise SourceError(
            "the committed position of this files source is malformed",
            hint='expected {"files": {path: {"size": …, "mtime_ns": …}}}',
        )
    return {str(key): dict(stamp) for key, stamp in files.items()}


def pending(files: list[DataFile], done: Mapping[str, Any]) -> tuple[list[DataFile], list[str]]:
    """The files still to read, and warnings about ingested files that changed since."""
    todo, changed = [], []
    for file in files:
        stamp = done.get(file.key)
        if stamp is None:
            todo.append(file)
        elif stamp.get("size") != file.size or stamp.get("mtime_ns") != file.mtime_ns:
            changed.append(file.key)
    warnings = [
        f"{key} changed since it was ingested; not re-read — use a backfill"
        for key in changed[:_MAX_CHANGED_WARNINGS]
    ]
    if len(changed) > _MAX_CHANGED_WARNINGS:
        more = len(changed) - _MAX_CHANGED_WARNINGS
        warnings.append(f"{more} more files changed since they were ingested; not re-read")
    return todo, warnings


def summary(files: Mapping[str, Any]) -> str:
    if not files:
        return "0 files"
    count = f"{len(files)} file" + ("" if len(files) == 1 else "s")
    return f"{count} (latest {posixpath.basename(max(files))})"
