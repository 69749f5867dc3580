"""Which page to ask for next, and when a read must stop.

A :class:`Pager` follows the pagination style page after page and refuses to go on where
going on would loop or lose records silently:

- **max_pages**: a read that still has a next page after ``max_pages`` requests fails
  (a plain SourceError: asking again would paginate the same way).
- **cycles**: a next page whose request (cursor, link, parameters) this read already made
  fails naming both pages; an API that repeats the previous page's body under a new page
  number fails too (it ignores the paging parameter).
- **incomplete reads**: an empty page that would end a read right after a full page (one with
  ``page_size`` records or more) is checked by asking for what follows it: the next page
  number for ``page`` pagination, the same request again for the others (an empty page does
  not advance an offset, cursor or link). Records on the next page number mean the empty page
  was a gap (records may be missing); records on asking again mean the API answered
  inconsistently (nothing is missing: a warning). With ``total_path``, a read ending with
  fewer records than the API's largest reported total is incomplete too. ``on_incomplete``
  says whether an incomplete read is a warning or a (transient) failure. Cursor and link
  reads follow an empty page that still points to a next page (APIs may filter a page's
  records away), with a warning.
"""

from __future__ import annotations

import hashlib
from typing import NoReturn

import httpx

from weir.errors import SourceError, TransientSourceError
from weir.sources.incremental import format_time
from weir.sources.rest.client import origin, public_url
from weir.sources.rest.config import (
    CursorPagination,
    NoPagination,
    OffsetPagination,
    PagePagination,
    RestConfig,
)
from weir.sources.rest.fetch import Page, Request


def first_request(config: RestConfig, since: int | None) -> Request:
    """Page one: the static params, the paging start and size, the incremental bound."""
    params = {
        k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in config.params.items()
    }
    pager = config.pagination
    if isinstance(pager, PagePagination | OffsetPagination):
        params[pager.param] = str(pager.start)
    if not isinstance(pager, NoPagination) and pager.size_param and config.page_size:
        params[pager.size_param] = str(config.page_size)
    if config.incremental is not None and since is not None:
        params[config.incremental.param] = format_time(since, config.incremental.format)
    return Request(config.url, params)


def successor(config: RestConfig, request: Request, page: Page, where: str) -> Request | None:
    """The request for the page after ``page`` by the style's rule, or None at the end."""
    pager = config.pagination
    if isinstance(pager, NoPagination):
        return None
    if isinstance(pager, PagePagination | OffsetPagination):
        return _advanced(config, request, page.batch.num_rows) if page.batch.num_rows else None
    if isinstance(pager, CursorPagination):
        if not page.cursor:
            return None
        return Request(request.url, {**request.params, pager.param: page.cursor})
    if not page.next_url:
        return None
    target = str(httpx.URL(page.url).join(page.next_url))
    if origin(target) != origin(page.url):
        raise SourceError(
            f"the next-page link points to another site ({public_url(target)})",
            where=where,
            hint="weir only follows links on the API's own origin, so credentials stay there",
        )
    return Request(target, {})


def _advanced(config: RestConfig, request: Request, rows: int) -> Request:
    """The page or offset parameter moved on: one page, or ``rows`` records."""
    pager = config.pagination
    assert isinstance(pager, PagePagination | OffsetPagination)
    step = 1 if isinstance(pager, PagePagination) else rows
    value = str(int(request.params[pager.param]) + step)
    return Request(request.url, {**request.params, pager.param: value})


def _check_request(config: RestConfig, request: Request) -> Request | None:
    """What to ask for after an empty page to learn whether the data really ends there."""
    if isinstance(config.pagination, NoPagination):
        return None
    if isinstance(config.pagination, PagePagination):
        return _advanced(config, request, 0)
    return request  # an empty page did not move the offset, cursor or link: ask again


class Pager:
    """The pages of one read: :meth:`take` the next request, report its page to :meth:`took`.

    Warnings about the read go to ``warnings`` (the extraction's, so the run record has them).
    """

    def __init__(self, config: RestConfig, first: Request, warnings: list[str]):
        self.config = config
        self.warnings = warnings
        self.pending: Request | None = first
        self.number = 0
        """Pages asked for so far (1-based number of the latest)."""
        self.received = 0
        self.total: int | None = None
        """The largest count of matching records the API reported at ``total_path``."""
        self._seen: dict[bytes, int] = {_digest(first): 1}
        self._previous = b""
        self._full = False
        self._checking: int | None = None
        """The empty page whose follower is being asked for, to tell an end from a gap."""
        self._empty_with_next: list[int] = []

    def take(self) -> tuple[Request, int] | None:
        """The next request and its page number, or None when the read is over."""
        if self.pending is None:
            return None
        request, self.pending = self.pending, None
        self.number += 1
        return request, self.number

    def took(self, request: Request, page: Page, where: str) -> None:
        """Account for the page just fetched and decide the next one; raise when the read
        must stop (a repeat, a cycle, past max_pages, an incomplete read in fail mode)."""
        rows = page.batch.num_rows
        if rows and page.body == self._previous:
            raise SourceError(
                f"page {self.number} repeats the previous page",
                where=where,
                hint="the API seems to ignore the pagination parameter; check pagination",
            )
        self._previous = page.body
        self.received += rows
        if page.total is not None:
            self.total = page.total if self.total is None else max(self.total, page.total)
        following = self._following(request, page, where)
        if following is None:
            self._finish(where)
            return
        if self.number >= self.config.max_pages:
            self._past_max_pages(where)
        key = _digest(following)
        if self._checking != self.number and key in self._seen:
            raise SourceError(
                f"pagination loops: the page after page {self.number} is page "
                f"{self._seen[key]} again (the same request)",
                where=where,
                hint="the API handed out a cursor or next link it gave before in this read; "
                "check pagination against the API's documentation",
            )
        self._seen.setdefault(key, self.number + 1)
        self.pending = following

    def _following(self, request: Request, page: Page, where: str) -> Request | None:
        rows = page.batch.num_rows
        after = successor(self.config, request, page, where)
        checked, self._checking = self._checking, None
        if checked is not None and rows:
            self._gap(checked, rows, where)
        elif not rows and after is not None:
            self._empty_with_next.append(self.number)
        elif checked is None and after is None and not rows and self._full:
            check = _check_request(self.config, request)
            if check is not None and self.number < self.config.max_pages:
                self._checking, after = self.number, check
        size = self.config.page_size
        self._full = size is not None and rows >= size
        return after

    def _gap(self, empty: int, rows: int, where: str) -> None:
        if isinstance(self.config.pagination, PagePagination):
            self._incomplete(
                f"page {empty} came back empty after a full page, but page {self.number} "
                f"holds {rows} records: the records of page {empty} may be missing",
                where,
            )
            return
        self.warnings.append(
            f"{where}: page {empty} came back empty after a full page; asked again, it held "
            f"{rows} records (the API answered inconsistently; nothing is missing)"
        )

    def _finish(self, where: str) -> None:
        if self._empty_with_next:
            empty = self._empty_with_next
            pages = (
                f"page {empty[0]}" if len(empty) == 1 else f"{len(empty)} pages (from {empty[0]})"
            )
            self.warnings.append(
                f"{where}: {pages} came back empty but pointed to a next page; the read went "
                "on (set total_path to check reads against the API's count)"
            )
        path = self.config.total_path
        if path is None:
            return
        if self.total is None:
            self.warnings.append(
                f"{where}: no page had a number at total_path {path!r}; the read could not "
                "be checked against the API's count"
            )
        elif self.received < self.total:
            self._incomplete(
                f"the API reported {self.total} records at total_path {path!r}, but the read "
                f"ended after {self.received} in {self.number} pages",
                where,
            )

    def _incomplete(self, message: str, where: str) -> None:
        if self.config.on_incomplete == "fail":
            raise TransientSourceError(
                f"the read looks incomplete: {message}",
                where=where,
                hint="the API skipped records; error_handling retries the read, or set "
                "on_incomplete: warn to keep such reads with a warning",
            )
        self.warnings.append(
            f"{where}: the read looks incomplete: {message} (kept what was read; "
            "set on_incomplete: fail to stop such reads)"
        )

    def _past_max_pages(self, where: str) -> NoReturn:
        limit = self.config.max_pages
        raise SourceError(
            f"the API kept paginating past max_pages={limit}: page {self.number} points to "
            "a next page",
            where=where,
            hint="if the API really has more, raise max_pages (or page_size, to need fewer "
            "pages); if not, check pagination: an API that ignores the paging parameter or "
            "hands out a new cursor on every page never ends",
        )


def _digest(request: Request) -> bytes:
    return hashlib.blake2b("\n".join(request.key()).encode(), digest_size=16).digest()
