"""REST source: pages of JSON from an HTTP API, read straight into Arrow.

One GET per page with ``httpx``. Each body is parsed by pyarrow's JSON reader against an
*envelope* schema built from the contract (``records_path`` → ``list<struct<…>>``, plus the
cursor path), so no Python object is made per row. Pagination styles: ``none``, ``page``,
``offset``, ``cursor`` and ``link`` (RFC 5988 ``Link: <…>; rel="next"``). Incremental reads send
``watermark − lookback`` in a query parameter; the position is the latest change time received.

Retries: 429 waits ``Retry-After``; 5xx, timeouts, connection errors and malformed pages back off
``backoff_seconds`` × 2ⁿ. Header values are secrets: no message or log line carries one, nor a
query string.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from pydantic import Field, SecretStr, field_validator, model_validator

from weir.errors import ConfigError, SchemaDriftError, SourceError, TransientSourceError
from weir.sources.base import Extraction, Position, Source, SourceContext, conform
from weir.spec.base import Strict

log = logging.getLogger(__name__)

_SECRET_NAME = re.compile(r"token|secret|passw|api[-_]?key|credential|signature", re.IGNORECASE)
_CHANGED = re.compile(r"Column\((?P<path>[^)]*)\) changed from \w+ to (?P<got>\w+)")
_CONVERT = re.compile(r"Failed to convert JSON to (?P<type>.+?), couldn't parse")
_WRAP = "__weir_records__"
_TS_UTC = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_T = pa.types
_JSON_READS: tuple[str, ...] = ("boolean", "integer", "floating", "string", "large_string")
_JSON_READS += ("timestamp", "decimal", "list", "struct")  # pyarrow's JSON reader parses these
Param = str | int | float | bool

# -- configuration -------------------------------------------------------------------------------


class Auth(Strict):
    """Credentials, sent in one request header (never in the query string)."""

    header: str = "Authorization"
    value: SecretStr


class NoPagination(Strict):
    """One request returns every record."""

    style: Literal["none"] = "none"


class PagePagination(Strict):
    """``?page=1``, 2, 3, … until a page comes back empty."""

    style: Literal["page"]
    param: str = "page"
    start: int = 1
    size_param: str | None = "per_page"


class OffsetPagination(Strict):
    """``?offset=0``, advanced by the number of records received, until a page is empty."""

    style: Literal["offset"]
    param: str = "offset"
    start: int = Field(default=0, ge=0)
    size_param: str | None = "limit"


class CursorPagination(Strict):
    """The body holds the next cursor at dotted ``path``; it goes back in ``param`` until empty."""

    style: Literal["cursor"]
    path: str = Field(min_length=1)
    param: str = "cursor"
    size_param: str | None = "limit"


class LinkPagination(Strict):
    """Follow the ``Link: <…>; rel="next"`` response header until it is absent."""

    style: Literal["link"]
    size_param: str | None = "per_page"


Pagination = Annotated[
    NoPagination | PagePagination | OffsetPagination | CursorPagination | LinkPagination,
    Field(discriminator="style"),
]


class Incremental(Strict):
    """Ask only for records changed since the committed watermark, minus ``lookback_seconds``."""

    param: str
    field: str
    """Source-side record field holding the change time (a timestamp, date or ISO string)."""
    lookback_seconds: float = Field(default=0, ge=0)
    initial: str | None = None
    """ISO 8601 start for the first run; without it the first run reads everything."""
    format: str = "iso"
    """How the parameter is written: ``iso``, ``unix``, ``unix_ms`` or a strftime pattern."""

    @field_validator("initial")
    @classmethod
    def _initial(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_time(value)
        return value

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value in ("iso", "unix", "unix_ms") or "%" in value:
            return value
        raise ValueError("format must be iso, unix, unix_ms or a strftime pattern like %Y-%m-%d")


class RestConfig(Strict):
    source: str = "rest"
    url: str
    records_path: str = ""
    """Dotted path of the record list in the body (``data``, ``result.items``); empty: the body."""
    params: dict[str, Param] = Field(default_factory=dict)
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Static request headers; every value is treated as a secret."""
    auth: Auth | None = None
    pagination: Pagination = Field(default_factory=NoPagination)
    incremental: Incremental | None = None
    page_size: int | None = Field(default=None, gt=0)
    max_pages: int | None = Field(default=None, gt=0)
    """Safety cap: stop (with a warning) after this many pages."""
    timeout_seconds: float = Field(default=30, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_seconds: float = Field(default=2.0, ge=0)

    @field_validator("pagination", mode="before")
    @classmethod
    def _style_shorthand(cls, value: Any) -> Any:
        return {"style": value} if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("url must be an absolute http:// or https:// URL")
        if url.userinfo:
            raise ValueError("url must not carry credentials; use auth (sent as a header)")
        _no_secret_params(url.params.keys(), "url")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RestConfig:
        _no_secret_params(self.params, "params")
        if isinstance(self.pagination, CursorPagination):
            if not self.records_path:
                raise ValueError("cursor pagination needs records_path (the cursor is beside it)")
            a, b = self.records_path.split("."), self.pagination.path.split(".")
            if a[: len(b)] == b or b[: len(a)] == a:
                raise ValueError("pagination.path and records_path must not contain one another")
        names = [*self.params, *_paging_names(self)]
        if self.incremental is not None:
            names.append(self.incremental.param)
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise ValueError(
                f"query parameter {clashes[0]!r} is set twice (params/pagination/incremental)"
            )
        if self.auth is not None and self.auth.header.lower() in {h.lower() for h in self.headers}:
            raise ValueError(f"header {self.auth.header!r} is set both in headers and in auth")
        return self


def _no_secret_params(names: Iterable[str], where: str) -> None:
    for name in names:
        if _SECRET_NAME.search(name):
            raise ValueError(
                f"{where}: query parameter {name!r} looks like a credential; send it in "
                "headers or auth instead (query strings end up in logs)"
            )


def _paging_names(config: RestConfig) -> list[str]:
    pager = config.pagination
    names = [] if isinstance(pager, NoPagination | LinkPagination) else [pager.param]
    if not isinstance(pager, NoPagination) and pager.size_param and config.page_size:
        names.append(pager.size_param)
    return names


# -- the source ----------------------------------------------------------------------------------


class RestSource(Source):
    """Reads a paginated JSON API. ``sleep`` is replaceable so tests can record back-offs."""

    kind = "rest"
    Config = RestConfig

    def __init__(self, config: Any, context: SourceContext):
        super().__init__(config, context)
        self.sleep: Callable[[float], None] = time.sleep

    def probe(self, position: Position | None, schema: pa.Schema | None = None) -> pa.Schema | None:
        """None: an API's schema cannot be known without reading it."""
        return None

    def extract(self, position: Position | None, schema: pa.Schema) -> Extraction:
        config: RestConfig = self.config
        committed: int | None = None
        since: int | None = None
        hidden: str | None = None
        inc = config.incremental
        if inc is not None:
            hidden = _check_incremental(schema, inc.field)
            committed = _committed(position)
            if committed is not None:
                since = committed - round(inc.lookback_seconds * 1_000_000)
            elif inc.initial is not None:
                since = _micros(_parse_time(inc.initial))
        cursor = config.pagination.path if isinstance(config.pagination, CursorPagination) else ""
        parser = _PageParser(schema, config.records_path, cursor, hidden)
        return RestExtraction(
            schema=schema,
            config=config,
            parser=parser,
            sleep=self.sleep,
            since=since,
            latest=committed,
        )

    @staticmethod
    def describe(position: Position | None) -> str | None:
        value = position.get("watermark") if position else None
        return str(value) if value else None


@dataclasses.dataclass(kw_only=True)
class RestExtraction(Extraction):
    """Pages fetched lazily by :meth:`batches`; the watermark grows with every page."""

    config: RestConfig
    parser: _PageParser
    sleep: Callable[[float], None]
    since: int | None
    """The value sent in ``incremental.param``, µs since the epoch (UTC)."""
    latest: int | None
    """The largest change time seen so far (starts at the committed watermark)."""
    pages: int = 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        config = self.config
        request: _Request | None = _first_request(config, self.since)
        previous = b""
        with _client(config) as client:
            fetcher = _Fetcher(client, config, self.sleep, self.parser.parse)
            while request is not None:
                if config.max_pages is not None and self.pages >= config.max_pages:
                    self.warnings.append(
                        f"stopped after max_pages={config.max_pages}; the API may have more pages"
                    )
                    return
                self.pages += 1
                page = fetcher.fetch(request, self.pages)
                where = f"{_public_url(page.url)} (page {self.pages})"
                if page.batch.num_rows and page.body == previous:
                    raise SourceError(
                        f"page {self.pages} repeats the previous page",
                        where=where,
                        hint="the API seems to ignore the pagination parameter; check pagination",
                    )
                previous = page.body
                batch = self._accept(page.batch, where)
                if batch.num_rows:
                    yield batch
                request = _next_request(config, request, page, where)

    def _accept(self, raw: pa.RecordBatch, where: str) -> pa.RecordBatch:
        for name in self.parser.extra_fields:
            message = f"field {name!r} is not in the contract; ignored"
            if message not in self.warnings:
                self.warnings.append(message)
        batch = _shape(raw, self.schema, where)
        inc = self.config.incremental
        if inc is not None and raw.num_rows:
            column = (
                batch.column(inc.field) if inc.field in self.schema.names else raw.column(inc.field)
            )
            newest = _max_micros(column, inc.field, where)
            if newest is not None and (self.latest is None or newest > self.latest):
                self.latest = newest
        return batch

    def position(self) -> dict[str, Any]:
        return {"watermark": _iso(self.latest)} if self.latest is not None else {}

    def overlap(self) -> tuple[str | None, str | None]:
        """Every read may repeat rows: the lookback window of an incremental read (the
        ``updated_since`` bound is inclusive), or everything for a full pull."""
        inc = self.config.incremental
        if inc is None or inc.field not in self.schema.names:
            return None, None
        return inc.field, (_iso(self.since) if self.since is not None else None)

    def watermark(self) -> str | None:
        return _iso(self.latest) if self.latest is not None else None


# -- requests and pagination ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Request:
    url: str
    params: dict[str, str]


@dataclasses.dataclass(frozen=True)
class _Page:
    batch: pa.RecordBatch
    """As read: the contract's fields (some still strings), the watermark field, extras."""
    cursor: str | None
    next_url: str | None
    url: str
    body: bytes


def _client(config: RestConfig) -> httpx.Client:
    """A client sending the configured headers, but only to the API's own origin."""
    secrets = {k: v.get_secret_value() for k, v in config.headers.items()}
    if config.auth is not None:
        secrets[config.auth.header] = config.auth.value.get_secret_value()
    home = _origin(config.url)

    def guard(request: httpx.Request) -> None:
        if _origin(str(request.url)) != home:  # redirected elsewhere: no credentials
            for name in secrets:
                request.headers.pop(name, None)

    headers = httpx.Headers({"Accept": "application/json"})
    headers.update(secrets)
    return httpx.Client(
        headers=headers,
        timeout=config.timeout_seconds,
        follow_redirects=True,
        event_hooks={"request": [guard]},
    )


def _first_request(config: RestConfig, since: int | None) -> _Request:
    params = {
        k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in config.params.items()
    }
    pager = config.pagination
    if isinstance(pager, PagePagination | OffsetPagination):
        params[pager.param] = str(pager.start)
    if not isinstance(pager, NoPagination) and pager.size_param and config.page_size:
        params[pager.size_param] = str(config.page_size)
    if config.incremental is not None and since is not None:
        params[config.incremental.param] = _format_time(since, config.incremental.format)
    return _Request(config.url, params)


def _next_request(
    config: RestConfig, request: _Request, page: _Page, where: str
) -> _Request | None:
    """The request for the page after ``page``, or None when it was the last."""
    pager = config.pagination
    if isinstance(pager, NoPagination):
        return None
    if isinstance(pager, PagePagination | OffsetPagination):
        if not page.batch.num_rows:
            return None
        step = 1 if isinstance(pager, PagePagination) else page.batch.num_rows
        return _Request(
            request.url,
            {**request.params, pager.param: str(int(request.params[pager.param]) + step)},
        )
    if isinstance(pager, CursorPagination):
        if not page.cursor:
            return None
        return _Request(request.url, {**request.params, pager.param: page.cursor})
    if not page.next_url:
        return None
    target = str(httpx.URL(page.url).join(page.next_url))
    if _origin(target) != _origin(page.url):
        raise SourceError(
            f"the next-page link points to another site ({_public_url(target)})",
            where=where,
            hint="weir only follows links on the API's own origin, so credentials stay there",
        )
    return _Request(target, {})


class _Retry(Exception):
    """A failed attempt worth repeating."""

    def __init__(self, cause: str, *, delay: float | None = None, malformed: bool = False):
        super().__init__(cause)
        self.cause, self.delay, self.malformed = cause, delay, malformed


class _Malformed(Exception):
    """A page body that is not the expected JSON document."""


@dataclasses.dataclass(frozen=True)
class _Fetcher:
    """GET one page, retrying 429, 5xx, timeouts, connection errors and malformed bodies."""

    client: httpx.Client
    config: RestConfig
    sleep: Callable[[float], None]
    parse: Callable[[bytes], tuple[pa.RecordBatch, str | None]]

    def fetch(self, request: _Request, number: int) -> _Page:
        where = f"{_public_url(request.url)} (page {number})"
        attempts = self.config.max_attempts
        failure = _Retry("not attempted")
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(request, where)
            except _Retry as retry:
                failure = retry
                if attempt == attempts:
                    break
                delay = retry.delay
                if delay is None:
                    delay = self.config.backoff_seconds * 2 ** (attempt - 1)
                note = f"{where}: {self._redact(retry.cause)}"
                log.warning("%s; attempt %d of %d, retrying in %gs", note, attempt, attempts, delay)
                self.sleep(delay)
        cause = self._redact(failure.cause)
        if failure.malformed:
            raise SourceError(
                f"page {number} is malformed after {attempts} attempts: "
                + cause.removeprefix("malformed page: "),
                where=where,
                hint=f"check that the API returns JSON with the records at records_path "
                f"{self.config.records_path or '(the body)'!r}",
            )
        raise TransientSourceError(
            f"page {number} failed after {attempts} attempts; last cause: {cause}",
            where=where,
            hint="the API is unavailable or throttling; retry later or raise max_attempts",
        )

    def _attempt(self, request: _Request, where: str) -> _Page:
        try:
            response = self.client.get(request.url, params=request.params or None)
        except httpx.TimeoutException as exc:
            raise _Retry(f"timed out after {self.config.timeout_seconds:g}s") from exc
        except httpx.TooManyRedirects:
            raise SourceError("too many redirects", where=where, hint="check url") from None
        except httpx.RequestError as exc:
            raise _Retry(f"connection failed ({type(exc).__name__})") from exc
        status = response.status_code
        if status == 429:
            delay = _retry_after(response.headers.get("Retry-After"))
            raise _Retry("HTTP 429 Too Many Requests", delay=delay)
        if status >= 500:
            raise _Retry(f"HTTP {status} {response.reason_phrase}".rstrip())
        if not 200 <= status < 300:
            raise _status_error(response, where, self.config)
        body = response.content
        try:
            batch, cursor = self.parse(body)
        except _Malformed as exc:
            raise _Retry(f"malformed page: {exc}", malformed=True) from None
        except (SourceError, SchemaDriftError) as exc:
            exc.where = exc.where or where
            raise
        next_link = response.links.get("next", {}).get("url")
        return _Page(
            batch=batch, cursor=cursor, next_url=next_link, url=str(response.url), body=body
        )

    def _redact(self, text: str) -> str:
        """``text`` without header values (nor the words of them, like a bearer token)."""
        secrets = [v.get_secret_value() for v in self.config.headers.values()]
        if self.config.auth is not None:
            secrets.append(self.config.auth.value.get_secret_value())
        words = {w for s in secrets for w in (s, *s.split()) if len(w) > 3}
        for secret in sorted(words, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def _status_error(response: httpx.Response, where: str, config: RestConfig) -> SourceError:
    status = response.status_code
    if status in (401, 403):
        names = [config.auth.header] if config.auth else []
        names += list(config.headers)
        sent = f"headers sent: {', '.join(names)}" if names else "no auth configured"
        hint = f"check the credentials in ${{env:…}} referenced by auth/headers ({sent})"
    else:
        hint = _HINTS.get(status, "the API refused the request; see its documentation")
    return SourceError(f"HTTP {status} {response.reason_phrase}".rstrip(), where=where, hint=hint)


_HINTS = {
    404: "check url; the resource or page does not exist",
    400: "the API rejected the query; check params, pagination and incremental.format",
    422: "the API rejected the query; check params, pagination and incremental.format",
}


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP-date)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _public_url(url: str) -> str:
    """``url`` without credentials, query string or fragment: safe for messages."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    default = {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, parsed.host, parsed.port or default


# -- page bodies → Arrow -------------------------------------------------------------------------


class _PageParser:
    """Turns one JSON body into a record batch with pyarrow's JSON reader (no per-row Python).

    Fields pyarrow cannot read as their contract type (dates, times) are read as strings and
    cast later; a field whose JSON values turn out to be strings (``"42"`` for an int) is
    switched to string once and cast the same way. Unknown record fields are noticed by letting
    the reader infer them; when that fails on a mixed-type field, pages are read ignoring them
    and their names are found with ``json`` (a slow path, about 3x the fast one).
    """

    def __init__(self, schema: pa.Schema, records_path: str, cursor_path: str, hidden: str | None):
        self.schema = schema
        self.wrap = not records_path
        self.records = records_path.split(".") if records_path else [_WRAP]
        self.cursor = cursor_path.split(".") if cursor_path else []
        self.types: dict[str, pa.DataType] = {f.name: _read_type(f.type) for f in schema}
        if hidden is not None:
            self.types[hidden] = _TS_UTC
        self.as_string: set[str] = set()
        self.int_cursor = False
        self.extra_fields: dict[str, int] = {}
        self._options: dict[bool, pj.ParseOptions] = {}
        self.infer = True

    def parse(self, body: bytes) -> tuple[pa.RecordBatch, str | None]:
        data = b'{"' + _WRAP.encode() + b'":' + body + b"}" if self.wrap else body
        table, inferred = self._read(data)
        if table.num_rows != 1:
            raise _Malformed(f"expected one JSON document, got {table.num_rows}")
        listing = _dig(table, self.records)
        if listing.null_count:
            raise _Malformed(f"records_path {'.'.join(self.records)!r} is missing or null")
        records = listing.flatten()
        if records.null_count:
            raise SourceError(
                f"the record list holds {records.null_count} null entries",
                hint="every entry at records_path must be a JSON object",
            )
        if inferred:
            self._count_extras(records)
        else:
            self._scan_extras(data)
        cursor = _dig(table, self.cursor)[0].as_py() if self.cursor else None
        cursor = None if cursor is None or cursor == "" else str(cursor)
        return pa.RecordBatch.from_struct_array(records), cursor

    def _read(self, data: bytes) -> tuple[pa.Table, bool]:
        infer = self.infer
        options = pj.ReadOptions(block_size=len(data) + 1, use_threads=False)
        for _ in range(len(self.types) + 3):
            parse_options = self._parse_options(infer)
            try:
                return pj.read_json(pa.BufferReader(data), options, parse_options), infer
            except pa.ArrowInvalid as exc:
                message = str(exc)  # handled outside: the reader's text may quote a value
            infer = self._recover(message, infer)
            self.infer = self.infer and infer  # this API's pages cannot be inferred: stop trying
        raise _Malformed("the reader kept failing")

    def _parse_options(self, infer: bool) -> pj.ParseOptions:
        if infer not in self._options:
            tree: dict[str, Any] = {}
            records = pa.list_(pa.struct([pa.field(n, t) for n, t in self.types.items()]))
            _plant(tree, self.records, records)
            if self.cursor:
                _plant(tree, self.cursor, pa.int64() if self.int_cursor else pa.string())
            self._options[infer] = pj.ParseOptions(
                explicit_schema=pa.schema(_fields(tree)),
                newlines_in_values=True,
                unexpected_field_behavior="infer" if infer else "ignore",
            )
        return self._options[infer]

    def _recover(self, message: str, infer: bool) -> bool:
        """Adjust the read after a reader error and return whether to keep inferring extras.

        Raises SchemaDriftError for a contract field of the wrong JSON type, _Malformed for a
        body that is not the expected document.
        """
        changed = _CHANGED.search(message)
        if changed is None:
            converting = _CONVERT.search(message)
            if converting is None:
                raise _Malformed(re.sub(r"^JSON parse error: |\.? in row \d+$", "", message))
            names = [n for n, t in self.types.items() if str(t) == converting["type"]]
            if not names:
                raise _Malformed(f"a value is not {converting['type']}")
            raise SchemaDriftError(
                f"field {' or '.join(map(repr, names))} holds a value that is not {converting['type']}",
                hint="fix the source or change the column's physicalType in the contract",
            )
        path = [p for p in changed["path"].split("/") if p]
        got = changed["got"]
        inside = [*self.records, "[]"]
        if path[: len(inside)] == inside and len(path) > len(inside):
            return self._field_changed(
                path[len(inside)], nested=len(path) > len(inside) + 1, got=got, infer=infer
            )
        if self.cursor and path == self.cursor and got == "number" and not self.int_cursor:
            self.int_cursor = True
            self._options.clear()
            return infer
        if path == inside[: len(path)] or (self.cursor and path == self.cursor[: len(path)]):
            raise _Malformed(f"{'.'.join(path) or 'the body'} is a JSON {got}")
        if infer:
            return False  # a mixed-type field outside the contract: re-read ignoring it
        raise _Malformed(message)

    def _field_changed(self, name: str, *, nested: bool, got: str, infer: bool) -> bool:
        if name not in self.types:
            if infer:
                return False
            raise _Malformed(f"record field {name!r} could not be read")
        if not nested and got == "string" and name not in self.as_string:
            self.as_string.add(name)
            self.types[name] = pa.string()
            self._options.clear()
            return infer
        expected = self.schema.field(name).type if name in self.schema.names else "timestamps"
        kinds = f"both JSON string and {got}" if name in self.as_string else f"JSON {got}"
        raise SchemaDriftError(
            f"field {name!r} holds {kinds} values; the contract expects {expected}",
            hint="fix the source or change the column's physicalType in the contract",
        )

    def _count_extras(self, records: pa.StructArray) -> None:
        for index, fld in enumerate(records.type):
            if fld.name not in self.types:
                child = records.field(index)
                self.extra_fields[fld.name] = (
                    self.extra_fields.get(fld.name, 0) + len(child) - child.null_count
                )

    def _scan_extras(self, data: bytes) -> None:
        """Slow path: names of unknown record fields via ``json``, when inference failed."""
        try:
            node: Any = json.loads(data)
        except ValueError:
            return
        for part in self.records:
            node = node.get(part) if isinstance(node, dict) else None
        for record in node if isinstance(node, list) else []:
            for name in record.keys() - self.types.keys() if isinstance(record, dict) else ():
                self.extra_fields[name] = self.extra_fields.get(name, 0) + 1


def _read_type(dtype: pa.DataType) -> pa.DataType:
    """What the JSON reader should produce for a contract type: itself, or string to cast."""
    direct = any(getattr(_T, f"is_{kind}")(dtype) for kind in _JSON_READS)
    direct = direct and not _T.is_float16(dtype)
    return dtype if direct else pa.string()


def _plant(tree: dict[str, Any], path: list[str], leaf: pa.DataType) -> None:
    for name in path[:-1]:
        tree = tree.setdefault(name, {})
    tree[path[-1]] = leaf


def _fields(tree: dict[str, Any]) -> list[pa.Field]:
    return [
        pa.field(k, pa.struct(_fields(v)) if isinstance(v, dict) else v) for k, v in tree.items()
    ]


def _dig(table: pa.Table, path: list[str]) -> pa.Array:
    column = table.column(path[0])
    node = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    for name in path[1:]:
        node = node.field(name)
    return node


def _shape(raw: pa.RecordBatch, schema: pa.Schema, where: str) -> pa.RecordBatch:
    """Cast fields read as strings, check required ones, and conform to ``schema``.

    Messages name fields and types, never values (they may be personal data).
    """
    arrays = []
    for fld in schema:
        column = raw.column(fld.name)
        if column.type != fld.type:
            try:
                column = pc.cast(column, fld.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise SchemaDriftError(
                    f"field {fld.name!r} has values that cannot be read as {fld.type}",
                    where=where,
                    hint="fix the source or change the column's physicalType in the contract",
                ) from None
        if not fld.nullable and column.null_count:
            raise SchemaDriftError(
                f"required field {fld.name!r} is missing or null in {column.null_count} of "
                f"{len(column)} records",
                where=where,
                hint="the API dropped or renamed it; update the contract or the source",
            )
        arrays.append(column)
    return conform(pa.RecordBatch.from_arrays(arrays, schema=schema), schema, where=where)


# -- watermarks ----------------------------------------------------------------------------------


def _check_incremental(schema: pa.Schema, name: str) -> str | None:
    """The field to read besides the contract's (None when the contract has it); checks its type."""
    if name not in schema.names:
        return name
    dtype = schema.field(name).type
    if not (_T.is_timestamp(dtype) or _T.is_date(dtype) or _T.is_string(dtype)):
        raise ConfigError(
            f"incremental.field {name!r} is {dtype} in the contract",
            hint="use a timestamp, date or ISO 8601 string field as the change time",
        )
    return None


def _max_micros(column: pa.Array, name: str, where: str) -> int | None:
    """The latest time in ``column`` as µs since the epoch (naive times are taken as UTC)."""
    if _T.is_string(column.type) or _T.is_large_string(column.type):
        for target in (_TS_UTC, pa.timestamp("us")):
            try:
                column = pc.cast(column, target)
                break
            except pa.ArrowInvalid:
                continue
        else:
            raise SchemaDriftError(
                f"incremental field {name!r} holds values that are not ISO 8601 timestamps",
                where=where,
                hint="point incremental.field at the record's change time",
            )
    if _T.is_date(column.type):
        column = pc.cast(column, pa.timestamp("us"))
    unit = pa.timestamp("us", tz=column.type.tz)
    value = pc.max(pc.cast(column, unit, safe=False).cast(pa.int64())).as_py()
    return None if value is None else int(value)


def _committed(position: Position | None) -> int | None:
    value = position.get("watermark") if position else None
    if not value:
        return None
    try:
        return _micros(_parse_time(str(value)))
    except ValueError:
        raise SourceError(
            f"the committed watermark {value!r} is not an ISO 8601 timestamp",
            hint="restore the table to a version written by the rest source, or backfill",
        ) from None


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _datetime(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


def _iso(micros: int) -> str:
    """``2024-05-01T12:00:00Z`` (with ``.ffffff`` when there are fractions of a second)."""
    moment = _datetime(micros)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _format_time(micros: int, fmt: str) -> str:
    if fmt == "iso":
        return _iso(micros)
    if fmt == "unix":
        return str(micros // 1_000_000)
    if fmt == "unix_ms":
        return str(micros // 1_000)
    return _datetime(micros).strftime(fmt)
