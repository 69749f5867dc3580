"""Connector registry: ``kind`` name → Source class, with "did you mean" for typos.

Optional connectors import their drivers only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

from weir.errors import ConfigError
from weir.hints import did_you_mean
from weir.sources.base import Extraction, Position, Source, SourceContext

_REGISTRY: dict[str, str] = {
    "memory": "weir.sources.memory:MemorySource",
    "files": "weir.sources.files:FilesSource",
    "rest": "weir.sources.rest:RestSource",
}


def kinds() -> list[str]:
    return sorted(_REGISTRY)


def get(kind: str, *, where: str | None = None) -> type[Source[Any]]:
    """The Source class for ``kind``; ConfigError with a suggestion for unknown kinds."""
    if kind not in _REGISTRY:
        raise ConfigError(
            f"unknown source {kind!r}",
            where=where,
            hint=did_you_mean(kind, _REGISTRY),
        )
    module_name, _, cls_name = _REGISTRY[kind].partition(":")
    module = importlib.import_module(module_name)
    cls: type[Source[Any]] = getattr(module, cls_name)
    return cls


__all__ = ["Extraction", "Position", "Source", "SourceContext", "get", "kinds"]
