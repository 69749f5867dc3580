"""How much memory reading weir's staging file costs: ``python bench/staged_probe.py FILE MODE``.

MODE ``weir`` reads FILE through ``weir.run.stage.Staged.reader()`` (what the bronze write and
the silver transform consume), ``ipc`` batch by batch through ``pyarrow.ipc.open_file``. Both
take one batch, wait a second, then read the rest; the script prints one JSON line with the
resident set growth (bytes) after the first batch and at the peak. Run in its own process so
nothing else is in its memory.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pyarrow as pa

from weir.run.stage import Staged


def _batches(path: str, mode: str) -> Iterator[pa.RecordBatch]:
    if mode == "weir":
        with pa.ipc.open_file(path) as probe:
            schema = probe.schema
        yield from Staged(path=Path(path), rows=0, schema=schema).reader()
        return
    with pa.OSFile(path) as source, pa.ipc.open_file(source) as reader:
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


def main(path: str, mode: str) -> dict[str, int]:
    process = psutil.Process()
    peak = [process.memory_info().rss]

    def poll() -> None:
        while True:
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.01)

    threading.Thread(target=poll, daemon=True).start()
    time.sleep(0.1)
    base = process.memory_info().rss
    batches = _batches(path, mode)
    next(batches)
    time.sleep(1.0)
    first = max(peak[0], process.memory_info().rss) - base
    for _ in batches:
        pass
    time.sleep(0.05)
    return {"first_batch": first, "peak": peak[0] - base}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
