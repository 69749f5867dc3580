"""The REST benchmark's API: ``tests/weirtest/restserver.py`` serving generated records, run in a child
process so that serving JSON never competes with weir for the parent's GIL."""

from __future__ import annotations

import multiprocessing as mp
import sys
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent / "tests"


def serve(rows: int, page_size: int, urls: Any, stop: Any) -> None:
    """Child entry point: generate ``rows`` records, serve them, put the URL on ``urls``."""
    sys.path[:0] = [str(TESTS), str(Path(__file__).resolve().parent)]
    import data

    from weirtest.restserver import RestServer

    records = data.rest_records(rows)
    with RestServer(records, pagination="offset", page_size=page_size) as server:
        urls.put(server.url)
        stop.wait()


class ServerProcess:
    """``with ServerProcess(rows, page_size) as url:`` — the API runs until the block ends."""

    def __init__(self, rows: int, page_size: int):
        context = mp.get_context("spawn")
        self.urls = context.Queue()
        self.stop = context.Event()
        self.process = context.Process(
            target=serve, args=(rows, page_size, self.urls, self.stop), daemon=True
        )

    def __enter__(self) -> str:
        self.process.start()
        url: str = self.urls.get(timeout=300)
        return url

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
