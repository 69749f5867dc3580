"""One page: a GET and its retries.

429 waits ``Retry-After``; 5xx, timeouts, connection errors and malformed pages back off
``backoff_seconds`` × 2ⁿ, up to ``max_attempts`` attempts.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import httpx
import pyarrow as pa

from weir.errors import SchemaDriftError, SourceError, TransientSourceError
from weir.sources.rest.client import Redactor, public_url, retry_after, status_error
from weir.sources.rest.config import RestConfig
from weir.sources.rest.parse import Malformed, Parsed

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Request:
    url: str
    params: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Page:
    batch: pa.RecordBatch
    """As read: the contract's fields (some still strings), the watermark field, extras."""
    cursor: str | None
    next_url: str | None
    url: str
    body: bytes


class _Retry(Exception):
    """A failed attempt worth repeating."""

    def __init__(self, cause: str, *, delay: float | None = None, malformed: bool = False):
        super().__init__(cause)
        self.cause, self.delay, self.malformed = cause, delay, malformed


class Fetcher:
    """GET one page, retrying 429, 5xx, timeouts, connection errors and malformed bodies."""

    def __init__(
        self,
        client: httpx.Client,
        config: RestConfig,
        parse: Callable[[bytes], Parsed],
        *,
        sleep: Callable[[float], None],
    ):
        self.client, self.config, self.parse, self.sleep = client, config, parse, sleep
        self.redact = Redactor(config)

    def fetch(self, request: Request, number: int) -> Page:
        where = f"{public_url(request.url)} (page {number})"
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
                note = f"{where}: {self.redact(retry.cause)}"
                log.warning("%s; attempt %d of %d, retrying in %gs", note, attempt, attempts, delay)
                self.sleep(delay)
        cause = self.redact(failure.cause)
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

    def _attempt(self, request: Request, where: str) -> Page:
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
            delay = retry_after(response.headers.get("Retry-After"))
            raise _Retry("HTTP 429 Too Many Requests", delay=delay)
        if status >= 500:
            raise _Retry(f"HTTP {status} {response.reason_phrase}".rstrip())
        if not 200 <= status < 300:
            raise status_error(response, where, self.config)
        body = response.content
        try:
            parsed = self.parse(body)
        except Malformed as exc:
            raise _Retry(f"malformed page: {exc}", malformed=True) from None
        except (SourceError, SchemaDriftError) as exc:
            exc.where = exc.where or where
            raise
        return Page(
            batch=parsed.batch,
            cursor=parsed.cursor,
            next_url=response.links.get("next", {}).get("url"),
            url=str(response.url),
            body=body,
        )
