"""One run's read of a files source: the pending files in path order, each exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pyarrow as pa

from weir import layout
from weir.sources.base import Extraction, SourceContext, conform
from weir.sources.files.errors import Unreadable, io_errors
from weir.sources.files.listing import DataFile
from weir.sources.files.position import summary
from weir.sources.files.reading import (
    SOURCE_FILE,
    WORKERS,
    Piece,
    Reader,
    in_order,
    require,
    unreadable,
)

_SOURCE_FILE = pa.field(SOURCE_FILE, pa.string())
_CHANGE = [c.field() for c in layout.CHANGE]


@dataclass
class FilesExtraction(Extraction):
    pending: list[DataFile] = field(default_factory=list)
    ingested: dict[str, dict[str, int]] = field(default_factory=dict)
    reader: Reader | None = None
    batch_size_rows: int = 65_536
    remote: bool = False
    context: SourceContext | None = None
    changes: bool = False
    """The reader yields change events: chunks without change columns (a file that cannot
    be read) get NULL ones."""

    def batches(self) -> Iterator[pa.RecordBatch]:
        for file in self.pending:
            yield from self._file_batches(file)

    def position(self) -> dict[str, Any]:
        files = {**self.ingested, **{f.key: f.stamp() for f in self.pending}}
        return {"files": dict(sorted(files.items()))}

    def watermark(self) -> str:
        return summary(self.position()["files"])

    def _file_batches(self, file: DataFile) -> Iterator[pa.RecordBatch]:
        """One file's rows (checked against the contract before the first), conformed on a
        few threads ahead of the consumer, in order."""
        with io_errors(file.key, remote=self.remote):
            for batch in in_order(partial(self._conform, file), self._chunks(file), WORKERS):
                for start in range(0, batch.num_rows, self.batch_size_rows):
                    yield batch.slice(start, self.batch_size_rows)

    def _conform(self, file: DataFile, piece: Piece) -> pa.RecordBatch:
        chunk = piece() if callable(piece) else piece
        rows = chunk.batch.num_rows
        extra = chunk.meta
        if self.changes and not extra:
            extra = [(fld, pa.nulls(rows, fld.type)) for fld in _CHANGE]
        return conform(
            chunk.batch,
            self.schema,
            where=file.key,
            context=self.context,
            label=chunk.label,
            meta=[
                (_SOURCE_FILE, pa.repeat(pa.scalar(file.key), rows)),
                *extra,
            ],
            problems=chunk.problems,
        )

    def _chunks(self, file: DataFile) -> Iterator[Piece]:
        assert self.reader is not None
        try:
            offered = self.reader.offered(file, self.schema)
        except Unreadable as exc:
            yield unreadable(self.schema, exc.what)
            return
        if offered is None:
            return  # a file without data
        if len(offered):  # else nothing of it could be read yet: its rows tell what is wrong
            require(file, offered, self.schema)
        yield from self.reader.read(file, offered, self.schema)
