"""The REST source: a read is pages fetched one after another, each turned into a batch."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from weir.sources.base import Extraction, Position, Source, SourceContext
from weir.sources.problems import Problem
from weir.sources.rest.client import make_client, public_url
from weir.sources.rest.config import CursorPagination, RestConfig
from weir.sources.rest.fetch import Fetcher
from weir.sources.rest.paging import Pager, first_request
from weir.sources.rest.parse import PageParser, shape
from weir.sources.rest.watermark import (
    check_incremental,
    committed,
    iso,
    max_micros,
    micros,
    parse_time,
)


def _now() -> datetime:
    return datetime.now(UTC)


class RestSource(Source):
    """Reads a paginated JSON API. ``sleep`` (back-off waits) and ``clock`` (the time an
    HTTP-date ``Retry-After`` is measured from) are replaceable, so tests run instantly."""

    kind = "rest"
    Config = RestConfig

    def __init__(self, config: Any, context: SourceContext):
        super().__init__(config, context)
        self.sleep: Callable[[float], None] = time.sleep
        self.clock: Callable[[], datetime] = _now

    def probe(self, position: Position | None, schema: pa.Schema | None = None) -> pa.Schema | None:
        """None: an API's schema cannot be known without reading it."""
        return None

    def extract(self, position: Position | None, schema: pa.Schema) -> Extraction:
        config: RestConfig = self.config
        latest: int | None = None
        since: int | None = None
        hidden: str | None = None
        inc = config.incremental
        if inc is not None:
            hidden = check_incremental(schema, inc.field)
            latest = committed(position)
            if latest is not None:
                since = latest - round(inc.lookback_seconds * 1_000_000)
            elif inc.initial is not None:
                since = micros(parse_time(inc.initial))
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
            parser=parser,
            sleep=self.sleep,
            clock=self.clock,
            notify=self.context.notify,
            context=self.context,
            since=since,
            latest=latest,
        )

    @staticmethod
    def describe(position: Position | None) -> str | None:
        value = position.get("watermark") if position else None
        return str(value) if value else None


@dataclasses.dataclass(kw_only=True)
class RestExtraction(Extraction):
    """Pages fetched lazily by :meth:`batches`; the watermark grows with every page."""

    config: RestConfig
    parser: PageParser
    sleep: Callable[[float], None]
    clock: Callable[[], datetime]
    notify: Callable[[str], None]
    """Where retry notices go (the run's progress output)."""
    context: SourceContext | None = None
    """The run's context: PII names and what an unparsable value does (``on_parse_error``)."""
    since: int | None
    """The value sent in ``incremental.param``, µs since the epoch (UTC)."""
    latest: int | None
    """The largest change time seen so far (starts at the committed watermark)."""
    pages: int = 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        config = self.config
        pager = Pager(config, first_request(config, self.since), self.warnings)
        with make_client(config) as client:
            fetcher = Fetcher(
                client,
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
        if inc is not None and raw.num_rows:
            column = (
                batch.column(inc.field) if inc.field in self.schema.names else raw.column(inc.field)
            )
            newest = max_micros(column, inc.field, where)
            if newest is not None and (self.latest is None or newest > self.latest):
                self.latest = newest
        return batch

    def position(self) -> dict[str, Any]:
        return {"watermark": iso(self.latest)} if self.latest is not None else {}

    def overlap(self) -> tuple[str | None, str | None]:
        """Every read may repeat rows: the lookback window of an incremental read (the
        ``updated_since`` bound is inclusive), or everything for a full pull."""
        inc = self.config.incremental
        if inc is None or inc.field not in self.schema.names:
            return None, None
        return inc.field, (iso(self.since) if self.since is not None else None)

    def watermark(self) -> str | None:
        return iso(self.latest) if self.latest is not None else None
