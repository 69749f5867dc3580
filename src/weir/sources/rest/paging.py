"""Which page to ask for next: the first request, then one per pagination style's rule."""

from __future__ import annotations

import httpx

from weir.errors import SourceError
from weir.sources.rest.client import origin, public_url
from weir.sources.rest.config import (
    CursorPagination,
    NoPagination,
    OffsetPagination,
    PagePagination,
    RestConfig,
)
from weir.sources.rest.fetch import Page, Request
from weir.sources.rest.watermark import format_time


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
        if not page.batch.num_rows:
            return None
        step = 1 if isinstance(pager, PagePagination) else page.batch.num_rows
        value = str(int(request.params[pager.param]) + step)
        return Request(request.url, {**request.params, pager.param: value})
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
