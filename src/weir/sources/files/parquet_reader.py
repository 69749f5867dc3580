"""Parquet files: read a row group at a time, in batches; columns converted by ``conform()``
(safe casts, finite floats, valid UTF-8). A file that breaks off keeps the row groups before."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from weir.sources.files.errors import READ_ERRORS, Unreadable, content_problem
from weir.sources.files.listing import DataFile
from weir.sources.files.reading import RESERVED, Chunk, present, unreadable


@dataclass(frozen=True)
class ParquetReader:
    fs: Any
    block_size: int
    batch_size: int
    local: bool = True

    def offered(self, file: DataFile, known: pa.Schema | None) -> pa.Schema:
        try:
            with self.fs.open_input_file(file.path) as handle:
                schema = pq.ParquetFile(handle).schema_arrow
        except READ_ERRORS as exc:
            what = _problem(exc, local=self.local)
            if what is None:
                raise
            raise Unreadable(what) from exc
        return pa.schema([fld for fld in schema if fld.name not in RESERVED])

    def read(self, file: DataFile, offered: pa.Schema, schema: pa.Schema) -> Iterator[Chunk]:
        columns = present(schema, offered).names or offered.names[:1]  # [:1] counts rows
        done = 0
        try:
            with self.fs.open_input_file(file.path) as handle:
                parquet = pq.ParquetFile(handle, buffer_size=self.block_size, pre_buffer=False)
                for group in range(parquet.num_row_groups):  # a bad group keeps the ones before
                    for batch in parquet.iter_batches(
                        batch_size=self.batch_size, row_groups=[group], columns=columns
                    ):
                        yield Chunk(batch, partial(_row, done))
                        done += batch.num_rows
        except READ_ERRORS as exc:
            what = _problem(exc, local=self.local)
            if what is None:
                raise
            yield unreadable(schema, f"{what}; read {done} rows, the rest is not read")


def _problem(exc: BaseException, *, local: bool) -> str | None:
    if isinstance(exc, pa.ArrowInvalid | pa.ArrowNotImplementedError):
        return f"not a readable Parquet file ({str(exc).strip().splitlines()[0][:160]})"
    return content_problem(exc, local=local)


def _row(base: int, index: int) -> str:
    return f"row {base + index + 1}"
