"""In-process source: the reference implementation of the interface, used by tests.

A *dataset* is a named, append-only list of record batches registered in this process. The
position is the number of batches already committed, so appending batches and running again
ingests only the new ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from weir.errors import ConfigError, SourceError
from weir.hints import did_you_mean
from weir.sources.base import Extraction, Position, Source, SourceContext, conform
from weir.spec.base import Strict

_DATASETS: dict[str, list[pa.RecordBatch]] = {}
_OPEN: dict[str, int] = {}


def register(name: str, batches: list[pa.RecordBatch] | None = None) -> list[pa.RecordBatch]:
    """Create (or reset) dataset ``name`` and return its mutable list of batches."""
    _DATASETS[name] = list(batches or [])
    return _DATASETS[name]


def append(name: str, data: pa.RecordBatch | pa.Table) -> None:
    batches = data.to_batches() if isinstance(data, pa.Table) else [data]
    _DATASETS.setdefault(name, []).extend(b for b in batches if b.num_rows)


def open_sources(name: str) -> int:
    """How many sources of dataset ``name`` were made and not closed yet: tests check with it
    that whoever makes a source closes it, whatever happens (see :meth:`Source.close`)."""
    return _OPEN.get(name, 0)


class MemoryConfig(Strict):
    reference: ClassVar[str] = "docs/sources.md"
    """Where the fields are documented (config errors point there)."""
    source: str = "memory"
    dataset: str
    fail_after_batches: int | None = None
    """Raise a transient error after yielding this many batches (retry tests)."""


@dataclass
class MemoryExtraction(Extraction):
    pending: list[pa.RecordBatch] = field(default_factory=list)
    start: int = 0
    fail_after: int | None = None
    dataset: str = ""
    context: SourceContext | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        from weir.errors import TransientSourceError

        for n, batch in enumerate(self.pending):
            if self.fail_after is not None and n >= self.fail_after:
                raise TransientSourceError(f"memory dataset {self.dataset!r} failed on purpose")
            where = f"memory:{self.dataset}#{self.start + n}"
            yield conform(batch, self.schema, where=where, context=self.context)

    def position(self) -> dict[str, Any]:
        return {"batches": self.start + len(self.pending)}

    def watermark(self) -> str:
        return f"batch {self.start + len(self.pending)}"


class MemorySource(Source[MemoryConfig]):
    kind = "memory"

    def __init__(self, config: MemoryConfig, context: SourceContext):
        super().__init__(config, context)
        self._open = True
        _OPEN[config.dataset] = _OPEN.get(config.dataset, 0) + 1

    def close(self) -> None:
        if self._open:
            self._open = False
            _OPEN[self.config.dataset] -= 1

    def _dataset(self) -> list[pa.RecordBatch]:
        name = self.config.dataset
        if name not in _DATASETS:
            raise ConfigError(
                f"memory dataset {name!r} is not registered in this process",
                hint=did_you_mean(name, _DATASETS)
                or "register it with weir.sources.memory.register",
            )
        return _DATASETS[name]

    def probe(self, position: Position | None, schema: pa.Schema | None = None) -> pa.Schema | None:
        pending = self._dataset()[_start(position) :]
        return pending[0].schema if pending else None

    def extract(self, position: Position | None, schema: pa.Schema) -> Extraction:
        start = _start(position)
        data = self._dataset()
        if start > len(data):
            raise SourceError(
                f"memory dataset {self.config.dataset!r} has {len(data)} batches, "
                f"but the committed position is batch {start}",
                hint="the dataset shrank; re-register it with all batches",
            )
        return MemoryExtraction(
            schema=schema,
            pending=data[start:],
            start=start,
            fail_after=self.config.fail_after_batches,
            dataset=self.config.dataset,
            context=self.context,
        )

    @staticmethod
    def describe(position: Position | None) -> str | None:
        return f"batch {position['batches']}" if position else None


def _start(position: Position | None) -> int:
    return int(position.get("batches", 0)) if position else 0
