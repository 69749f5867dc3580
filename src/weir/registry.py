"""Registries of pluggable kinds: a kind's name → the class that implements it.

Entries name their class as ``module:Class`` and are imported when first asked for, so an
optional driver loads only when a project uses it, and the config loader (``weir.spec``) can
look kinds up without importing their implementations (which themselves build on ``spec``).
A leaf module: it imports nothing of weir at run time but errors and hints.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from weir.errors import ConfigError
from weir.hints import did_you_mean

if TYPE_CHECKING:
    from weir.engine.base import Engine
    from weir.sources.base import Source

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str, entries: dict[str, str]) -> None:
        self.what = what
        self._entries = dict(entries)

    def kinds(self) -> list[str]:
        return sorted(self._entries)

    def get(self, kind: str, *, where: str | None = None) -> type[T]:
        """The class for ``kind``; ConfigError with a suggestion for an unknown one."""
        if kind not in self._entries:
            raise ConfigError(
                f"unknown {self.what} {kind!r}",
                where=where,
                hint=did_you_mean(kind, self._entries) or f"known: {', '.join(self.kinds())}",
            )
        module_name, _, class_name = self._entries[kind].partition(":")
        cls: type[T] = getattr(importlib.import_module(module_name), class_name)
        return cls


SOURCES: Registry[Source[Any]] = Registry(
    "source",
    {
        "memory": "weir.sources.memory:MemorySource",
        "files": "weir.sources.files:FilesSource",
        "rest": "weir.sources.rest:RestSource",
        "sql": "weir.sources.sql:SqlSource",
    },
)
"""Source kinds (``extract.source`` in a pipeline). A new source adds a line here."""

ENGINES: Registry[Engine] = Registry("engine", {"duckdb": "weir.engine.duckdb_engine:DuckDBEngine"})
"""Engines (``engine`` in weir.yml): what computes a node's rows. A new engine adds a line here
(docs/architecture.md, "Adding an engine")."""
