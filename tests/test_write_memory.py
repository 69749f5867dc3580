"""weir/memory.py: the settings that bound the memory of delta-rs writes."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow as pa

from weir.memory import NATIVE_DEFAULTS, WRITE_BATCH_ROWS, small_batches


def test_small_batches_keeps_rows_and_bounds_batches() -> None:
    table = pa.table({"x": pa.array(range(3 * WRITE_BATCH_ROWS + 7), pa.int64())})
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=50_000))
    for data in (reader, table):
        batches = list(small_batches(data))
        assert all(b.num_rows <= WRITE_BATCH_ROWS for b in batches)
        assert pa.Table.from_batches(batches, table.schema).equals(table)


def test_native_defaults_are_set_on_import_and_never_override() -> None:
    code = "import os, weir; print(os.environ['DELTARS_WRITER_BATCH_CHANNEL_SIZE'])"
    env = {k: v for k, v in os.environ.items() if k not in NATIVE_DEFAULTS}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == NATIVE_DEFAULTS["DELTARS_WRITER_BATCH_CHANNEL_SIZE"]
    env["DELTARS_WRITER_BATCH_CHANNEL_SIZE"] = "7"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "7"
