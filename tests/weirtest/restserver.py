"""A real HTTP server on 127.0.0.1 that serves a JSON dataset page by page, for REST tests.

``RestServer`` holds a list of records and answers GET requests on ``path`` in one of the five
pagination styles the REST source speaks (``none``, ``page``, ``offset``, ``cursor``, ``link``).
It filters on an ``updated_since``-style parameter, checks a bearer token when given one, records
every request it sees (and counts the connections they came on), and misbehaves on purpose when told to by a fault plan: a status code
with any headers (``Retry-After``, ``Location``), a slow answer, a malformed body or a dropped
connection, per request number, per request (``fault_on``) or on every request. It can also
play an API that never ends (``endless``: a cursor or link that cycles back, or a fresh one on
every page), one that skips the records of some pages (``empty_pages``), and report the
total count of matching records in the body (``total_path``). Usable as a context manager,
from pytest fixtures (see ``serve`` in test_rest_source.py), end-to-end tests and benchmarks
alike::

    with RestServer(sample_records(100), pagination="cursor", page_size=25) as server:
        ... RestConfig(url=server.url, records_path="data", ...)
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

Style = Literal["none", "page", "offset", "cursor", "link"]
Endless = Literal["cycle", "fresh"]


def sample_records(
    n: int, *, start: datetime | None = None, step_seconds: int = 60
) -> list[dict[str, Any]]:
    """``n`` records ``{id, name, amount, updated_at}``, ``updated_at`` rising by ``step_seconds``."""
    first = start or datetime(2024, 1, 1, tzinfo=UTC)
    return [
        {
            "id": i,
            "name": f"item {i}",
            "amount": i * 1.5,
            "updated_at": (first + timedelta(seconds=i * step_seconds)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }
        for i in range(1, n + 1)
    ]


@dataclass(frozen=True)
class Fault:
    """One planned misbehaviour: use the class methods, or e.g. a redirect directly with
    ``Fault(status=302, headers={"Location": url})``."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    delay: float = 0.0
    drop: bool = False

    @classmethod
    def error(cls, status: int = 503) -> Fault:
        return cls(status=status, body=b'{"error": "planned"}')

    @classmethod
    def rate_limit(cls, retry_after: str | None = "3") -> Fault:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(status=429, headers=headers, body=b'{"error": "slow down"}')

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally, but only after ``seconds`` (client timeouts)."""
        return cls(delay=seconds)

    @classmethod
    def malformed(cls, body: bytes = b'{"data": [{"id": 1,') -> Fault:
        return cls(status=200, body=body)

    @classmethod
    def disconnect(cls) -> Fault:
        """Close the connection without answering."""
        return cls(drop=True)


@dataclass(frozen=True)
class Seen:
    """A request as the server received it (header names lower-cased)."""

    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]


class RestServer:
    """Serves ``records`` over HTTP on 127.0.0.1 (port chosen by the OS) from a thread."""

    def __init__(
        self,
        records: Iterable[Mapping[str, Any]] = (),
        *,
        pagination: Style = "page",
        page_size: int = 10,
        max_page_size: int | None = None,
        path: str = "/items",
        records_path: str = "data",
        cursor_path: str = "meta.next_cursor",
        token: str | None = None,
        auth_header: str = "Authorization",
        since_param: str = "updated_since",
        since_field: str = "updated_at",
        page_param: str = "page",
        size_param: str = "per_page",
        offset_param: str = "offset",
        limit_param: str = "limit",
        cursor_param: str = "cursor",
        relative_links: bool = True,
        envelope: Mapping[str, Any] | None = None,
        indent: int | None = None,
        faults: Mapping[int, Fault] | None = None,
        fault_on: Callable[[Seen], Fault | None] | None = None,
        fault_always: Fault | None = None,
        endless: Endless | None = None,
        empty_pages: Collection[int] = (),
        total_path: str | None = None,
    ):
        self.records = [dict(r) for r in records]
        self.pagination = pagination
        self.page_size = page_size
        self.max_page_size = max_page_size
        self.path = path
        self.records_path = records_path
        self.cursor_path = cursor_path
        self.token = token
        self.auth_header = auth_header
        self.since_param, self.since_field = since_param, since_field
        self.page_param, self.size_param = page_param, size_param
        self.offset_param, self.limit_param = offset_param, limit_param
        self.cursor_param = cursor_param
        self.relative_links = relative_links
        self.envelope = dict(envelope or {})
        self.indent = indent
        self.faults: dict[int, Fault] = dict(faults or {})
        self.fault_on = fault_on
        """Chooses a fault from the request itself (e.g. every request for page 3)."""
        self.fault_always = fault_always
        self.endless = endless
        """Never run out of pages: the records repeat, and the cursor or link after the last
        page leads back to the start (``cycle``) or on to ever new ones (``fresh``)."""
        self.empty_pages = set(empty_pages)
        """Pages (1-based, by position in the data) served without their records, with the
        cursor, link and total they would have had."""
        self.total_path = total_path
        """Where the body says how many records match the query (``meta.total``)."""
        self.requests: list[Seen] = []
        self.connections = 0
        """TCP connections accepted so far (a client that keeps its connection makes one)."""
        self.disconnections = 0
        """Connections that have ended (the client closed them, or the server dropped them)."""
        self.errors: list[str] = []
        """Exceptions raised while answering (answered as HTTP 500)."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> RestServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.app = self  # type: ignore[attr-defined]
        httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="restserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> RestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The dataset's URL."""
        return self.base + self.path

    @property
    def data_requests(self) -> list[Seen]:
        return [r for r in self.requests if r.path == self.path]

    # answering -----------------------------------------------------------------------------

    def answer(self, seen: Seen, number: int) -> tuple[int, dict[str, str], bytes, Fault | None]:
        """Status, headers and body for request ``number`` (1-based), and the fault applied."""
        fault = self.faults.get(number)
        if fault is None and self.fault_on is not None:
            fault = self.fault_on(seen)
        fault = fault or self.fault_always
        if fault is not None and (fault.status is not None or fault.drop):
            return fault.status or 0, dict(fault.headers), fault.body or b"", fault
        if (
            self.token is not None
            and seen.headers.get(self.auth_header.lower()) != f"Bearer {self.token}"
        ):
            return 401, {}, b'{"error": "unauthorized"}', fault
        if seen.path != self.path:
            return 404, {}, b'{"error": "not found"}', fault
        try:
            rows = self._filtered(seen.query)
        except ValueError:
            return 400, {}, b'{"error": "bad since value"}', fault
        start, size, style = self._window(seen.query)
        page, following = self._page(rows, start, size)
        if size and start // size + 1 in self.empty_pages:
            page = []
        body: dict[str, Any] = dict(self.envelope)
        headers: dict[str, str] = {}
        if self.total_path:
            _put(body, self.total_path, len(rows))
        if style == "cursor":
            _put(body, self.cursor_path, _cursor(following) if following is not None else None)
        if style == "link" and following is not None:
            headers["Link"] = f'<{self._next_link(seen, following // size + 1)}>; rel="next"'
        payload: Any = page if not self.records_path else _put(body, self.records_path, page)
        return 200, headers, json.dumps(payload, indent=self.indent).encode(), fault

    def _page(
        self, rows: list[dict[str, Any]], start: int, size: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """The records from ``start`` and the first row of the page after (None: the end)."""
        if self.endless is None or not rows:
            following = start + size
            return rows[start:following], following if following < len(rows) else None
        page = [rows[(start + i) % len(rows)] for i in range(size)]
        following = start + size
        return page, following % len(rows) if self.endless == "cycle" else following

    def _filtered(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        since = query.get(self.since_param)
        if since is None:
            return self.records
        bound = _time(since)
        return [r for r in self.records if _time(r[self.since_field]) >= bound]

    def _window(self, query: Mapping[str, str]) -> tuple[int, int, Style]:
        """First row index, page size and style of the requested page."""
        style = self.pagination
        if style == "none":
            return 0, len(self.records), style
        size_name = self.limit_param if style in ("offset", "cursor") else self.size_param
        size = int(query.get(size_name, self.page_size))
        if self.max_page_size is not None:
            size = min(size, self.max_page_size)
        if style == "offset":
            return int(query.get(self.offset_param, 0)), size, style
        if style == "cursor":
            token = query.get(self.cursor_param)
            return (_offset(token) if token else 0), size, style
        return (int(query.get(self.page_param, 1)) - 1) * size, size, style

    def _next_link(self, seen: Seen, page: int) -> str:
        query = dict(seen.query)
        query[self.page_param] = str(page)
        link = f"{self.path}?{urlencode(query)}"
        return link if self.relative_links else self.base + link


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall
    server: ThreadingHTTPServer

    def setup(self) -> None:
        super().setup()
        app: RestServer = self.server.app  # type: ignore[attr-defined]
        with app._lock:
            app.connections += 1

    def finish(self) -> None:
        app: RestServer = self.server.app  # type: ignore[attr-defined]
        try:
            super().finish()
        finally:
            with app._lock:
                app.disconnections += 1

    def do_GET(self) -> None:
        app: RestServer = self.server.app  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        seen = Seen(
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            raw_query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        with app._lock:
            app.requests.append(seen)
            number = len(app.requests)
        try:
            status, headers, body, fault = app.answer(seen, number)
        except Exception as exc:  # a bug in the server (or a test's override): answer 500
            app.errors.append(repr(exc))
            status, headers, body, fault = 500, {}, b'{"error": "server bug"}', None
        if fault is not None and fault.delay:
            app._stopping.wait(fault.delay)
        if fault is not None and fault.drop:
            self.close_connection = True
            return
        try:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``RestServer.requests`` instead."""


def _put(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    node = body
    *parents, last = dotted.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value
    return body


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    return int(base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")[2])


def _time(value: str) -> datetime:
    """An ISO 8601 time (naive: UTC) or seconds since the epoch."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
