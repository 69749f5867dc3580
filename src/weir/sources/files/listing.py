"""Which files a files source reads: the configured path listed through ``pyarrow.fs``.

``path`` is a directory (its files, not its sub-directories), one file, or a glob: ``*``,
``?`` and ``[…]`` match within one path component, ``**`` matches any number of components.
Relative paths are resolved against the project. URLs (``s3://bucket/prefix/*.csv``, ``gs://…``,
``abfs://…``, ``hdfs://…``) take the same code path (``LocalFileSystem`` for local paths).
Names starting with ``.`` or ``_`` (``_SUCCESS``, ``_temporary/``, ``.crc``, editors' temp
files) are skipped, as pyarrow datasets and Spark do.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pa_fs

from weir.errors import ConfigError
from weir.sources.base import SourceContext
from weir.sources.files.config import URL, Format
from weir.sources.files.errors import READ_ERRORS, brief, io_error

_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4", ".br")
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class DataFile:
    key: str
    """Position key and ``_source_file`` value: project-relative path or full URL."""
    path: str
    """The path inside its pyarrow filesystem."""
    size: int
    mtime_ns: int

    def stamp(self) -> dict[str, int]:
        return {"size": self.size, "mtime_ns": self.mtime_ns}


@dataclass(frozen=True)
class Location:
    """The configured path split into what can be listed and what must be matched."""

    base: str
    """Absolute local path, or URL without query, of the part before the first wildcard."""
    pattern: tuple[str, ...]
    """Glob components after ``base``; empty when the path has no wildcard."""
    remote: bool
    query: str = ""


@dataclass(frozen=True)
class Listing:
    fs: Any
    files: list[DataFile]
    format: Format | None
    remote: bool
    warnings: list[str] = field(default_factory=list)


def list_files(path: str, configured: Format | None, context: SourceContext) -> Listing:
    """The data files ``path`` names, sorted by key, and their format."""
    location = locate(path, context.project_dir)
    fs, base = filesystem(location)
    shown = location.base if location.remote else _shown(location.base, context)
    try:
        infos = _list(fs, base, location.pattern)
    except READ_ERRORS as exc:
        raise io_error(exc, shown, remote=location.remote) from exc
    if infos is None:
        return Listing(fs, [], None, location.remote, [f"{shown} does not exist; no files"])
    files = sorted(
        (
            DataFile(
                key=_key(info.path, base, location, context),
                path=info.path,
                size=int(info.size or 0),
                mtime_ns=int(info.mtime_ns or 0),
            )
            for info in infos
        ),
        key=lambda f: f.key,
    )
    return Listing(fs, files, _format(files, configured, shown), location.remote)


def locate(path: str, project_dir: str) -> Location:
    match = URL.match(path)
    remote = match is not None and match[1].lower() != "file"
    query = ""
    if remote:
        path, mark, rest = path.partition("?")
        query = mark + rest
    elif match is not None:
        path = path[match.end() :]
    parts = path.split("/")
    cut = next((n for n, part in enumerate(parts) if _GLOB.search(part)), len(parts))
    base = "/".join(parts[:cut])
    pattern = tuple(part for part in parts[cut:] if part)
    if not remote:
        base = os.path.normpath(os.path.join(os.path.abspath(project_dir), base or "."))
    return Location(base=base, pattern=pattern, remote=remote, query=query)


def filesystem(location: Location) -> tuple[Any, str]:
    if not location.remote:
        return pa_fs.LocalFileSystem(), location.base
    try:
        fs, base = pa_fs.FileSystem.from_uri(location.base + location.query)
    except (pa.ArrowException, OSError, ValueError) as exc:
        detail = str(exc).replace(location.query, "?…") if location.query else str(exc)
        raise ConfigError(
            f"cannot open {location.base}: {brief(detail)}",
            hint="check the URL, and that pyarrow was built with support for its filesystem",
        ) from exc
    return fs, str(base)


def _list(fs: Any, base: str, pattern: tuple[str, ...]) -> list[Any] | None:
    """FileInfos of the data files under ``base`` matching ``pattern``; None when ``base``
    does not exist."""
    info = fs.get_file_info(base)
    if info.type == pa_fs.FileType.NotFound:
        return None
    if info.type == pa_fs.FileType.File:
        return [] if pattern else [info]
    recursive = len(pattern) > 1 or "**" in pattern
    found = []
    for entry in fs.get_file_info(pa_fs.FileSelector(base, recursive=recursive)):
        parts = entry.path[len(base) :].strip("/").split("/")
        hidden = any(part.startswith((".", "_")) for part in parts)
        if entry.type == pa_fs.FileType.File and not hidden and _matches(parts, pattern):
            found.append(entry)
    return found


def _matches(parts: Sequence[str], pattern: Sequence[str]) -> bool:
    if not pattern:
        return len(parts) <= 1
    if pattern[0] == "**":
        return any(_matches(parts[n:], pattern[1:]) for n in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], pattern[0])
        and _matches(parts[1:], pattern[1:])
    )


def _key(path: str, base: str, location: Location, context: SourceContext) -> str:
    if not location.remote:
        return _shown(path, context)
    relative = path[len(base) :].strip("/")
    root = location.base.rstrip("/")
    return f"{root}/{relative}" if relative else root


def _shown(path: str, context: SourceContext) -> str:
    """A local path relative to the project when inside it, else absolute; '/' separated."""
    relative = os.path.relpath(path, os.path.abspath(context.project_dir))
    shown = path if relative == ".." or relative.startswith(".." + os.sep) else relative
    return shown.replace(os.sep, "/")


def _format(files: list[DataFile], configured: Format | None, shown: str) -> Format | None:
    if configured is not None or not files:
        return configured
    found = {file.key: format_of(file.key) for file in files}
    unknown = [key for key, kind in found.items() if kind is None]
    if unknown:
        raise ConfigError(
            f"cannot tell the format of {unknown[0]} from its extension",
            where=shown,
            hint="set format: csv, ndjson, json or parquet, or narrow path (e.g. *.csv)",
        )
    kinds = sorted({kind for kind in found.values() if kind is not None})
    if len(kinds) > 1:
        raise ConfigError(
            f"path matches files of several formats ({', '.join(kinds)})",
            where=shown,
            hint="narrow path to one kind of file (e.g. *.csv), or set format",
        )
    return kinds[0]


def format_of(name: str) -> Format | None:
    """The format a file name's extension says (compression suffixes aside), if any."""
    lower = name.lower()
    for suffix in _COMPRESSIONS:
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
            break
    return _EXTENSIONS.get(posixpath.splitext(lower)[1])
