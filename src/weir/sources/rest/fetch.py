"""One page: a GET and its retries — the only retry layer of a REST read.

tenacity drives the attempts: 429, 5xx, timeouts, dropped connections and malformed bodies are
asked again up to ``max_attempts`` times, waiting ``Retry-After`` when the server says how
long, else ``backoff_seconds × 2ⁿ`` plus up to ``backoff_seconds`` of random jitter, never
more than ``max_wait_seconds``. A server asking for a longer wait fails the read at once. Each
retry is announced through ``notify``; giving up raises one error saying what happened, marked
``retried`` so the pipeline does not ask again. ``sleep`` and ``clock`` are injectable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import NoReturn

import httpx
import pyarrow as pa
import tenacity

from weir.errors import SchemaDriftError, SourceError, TransientSourceError
from weir.sources.problems import Problem
from weir.sources.rest.client import Redactor, public_url, retry_after, status_error
from weir.sources.rest.config import RestConfig
from weir.sources.rest.parse import Malformed, Parsed


@dataclasses.dataclass(frozen=True)
class Request:
    url: str
    params: dict[str, str]

    def key(self) -> tuple[str, ...]:
        """The request as the server sees it (query merged and sorted), to spot a repeat."""
        url = httpx.URL(self.url).copy_merge_params(self.params)
        query = sorted(f"{k}={v}" for k, v in url.params.multi_items())
        return (url.scheme, url.host, str(url.port), url.path, *query)


@dataclasses.dataclass(frozen=True)
class Page:
    batch: pa.RecordBatch
    """As read: the contract's fields (some still strings), the watermark field, extras."""
    cursor: str | None
    total: int | None
    next_url: str | None
    url: str
    body: bytes
    problems: tuple[Problem, ...] = ()
    """Records of the page that are parse problems already (see PageParser)."""


class _Retry(Exception):
    """A failed attempt worth repeating; ``delay``: the wait the server asked for."""

    def __init__(self, cause: str, *, delay: float | None = None, malformed: bool = False):
        super().__init__(cause)
        self.cause, self.delay, self.malformed = cause, delay, malformed


class Fetcher:
    """GETs pages with ``client``, each with its own attempts (see the module docstring)."""

    def __init__(
        self,
        client: httpx.Client,
        config: RestConfig,
        parse: Callable[[bytes, int], Parsed],
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], datetime],
        notify: Callable[[str], None],
    ):
        self.client, self.config, self.parse = client, config, parse
        self.clock, self.notify = clock, notify
        self.redact = Redactor(config)
        self._backoff = tenacity.wait_exponential_jitter(
            multiplier=config.backoff_seconds,
            jitter=config.backoff_seconds,
            max=config.max_wait_seconds,
        )
        self._retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(config.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retry),
            sleep=sleep,
            reraise=True,
        )

    def fetch(self, request: Request, number: int) -> Page:
        where = f"{public_url(request.url)} (page {number})"
        retrying = self._retrying.copy(before_sleep=lambda state: self._announce(state, where))
        try:
            return retrying(self._attempt, request, where, number)
        except _Retry as failure:
            raise self._gave_up(failure, number, where) from None

    def _attempt(self, request: Request, where: str, number: int) -> Page:
        try:
            response = self.client.get(request.url, params=request.params or None)
        except httpx.TimeoutException as exc:
            raise _Retry(f"timed out after {self.config.timeout_seconds:g}s") from exc
        except httpx.TooManyRedirects:
            raise SourceError("too many redirects", where=where, hint="check url") from None
        except httpx.RequestError as exc:
            raise _Retry(f"connection failed ({type(exc).__name__})") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            self._refuse(response, where)
        if not 200 <= status < 300:
            raise status_error(response, where, self.config)
        body = response.content
        try:
            parsed = self.parse(body, number)
        except Malformed as exc:
            raise _Retry(f"malformed page: {exc}", malformed=True) from None
        except (SourceError, SchemaDriftError) as exc:
            exc.where = exc.where or where
            raise
        return Page(
            batch=parsed.batch,
            cursor=parsed.cursor,
            total=parsed.total,
            problems=parsed.problems,
            next_url=response.links.get("next", {}).get("url"),
            url=str(response.url),
            body=body,
        )

    def _refuse(self, response: httpx.Response, where: str) -> NoReturn:
        """Raise for a 429 or 5xx: a retry after the server's wait, or the end of the read."""
        cause = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        delay = None
        if response.status_code in (429, 503):  # the two that may carry Retry-After
            delay = retry_after(response.headers.get("Retry-After"), self.clock())
        cap = self.config.max_wait_seconds
        if delay is not None and delay > cap:
            raise TransientSourceError(
                f"{cause}: the server asks to wait {delay:.0f}s before the next request "
                f"(Retry-After), longer than max_wait_seconds ({cap:g}s); not waiting",
                where=where,
                hint="run again later, or raise max_wait_seconds to wait that long in the run",
                retried=True,
            )
        raise _Retry(cause, delay=delay)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, _Retry) and failure.delay is not None:
            return failure.delay
        return self._backoff(state)

    def _announce(self, state: tenacity.RetryCallState, where: str) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        cause = failure.cause if isinstance(failure, _Retry) else "failed"
        self.notify(
            f"{where}: {self.redact(cause)}; attempt {state.attempt_number} of "
            f"{self.config.max_attempts}, retrying in {delay:.1f}s"
        )

    def _gave_up(self, failure: _Retry, number: int, where: str) -> SourceError:
        cause = self.redact(failure.cause)
        attempts = _attempts(self.config.max_attempts)
        if failure.malformed:
            return SourceError(
                f"page {number} is malformed after {attempts}: "
                + cause.removeprefix("malformed page: "),
                where=where,
                hint=f"check that the API returns JSON with the records at records_path "
                f"{self.config.records_path or '(the body)'!r}",
            )
        return TransientSourceError(
            f"page {number} failed after {attempts}; last cause: {cause}",
            where=where,
            hint="the API is unavailable or throttling; run again later or raise max_attempts",
            retried=True,
        )


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"
