"""Staging: a run's extraction lands in a local Arrow IPC file before any lake write.

The stream is written batch by batch (memory stays bounded), the source position is known
once it is exhausted, and only then does the bronze commit carry rows and position together.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from weir import layout
from weir.errors import LakeError
from weir.sources.base import Extraction


@dataclass
class Staged:
    path: Path
    rows: int
    schema: pa.Schema

    def reader(self) -> pa.RecordBatchReader:
        """The staged rows, one record batch at a time (read, not mapped: memory stays small)."""
        source = pa.OSFile(str(self.path), "rb")
        ipc = pa.ipc.open_file(source)
        batches = (ipc.get_batch(i) for i in range(ipc.num_record_batches))
        return pa.RecordBatchReader.from_batches(ipc.schema, batches)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def replace(self, rows: pa.RecordBatchReader) -> Staged:
        """The staged file rewritten with ``rows`` (same schema), streamed into a file beside
        it that then takes its place; ``rows`` may be reading this one."""
        fresh = self.path.with_name(self.path.name + ".fresh")
        count = 0
        with _staging_file(fresh, self.schema) as write:
            for batch in rows:
                if batch.num_rows:
                    write(batch.cast(self.schema))
                    count += batch.num_rows
        os.replace(fresh, self.path)
        return Staged(path=self.path, rows=count, schema=self.schema)


def bronze_schema(source_schema: pa.Schema) -> pa.Schema:
    """Bronze keeps everything: all columns nullable, then weir's meta columns."""
    fields = [f.with_nullable(True) for f in source_schema]
    return pa.schema(fields + [c.field() for c in layout.INGEST])


BOUNDARY_ROWS = 262_144
"""Rows the boundary gets at a time: enough for DuckDB to use every core, few enough to stay
small in memory (tens of MB)."""


def stage(
    extraction: Extraction,
    path: Path,
    *,
    schema: pa.Schema,
    run_id: str,
    batch: int,
    boundary: Callable[[pa.Table], pa.Table] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Staged:
    """Write every batch of ``extraction`` with meta columns to ``path``.

    ``boundary`` turns each batch into what may be written to disk (PII as digests,
    transform/boundary.py) before its first byte is; ``schema`` is its result's schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = bronze_schema(schema)
    ingested = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    rows = 0
    last = time.monotonic()
    pending: list[pa.RecordBatch] = []

    def flush() -> None:
        nonlocal rows, last
        if not pending:
            return
        group = pa.Table.from_batches(pending)
        pending.clear()
        data = boundary(group) if boundary is not None else group
        for part in data.to_batches():
            n = part.num_rows
            columns = [part.column(f.name) for f in schema]
            columns += [
                pa.repeat(pa.scalar(run_id, pa.string()), n),
                pa.repeat(pa.scalar(batch, pa.int64()), n),
                pa.arange(rows, rows + n).cast(pa.int64()),
                pa.repeat(ingested, n),
            ]
            write(pa.RecordBatch.from_arrays(columns, schema=target))
            rows += n
        if progress is not None and time.monotonic() - last > 1.0:
            progress(rows)
            last = time.monotonic()

    with _staging_file(path, target) as write:
        for raw in extraction.batches():
            if raw.num_rows:
                pending.append(raw)
            if boundary is None or sum(b.num_rows for b in pending) >= BOUNDARY_ROWS:
                flush()
        flush()
    return Staged(path=path, rows=rows, schema=target)


@contextmanager
def _staging_file(path: Path, schema: pa.Schema) -> Iterator[Callable[[pa.RecordBatch], None]]:
    """An Arrow IPC file being written; a failing write (a full disk, a quota) is a
    LakeError about the staging file, never mistaken for the source failing."""

    def cannot(exc: OSError) -> LakeError:
        return LakeError(
            f"could not write the staging file: {exc.strerror or exc}",
            where=str(path),
            hint="free space on the disk that holds the project's .weir/ folder, then run "
            "again (nothing was committed)",
        )

    try:
        sink = pa.OSFile(str(path), "wb")
        writer = pa.ipc.new_file(sink, schema)
    except OSError as exc:
        raise cannot(exc) from exc

    def write(batch: pa.RecordBatch) -> None:
        try:
            writer.write_batch(batch)
        except OSError as exc:
            raise cannot(exc) from exc

    try:
        yield write
    except BaseException:
        with suppress(OSError):
            writer.close()
            sink.close()
        raise
    try:
        writer.close()
        sink.close()
    except OSError as exc:
        raise cannot(exc) from exc
