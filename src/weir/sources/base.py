"""The source interface: every connector is one class with these few methods.

A source turns its config plus the committed position into an :class:`Extraction`: a stream
of Arrow record batches in exactly the schema the engine asks for (the contract's source-side
schema, never inferred) and, once the stream is exhausted, the position it reached. The engine
commits that position in the same Delta commit as the rows (see ``weir.lake``), so a source
never persists anything itself.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from weir.spec.base import Strict

Position = Mapping[str, Any]
"""JSON-serialisable; what the source needs to continue where the last commit ended."""


def _silent(message: str) -> None:
    """The default :attr:`SourceContext.notify`: notices go nowhere."""


@dataclass(frozen=True)
class SourceContext:
    """What a source may know about the run it serves."""

    pipeline: str
    project_dir: str
    run_id: str
    keys: tuple[str, ...] = ()
    """Source-side names of the contract's natural key columns."""
    pii: tuple[str, ...] = ()
    """Source-side names of PII columns: their values must never reach a message or log."""
    notify: Callable[[str], None] = field(default=_silent, compare=False)
    """Where the source reports what it is doing while it reads (a retry and its wait). The
    engine shows these notices, scrubbed of secrets; a source never logs by itself. Notices
    are not warnings: what the run record must keep goes in :attr:`Extraction.warnings`."""


@dataclass
class Extraction(abc.ABC):
    """One run's read: batches first, then the position they reach."""

    schema: pa.Schema
    warnings: list[str] = field(default_factory=list)

    @abc.abstractmethod
    def batches(self) -> Iterator[pa.RecordBatch]:
        """Record batches conforming exactly to ``schema`` (+ the source's meta columns)."""

    @abc.abstractmethod
    def position(self) -> dict[str, Any]:
        """The position after every batch was consumed; called once, after ``batches``."""

    def watermark(self) -> str | None:
        """A short human form of :meth:`position` for summaries and run records."""
        return None

    def overlap(self) -> tuple[str | None, str | None] | None:
        """``(column, lower bound)`` when this read may repeat rows an earlier run delivered:
        an incremental source re-reading a lookback window, or ``(None, None)`` for a source
        that re-reads everything. Rows (at or after the bound) that bronze already holds,
        identical in every source column, are not ingested again; they are counted as
        ``rows_already_ingested``. None: this read never repeats rows."""
        return None


class Source(abc.ABC):
    """Base class of every connector. Subclasses set ``kind`` and ``Config``."""

    kind: ClassVar[str]
    Config: ClassVar[type[Strict]]
    meta_columns: ClassVar[dict[str, pa.DataType]] = {}
    """Columns the source adds to each batch besides the contract's (e.g. ``_source_file``)."""

    def __init__(self, config: Any, context: SourceContext):
        self.config = config
        self.context = context

    def probe(self, position: Position | None, schema: pa.Schema | None = None) -> pa.Schema | None:
        """The schema of the pending data as the source offers it, read cheaply (headers,
        footers); None when it cannot be known before extraction. Used for drift checks.

        ``schema`` is the contract's: text formats without types (CSV) report its types for
        the columns it names, and ``string`` for the others."""
        return None

    @abc.abstractmethod
    def extract(self, position: Position | None, schema: pa.Schema) -> Extraction:
        """Start reading everything after ``position``, shaped as ``schema``."""

    @staticmethod
    def describe(position: Position | None) -> str | None:
        """Human form of a committed position (``watermark_before``)."""
        if not position:
            return None
        return ", ".join(f"{k}={v}" for k, v in position.items() if not isinstance(v, list | dict))


def conform(batch: pa.RecordBatch, schema: pa.Schema, *, where: str) -> pa.RecordBatch:
    """Shape ``batch`` as ``schema``: reorder, cast safely, fill absent nullable columns.

    Raises SchemaDriftError when a required column is missing or a cast would lose data.
    """
    from weir.errors import SchemaDriftError

    arrays = []
    for fld in schema:
        index = batch.schema.get_field_index(fld.name)
        if index < 0:
            if not fld.nullable:
                raise SchemaDriftError(
                    f"required column {fld.name!r} is missing",
                    where=where,
                    hint="the source dropped or renamed it; update the contract or the source",
                )
            arrays.append(pa.nulls(batch.num_rows, fld.type))
            continue
        column = batch.column(index)
        if column.type != fld.type:
            try:
                column = column.cast(fld.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaDriftError(
                    f"column {fld.name!r} has type {column.type}, contract says {fld.type}: {exc}",
                    where=where,
                    hint="fix the source or change the column's physicalType in the contract",
                ) from exc
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
