"""The REST source: a read is pages fetched one after another, each turned into a batch."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa

from weir.sources.base import Extraction, Position, Source, SourceContext
from weir.sources.incremental import (
    Watermark,
    check_cursor,
    describe,
    lookback_micros,
    micros,
    parse_time,
)
from weir.sources.problems import Problem
from weir.sources.rest.client import make_client, public_url
from weir.sources.rest.config import CursorPagination, RestConfig
from weir.sources.rest.fetch import Fetcher
from weir.sources.rest.paging import Pager, first_request
from weir.sources.rest.parse import PageParser, shape


def _now() -> datetime:
    return datetime.now(UTC)


class RestSource(Source[RestConfig]):
    """Reads a paginated JSON API. ``sleep`` (back-off waits) and ``clock`` (the time an
    HTTP-date ``Retry-After`` is measured from) are replaceable, so tests run instantly.

    One httpx client, made on first use, serves every request of the source until
    :meth:`close`: a run's extract attempts share its connections."""

    kind = "rest"

    def __init__(self, config: RestConfig, context: SourceContext):
        super().__init__(config, context)
        self.sleep: Callable[[float], None] = time.sleep
        self.clock: Callable[[], datetime] = _now
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        """The source's HTTP client, made on first use (again after :meth:`close`)."""
        if self._client is None:
            self._client = make_client(self.config)
        return self._client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def probe(self, position: Position | None, schema: pa.Schema | None = None) -> pa.Schema | None:
        """None: an API's schema cannot be known without reading it."""
        return None

    def extract(self, position: Position | None, schema: pa.Schema) -> Extraction:
        config = self.config
        hidden: str | None = None
        mark: Watermark | None = None
        inc = config.incremental
        if inc is not None:
            if check_cursor(schema, inc.field, kinds=("time",)) is None:
                hidden = inc.field  # read beside the contract's fields
            initial = micros(parse_time(inc.initial)) if inc.initial is not None else None
            lookback = lookback_micros(inc.lookback_seconds)
            mark = Watermark.start("time", position, lookback=lookback, initial=initial)
        pager = config.pagination
        parser = PageParser(
            schema,
            config.records_path,
            cursor_path=pager.path if isinstance(pager, CursorPagination) else "",
            total_path=config.total_path or "",
            hidden=hidden,
            pii=frozenset(self.context.pii),
            flatten=config.flatten,
        )
        return RestExtraction(
            schema=schema,
            config=config,
            client=self.client,
            parser=parser,
            sleep=self.sleep,
            clock=self.clock,
            notify=self.context.notify,
            context=self.context,
            mark=mark,
        )

    @staticmethod
    def describe(position: Position | None) -> str | None:
        return describe(position)


@dataclasses.dataclass(kw_only=True)
class RestExtraction(Extraction):
    """Pages fetched lazily by :meth:`batches`; the watermark grows with every page."""

    config: RestConfig
    client: httpx.Client
    """The source's client (see :attr:`RestSource.client`); closed with the source."""
    parser: PageParser
    sleep: Callable[[float], None]
    clock: Callable[[], datetime]
    notify: Callable[[str], None]
    """Where retry notices go (the run's progress output)."""
    context: SourceContext | None = None
    """The run's context: PII names and what an unparsable value does (``on_parse_error``)."""
    mark: Watermark | None
    """The incremental read's watermark (None: a full pull), moved on by every page."""
    pages: int = 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        config = self.config
        since = self.mark.since if self.mark is not None else None
        pager = Pager(config, first_request(config, since), self.warnings)
        fetcher = Fetcher(
            self.client,
            config,
            self.parser.parse,
            sleep=self.sleep,
            clock=self.clock,
            notify=self.notify,
        )
        while (step := pager.take()) is not None:
            request, self.pages = step
            page = fetcher.fetch(request, self.pages)
            where = f"{public_url(page.url)} (page {self.pages})"
            batch = self._accept(page.batch, where, page.problems)
            pager.took(request, page, where)
            if batch.num_rows:
                yield batch

    def _accept(
        self, raw: pa.RecordBatch, where: str, problems: Sequence[Problem] = ()
    ) -> pa.RecordBatch:
        for name in self.parser.extra_fields:
            message = f"field {name!r} is not in the contract; ignored"
            if message not in self.warnings:
                self.warnings.append(message)
        batch = shape(raw, self.schema, where, self.context, self.pages, problems)
        inc = self.config.incremental
        if self.mark is not None and inc is not None and raw.num_rows:
            column = (
                batch.column(inc.field) if inc.field in self.schema.names else raw.column(inc.field)
            )
            self.mark.advance(column, inc.field, where)
        return batch

    def position(self) -> dict[str, Any]:
        return self.mark.position() if self.mark is not None else {}

    def overlap(self) -> tuple[str | None, str | None]:
        """Every read may repeat rows: the lookback window of an incremental read (the
        ``updated_since`` bound is inclusive), or everything for a full pull."""
        inc = self.config.incremental
        if self.mark is None or inc is None:
            return None, None
        return self.mark.overlap(inc.field if inc.field in self.schema.names else None)

    def watermark(self) -> str | None:
        return self.mark.text() if self.mark is not None else None
