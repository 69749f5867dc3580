"""Run events as NDJSON, for orchestrators: one JSON object a line, flushed as it happens.

Each line has ``event`` (``run_started``, ``node_started``, ``node_stage``,
``node_progress``, ``node_finished``; the command line adds ``log``, ``progress`` and
``error``), ``time`` (UTC, ISO 8601) and the event's fields (:func:`weir.observe.events.as_dict`);
``node_finished`` carries the run record. ``weir --log-format json`` writes them on stderr.
"""

from __future__ import annotations

import json
import threading
from typing import Any, TextIO

from weir.observe.events import Event, as_dict
from weir.observe.record import now_iso


class NdjsonEvents:
    """An observer that writes each event as one JSON line to ``stream``."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        self.write(as_dict(event))

    def write(self, data: dict[str, Any]) -> None:
        """``data`` (with ``event`` first, then ``time``) as one line."""
        line = {"event": data["event"], "time": now_iso(), **data}
        text = json.dumps(line, default=str, ensure_ascii=False)
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()
