"""Sources: the interface (``base.py``), strict value parsing and the connectors. The kinds
are registered in :data:`weir.registry.SOURCES`; optional connectors import their drivers
only when used.
"""

from __future__ import annotations

from typing import Any

from weir.registry import SOURCES
from weir.sources.base import Extraction, Position, Source, SourceContext


def kinds() -> list[str]:
    return SOURCES.kinds()


def get(kind: str, *, where: str | None = None) -> type[Source[Any]]:
    """The Source class for ``kind``; ConfigError with a suggestion for unknown kinds."""
    return SOURCES.get(kind, where=where)


__all__ = ["Extraction", "Position", "Source", "SourceContext", "get", "kinds"]
