"""The REST source's configuration: the ``extract:`` block of a ``source: rest`` pipeline."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr, field_validator, model_validator

from weir.sources.incremental import parse_time
from weir.spec.base import Strict

_SECRET_NAME = re.compile(r"token|secret|passw|api[-_]?key|credential|signature", re.IGNORECASE)
Param = str | int | float | bool

MAX_PAGES = 10_000
"""Default page cap of one read: a million records at 100 a page, and an API that never stops
paginating (a cursor it hands out afresh on every page) fails within minutes, not never."""


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
            parse_time(value)
        return value

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value in ("iso", "unix", "unix_ms") or "%" in value:
            return value
        raise ValueError("format must be iso, unix, unix_ms or a strftime pattern like %Y-%m-%d")


class RestConfig(Strict):
    reference: ClassVar[str] = "docs/sources.md (rest)"
    """Where the fields are documented (config errors point there)."""
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
    max_pages: int = Field(default=MAX_PAGES, gt=0)
    """Requests one read may make; an API still pointing to a next page after them fails it."""
    total_path: str | None = Field(default=None, min_length=1)
    """Dotted path of the API's count of matching records, checked against the records read."""
    on_incomplete: Literal["warn", "fail"] = "warn"
    """A read that looks cut short (an empty page in the middle, fewer records than the
    API's total): a warning in the run record, or a failed (transient) read."""
    timeout_seconds: float = Field(default=30, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)
    """Attempts per request (the first one included)."""
    backoff_seconds: float = Field(default=2.0, ge=0)
    """First back-off wait; it doubles per attempt, plus up to as much again at random."""
    max_wait_seconds: float = Field(default=300, ge=0)
    """The longest wait between two attempts: back-off stops growing there, and a server
    asking for more (``Retry-After``) fails the read at once, as transient."""
    flatten: bool = False
    """Nested objects of each record become fields named ``outer__inner``
    (:mod:`weir.sources.flatten`)."""

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
        _envelope_paths(self)
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


def _envelope_paths(config: RestConfig) -> None:
    """The cursor and the total sit beside the records, in an object body."""
    beside = {"total_path": config.total_path}
    if isinstance(config.pagination, CursorPagination):
        beside["pagination.path"] = config.pagination.path
    paths = {"records_path": config.records_path, **beside}
    for name, path in beside.items():
        if path is None:
            continue
        if not config.records_path:
            raise ValueError(f"{name} needs records_path (it sits beside the records)")
        for other, other_path in paths.items():
            if other == name or other_path is None:
                continue
            a, b = path.split("."), other_path.split(".")
            if a[: len(b)] == b or b[: len(a)] == a:
                raise ValueError(f"{name} and {other} must not contain one another")


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
