"""How weir keeps delta-rs writes small in memory.

Measured on a 1M-row CSV load (bench (d), bench/RESULTS.md): delta-rs reads its input ahead
of the parquet writer into a channel of ``DELTARS_WRITER_BATCH_CHANNEL_SIZE`` record batches
(10 by default), so with 64k-row batches it held ~200 MB of rows that had not been written
yet; and its allocator (jemalloc) kept freed pages for seconds, which DuckDB and pyarrow,
with allocators of their own, cannot reuse. Three settings bound that:

- input batches of at most :data:`WRITE_BATCH_ROWS` rows (:func:`small_batches`);
- a channel of 2 batches (``DELTARS_WRITER_BATCH_CHANNEL_SIZE``, read at delta-rs's first write);
- freed pages returned to the system after 250 ms instead of jemalloc's 10 s
  (``_RJEM_MALLOC_CONF``, read when delta-rs is loaded, so :func:`native_defaults` runs when
  ``weir`` is imported, before anything imports deltalake).

The decay is a trade between memory and system time. Returning pages at once (a decay of 0,
weir's setting until 2026-12-03) kept bench (d)'s peak lowest, but delta-rs frees and
allocates large buffers all through a write, so each reused page came back as a page fault:
1.8M of them, 6.6 s of system time, for a 5M-row silver write. At 250 ms the same write
faults 0.5M times (3.1–3.3 s) and takes 27–29 % less wall time, and (d)'s 1M-row peak stays
at 587 MB (586 MB at 0, 620 MB at 1 s): bench/RESULTS.md, "jemalloc's decay".

Each is a default: a value already set in the environment wins.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

WRITE_BATCH_ROWS = 16_384
"""Rows per batch handed to a delta-rs write (its read-ahead holds a few batches)."""

NATIVE_DEFAULTS = {
    "DELTARS_WRITER_BATCH_CHANNEL_SIZE": "2",
    "_RJEM_MALLOC_CONF": "dirty_decay_ms:250,muzzy_decay_ms:0",
}


def native_defaults() -> None:
    """Set :data:`NATIVE_DEFAULTS` in the environment where they are not set."""
    for name, value in NATIVE_DEFAULTS.items():
        os.environ.setdefault(name, value)


def small_batches(data: pa.RecordBatchReader | pa.Table) -> pa.RecordBatchReader:
    """``data`` as a stream of batches of at most :data:`WRITE_BATCH_ROWS` rows (zero-copy
    slices: nothing is read ahead of what the writer asks for)."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data.to_reader(max_chunksize=WRITE_BATCH_ROWS)

    def sliced() -> Iterator[pa.RecordBatch]:
        for batch in data:
            for offset in range(0, batch.num_rows, WRITE_BATCH_ROWS):
                yield batch.slice(offset, WRITE_BATCH_ROWS)

    return pa.RecordBatchReader.from_batches(data.schema, sliced())
