"""REST source against a real local HTTP server: pagination, incremental, retries, secrets.

Back-off sleeps and retry notices are recorded, not slept or logged (``sleeps``, ``notices``);
the clock that HTTP-date ``Retry-After`` values are measured from is fixed (``NOW``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from weir import sources
from weir.errors import ConfigError, SchemaDriftError, SourceError, TransientSourceError
from weir.sources.base import SourceContext
from weir.sources.rest import RestConfig, RestExtraction, RestSource
from weirtest.restserver import Fault, RestServer, sample_records

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("amount", pa.float64()),
        pa.field("updated_at", pa.timestamp("us", tz="UTC")),
    ]
)
TOKEN = "s3cr3t-t0ken-value"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
EMPTY = Fault(status=200, body=b'{"data": []}')
"""A page without records (and without a next cursor): a glitch, or the end."""

Serve = Callable[..., RestServer]
Make = Callable[..., RestSource]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start RestServers (default: 25 sample records) that stop when the test ends."""
    started: list[RestServer] = []

    def start(records: list[dict[str, Any]] | None = None, **options: Any) -> RestServer:
        data = sample_records(25) if records is None else records
        server = RestServer(data, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    assert not [e for s in started for e in s.errors], "the test server itself failed"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def notices() -> list[str]:
    return []


@pytest.fixture
def make(tmp_path: Any, sleeps: list[float], notices: list[str]) -> Iterator[Make]:
    """A RestSource for a server (or URL) whose back-off sleeps are recorded, not slept, and
    whose notices are collected; closed when the test ends."""
    made: list[RestSource] = []

    def build(
        target: RestServer | str, *, context: SourceContext | None = None, **config: Any
    ) -> RestSource:
        url = target.url if isinstance(target, RestServer) else target
        context = dataclasses.replace(
            context or SourceContext(pipeline="p", project_dir=str(tmp_path), run_id="r1"),
            notify=notices.append,
        )
        source = RestSource(RestConfig.model_validate({"url": url, **config}), context)
        source.sleep = sleeps.append
        source.clock = lambda: NOW
        made.append(source)
        return source

    yield build
    for source in made:
        source.close()


def assert_backoff(sleeps: list[float], base: float = 2.0, cap: float = 300.0) -> None:
    """Each wait is ``base × 2ⁿ`` plus up to ``base`` of jitter, and at most ``cap``."""
    assert sleeps, "no back-off happened"
    for n, wait in enumerate(sleeps):
        low = min(base * 2**n, cap)
        assert low <= wait <= min(low + base, cap), (n, wait, sleeps)


def run(
    source: RestSource, position: dict[str, Any] | None = None, schema: pa.Schema = SCHEMA
) -> tuple[pa.Table, RestExtraction]:
    extraction = source.extract(position, schema)
    assert isinstance(extraction, RestExtraction)
    table = pa.Table.from_batches(list(extraction.batches()), schema=schema)
    return table, extraction


# -- pagination ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "pagination", "server_options", "requests"),
    [
        ("none", "none", {}, 1),
        ("page", {"style": "page", "size_param": "per_page"}, {}, 4),
        ("offset", {"style": "offset"}, {}, 4),
        ("cursor", {"style": "cursor", "path": "meta.next_cursor"}, {}, 3),
        ("link", "link", {"relative_links": True}, 3),
        ("link", "link", {"relative_links": False}, 3),
    ],
)
def test_every_pagination_style_returns_all_rows_in_order(
    serve: Serve,
    make: Make,
    style: str,
    pagination: Any,
    server_options: dict[str, Any],
    requests: int,
) -> None:
    server = serve(pagination=style, **server_options)
    source = make(server, records_path="data", pagination=pagination, page_size=10)
    table, extraction = run(source)
    assert table.column("id").to_pylist() == list(range(1, 26))
    assert table.schema == SCHEMA
    assert len(server.data_requests) == requests
    assert extraction.position() == {}
    assert extraction.warnings == []


def test_one_batch_per_page(serve: Serve, make: Make) -> None:
    server = serve(pagination="cursor")
    source = make(
        server,
        records_path="data",
        pagination={"style": "cursor", "path": "meta.next_cursor"},
        page_size=10,
    )
    extraction = source.extract(None, SCHEMA)
    assert [b.num_rows for b in extraction.batches()] == [10, 10, 5]


def test_offset_advances_by_rows_received_when_the_server_caps_page_size(
    serve: Serve, make: Make
) -> None:
    server = serve(pagination="offset", max_page_size=4)
    table, _ = run(make(server, records_path="data", pagination="offset", page_size=10))
    assert table.column("id").to_pylist() == list(range(1, 26))
    assert [r.query["offset"] for r in server.data_requests] == [
        "0",
        "4",
        "8",
        "12",
        "16",
        "20",
        "24",
        "25",
    ]


@pytest.mark.parametrize("records_path", ["result.items", ""])
def test_records_path_nested_or_whole_body(serve: Serve, make: Make, records_path: str) -> None:
    server = serve(pagination="page", records_path=records_path)
    table, _ = run(make(server, records_path=records_path, pagination="page", page_size=10))
    assert table.column("id").to_pylist() == list(range(1, 26))


def test_pretty_printed_bodies(serve: Serve, make: Make) -> None:
    server = serve(pagination="page", indent=2, records_path="result.items")
    table, _ = run(make(server, records_path="result.items", pagination="page", page_size=10))
    assert table.column("id").to_pylist() == list(range(1, 26))


def test_static_params_and_envelope_noise(serve: Serve, make: Make) -> None:
    noise = {"meta": {"mixed": [1, "a", {"b": None}], "total": 25}, "links": []}
    server = serve(pagination="link", envelope=noise)
    table, extraction = run(
        make(server, records_path="data", pagination="link", params={"status": "open", "all": True})
    )
    assert table.num_rows == 25
    assert server.data_requests[0].query["status"] == "open"
    assert server.data_requests[0].query["all"] == "true"
    assert extraction.warnings == []


def test_page_repeating_forever_is_an_error(serve: Serve, make: Make) -> None:
    server = serve(pagination="page")
    source = make(server, records_path="data", pagination={"style": "page", "param": "pg"})
    with pytest.raises(SourceError, match="repeats the previous page"):
        run(source)
    assert len(server.data_requests) == 2


def test_max_pages_has_a_default() -> None:
    assert RestConfig(url="https://api.example.com/items").max_pages == 10_000


def test_paginating_past_max_pages_is_an_error_not_a_truncation(serve: Serve, make: Make) -> None:
    server = serve(pagination="page")
    source = make(server, records_path="data", pagination="page", page_size=10, max_pages=2)
    with pytest.raises(SourceError) as caught:
        run(source)
    assert not isinstance(caught.value, TransientSourceError)
    assert "kept paginating past max_pages=2: page 2 points to a next page" in str(caught.value)
    assert "raise max_pages" in str(caught.value)
    assert len(server.data_requests) == 2


@pytest.mark.parametrize(
    ("style", "pagination", "pages"),
    [("page", "page", 4), ("cursor", {"style": "cursor", "path": "meta.next_cursor"}, 3)],
)
def test_a_read_that_ends_within_max_pages_succeeds(
    serve: Serve, make: Make, style: str, pagination: Any, pages: int
) -> None:
    server = serve(pagination=style)
    source = make(server, records_path="data", pagination=pagination, page_size=10, max_pages=pages)
    table, extraction = run(source)
    assert table.num_rows == 25 and extraction.warnings == []
    assert len(server.data_requests) == pages


CURSOR = {"style": "cursor", "path": "meta.next_cursor"}


@pytest.mark.parametrize(("style", "pagination"), [("cursor", CURSOR), ("link", "link")])
def test_a_cursor_or_link_cycle_is_an_error_naming_the_pages(
    serve: Serve, make: Make, style: str, pagination: Any
) -> None:
    # 20 records, 10 a page: page 1 → a, a → b, b → a again (each page a different body)
    server = serve(sample_records(20), pagination=style, endless="cycle")
    source = make(server, records_path="data", pagination=pagination, page_size=10)
    with pytest.raises(SourceError, match="the page after page 3 is page 2 again") as caught:
        run(source)
    assert not isinstance(caught.value, TransientSourceError)
    assert len(server.data_requests) == 3
    assert "meta.next_cursor" not in str(caught.value) and "?" not in str(caught.value)


@pytest.mark.parametrize(
    ("style", "pagination"), [("cursor", CURSOR), ("link", "link"), ("page", "page")]
)
def test_a_fresh_cursor_every_page_runs_into_max_pages(
    serve: Serve, make: Make, style: str, pagination: Any
) -> None:
    server = serve(pagination=style, endless="fresh")
    source = make(server, records_path="data", pagination=pagination, page_size=10, max_pages=30)
    with pytest.raises(SourceError, match="past max_pages=30"):
        run(source)
    assert len(server.data_requests) == 30


# -- one client per source -----------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_source_keeps_one_connection_for_all_its_reads_until_closed(
    serve: Serve, make: Make
) -> None:
    server = serve(sample_records(25), pagination="page")
    source = make(server, records_path="data", pagination="page", page_size=10)
    for _ in range(2):  # e.g. a pipeline's second attempt
        table, _ = run(source)
        assert table.num_rows == 25
    assert len(server.data_requests) == 8
    assert (server.connections, server.disconnections) == (1, 0)
    source.close()
    assert wait_for(lambda: server.disconnections == 1), "close() left the connection open"
    source.close()  # closing twice is harmless
    table, _ = run(source)  # a closed source connects again when used again
    assert table.num_rows == 25 and server.connections == 2


def test_closing_the_source_ends_a_read_that_failed(serve: Serve, make: Make) -> None:
    server = serve(sample_records(25), pagination="page", faults={2: Fault.error(404)})
    with make(server, records_path="data", pagination="page", page_size=10) as source:
        with pytest.raises(SourceError, match="HTTP 404"):
            run(source)
        assert server.disconnections == 0
    assert wait_for(lambda: server.disconnections == server.connections == 1)


# -- incomplete reads ----------------------------------------------------------------------------


def test_an_empty_page_in_the_middle_of_a_page_read_warns(serve: Serve, make: Make) -> None:
    server = serve(sample_records(50), pagination="page", empty_pages={2})
    table, extraction = run(make(server, records_path="data", pagination="page", page_size=10))
    assert table.num_rows == 40  # page 2's records were never served
    assert len(extraction.warnings) == 1
    assert (
        "page 2 came back empty after a full page, but page 3 holds 10 records"
        in (extraction.warnings[0])
    )
    assert "on_incomplete: fail" in extraction.warnings[0]
    # 1, 2 (empty), 3 (the check), 4, 5, 6 (empty), 7 (the check: the real end)
    assert [r.query["page"] for r in server.data_requests] == [str(n) for n in range(1, 8)]


def test_an_empty_page_in_the_middle_fails_in_strict_mode(serve: Serve, make: Make) -> None:
    server = serve(sample_records(50), pagination="page", empty_pages={2})
    source = make(
        server, records_path="data", pagination="page", page_size=10, on_incomplete="fail"
    )
    with pytest.raises(TransientSourceError, match="read looks incomplete: page 2") as caught:
        run(source)
    assert caught.value.retried is False  # asking again may well read it whole: the pipeline may
    assert len(server.data_requests) == 3


def test_data_ending_on_a_page_boundary_is_no_gap(serve: Serve, make: Make) -> None:
    server = serve(sample_records(30), pagination="page")
    table, extraction = run(make(server, records_path="data", pagination="page", page_size=10))
    assert table.num_rows == 30 and extraction.warnings == []
    assert len(server.data_requests) == 5  # 3 full, 1 empty, 1 to make sure it is the end


@pytest.mark.parametrize(
    ("style", "pagination"), [("offset", "offset"), ("cursor", CURSOR), ("link", "link")]
)
def test_a_passing_empty_page_is_asked_again_and_nothing_is_lost(
    serve: Serve, make: Make, style: str, pagination: Any
) -> None:
    server = serve(sample_records(30), pagination=style, faults={2: EMPTY})
    table, extraction = run(make(server, records_path="data", pagination=pagination, page_size=10))
    assert table.column("id").to_pylist() == list(range(1, 31))
    assert server.data_requests[1].query == server.data_requests[2].query
    assert len(extraction.warnings) == 1
    assert (
        "page 2 came back empty after a full page; asked again, it held 10 records"
        in (extraction.warnings[0])
    )


def test_an_empty_page_pointing_to_a_next_page_is_followed_with_a_warning(
    serve: Serve, make: Make
) -> None:
    server = serve(sample_records(30), pagination="cursor", empty_pages={2})
    table, extraction = run(make(server, records_path="data", pagination=CURSOR, page_size=10))
    assert table.num_rows == 20
    assert len(extraction.warnings) == 1
    assert "page 2 came back empty but pointed to a next page" in extraction.warnings[0]


@pytest.mark.parametrize(("style", "pagination"), [("cursor", CURSOR), ("page", "page")])
def test_total_path_finds_records_the_read_missed(
    serve: Serve, make: Make, style: str, pagination: Any
) -> None:
    server = serve(sample_records(30), pagination=style, empty_pages={2}, total_path="meta.total")
    config = {"records_path": "data", "pagination": pagination, "page_size": 10}
    source = make(server, **config, total_path="meta.total", on_incomplete="fail")
    with pytest.raises(TransientSourceError, match="read looks incomplete"):
        run(source)
    table, extraction = run(make(server, **config, total_path="meta.total"))
    assert table.num_rows == 20
    assert any(
        "the API reported 30 records at total_path 'meta.total', but the read ended after 20" in w
        for w in extraction.warnings
    )


def test_total_path_matching_the_read_is_quiet_and_a_missing_one_warns(
    serve: Serve, make: Make
) -> None:
    server = serve(pagination="page", total_path="meta.total")
    config = {"records_path": "data", "pagination": "page", "page_size": 10}
    table, extraction = run(make(server, **config, total_path="meta.total"))
    assert table.num_rows == 25 and extraction.warnings == []
    _, extraction = run(make(server, **config, total_path="meta.count"))
    assert len(extraction.warnings) == 1
    assert "no page had a number at total_path 'meta.count'" in extraction.warnings[0]


def test_a_total_that_is_not_a_number_is_a_source_error(serve: Serve, make: Make) -> None:
    server = serve(pagination="none", envelope={"meta": {"total": "many"}})
    with pytest.raises(SourceError, match=r"total_path 'meta\.total' holds a JSON string"):
        run(make(server, records_path="data", total_path="meta.total"))
    assert len(server.requests) == 1


# -- incremental ---------------------------------------------------------------------------------


INCREMENTAL = {"param": "updated_since", "field": "updated_at", "lookback_seconds": 120}


def test_incremental_sends_watermark_minus_lookback_and_advances(serve: Serve, make: Make) -> None:
    server = serve(pagination="page")
    source = make(
        server, records_path="data", pagination="page", page_size=10, incremental=INCREMENTAL
    )
    # records are one minute apart from 2024-01-01T00:01:00Z (id 1) to 00:25:00Z (id 25)
    table, extraction = run(source, {"watermark": "2024-01-01T00:10:00Z"})
    assert {r.query["updated_since"] for r in server.data_requests} == {"2024-01-01T00:08:00Z"}
    assert table.column("id").to_pylist() == list(range(8, 26))
    assert extraction.position() == {"watermark": "2024-01-01T00:25:00Z"}
    assert extraction.watermark() == "2024-01-01T00:25:00Z"
    assert RestSource.describe(extraction.position()) == "2024-01-01T00:25:00Z"


def test_incremental_keeps_the_watermark_when_nothing_came(serve: Serve, make: Make) -> None:
    server = serve(pagination="page")
    source = make(server, records_path="data", pagination="page", incremental=INCREMENTAL)
    table, extraction = run(source, {"watermark": "2024-02-01T00:00:00Z"})
    assert table.num_rows == 0
    assert extraction.position() == {"watermark": "2024-02-01T00:00:00Z"}


def test_incremental_initial_value_and_unix_format(serve: Serve, make: Make) -> None:
    server = serve(pagination="none")
    inc = {**INCREMENTAL, "initial": "2024-01-01T00:20:00+00:00", "format": "unix"}
    table, extraction = run(make(server, records_path="data", incremental=inc))
    sent = int(server.data_requests[0].query["updated_since"])
    assert sent == int(datetime(2024, 1, 1, 0, 20, tzinfo=UTC).timestamp())
    assert table.column("id").to_pylist() == list(range(20, 26))
    assert extraction.watermark() == "2024-01-01T00:25:00Z"


def test_incremental_field_outside_the_contract_still_moves_the_watermark(
    serve: Serve, make: Make
) -> None:
    server = serve(pagination="none")
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])
    table, extraction = run(
        make(server, records_path="data", incremental=INCREMENTAL), schema=schema
    )
    assert table.schema == schema
    assert extraction.watermark() == "2024-01-01T00:25:00Z"
    assert extraction.warnings == ["field 'amount' is not in the contract; ignored"]


def test_incremental_field_typed_as_string_in_the_contract(serve: Serve, make: Make) -> None:
    records = sample_records(3)
    records[1]["updated_at"] = "2024-01-01T03:00:00+02:00"  # 01:00Z, the latest
    server = serve(records, pagination="none")
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("updated_at", pa.string())])
    _, extraction = run(make(server, records_path="data", incremental=INCREMENTAL), schema=schema)
    assert extraction.watermark() == "2024-01-01T01:00:00Z"


# -- auth and secrets ----------------------------------------------------------------------------


def test_auth_header_reaches_the_server_and_never_the_query_logs_or_errors(
    serve: Serve,
    make: Make,
    caplog: pytest.LogCaptureFixture,
    sleeps: list[float],
    notices: list[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    server = serve(pagination="page", token=TOKEN, faults={2: Fault.error(503)})
    auth = {"header": "Authorization", "value": f"Bearer {TOKEN}"}
    source = make(
        server,
        records_path="data",
        pagination="page",
        page_size=10,
        auth=auth,
        headers={"X-Api-Version": TOKEN + "-v"},
    )
    table, _ = run(source)
    assert table.num_rows == 25
    assert_backoff(sleeps)
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.data_requests)
    assert all(TOKEN not in r.raw_query for r in server.requests)
    assert TOKEN not in repr(source.config)
    assert len(notices) == 1 and "retrying" in notices[0]
    assert all(TOKEN not in text for text in [*notices, caplog.text])


def test_wrong_credentials_are_a_source_error_without_the_secret(
    serve: Serve,
    make: Make,
    caplog: pytest.LogCaptureFixture,
    sleeps: list[float],
    notices: list[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    server = serve(pagination="none", token="the-right-one")
    source = make(server, records_path="data", auth={"value": f"Bearer {TOKEN}"}, params={"q": "x"})
    with pytest.raises(SourceError) as caught:
        run(source)
    text = str(caught.value)
    assert "401" in text
    assert "${env:" in text
    assert server.url in text
    assert "q=x" not in text
    assert TOKEN not in text
    assert TOKEN not in caplog.text
    assert sleeps == [] and notices == []
    assert len(server.requests) == 1


def test_redirects_to_another_origin_lose_the_credentials(serve: Serve, make: Make) -> None:
    target = serve(pagination="none")
    hop = serve(pagination="none", fault_always=Fault(status=302, headers={"Location": target.url}))
    same = serve(pagination="none", faults={1: Fault(status=307, headers={"Location": "/items"})})
    auth = {"header": "X-Api-Key", "value": TOKEN}
    assert run(make(hop, records_path="data", auth=auth))[0].num_rows == 25
    assert "x-api-key" in hop.requests[0].headers
    assert "x-api-key" not in target.requests[0].headers
    assert run(make(same.base + "/old", records_path="data", auth=auth))[0].num_rows == 25
    assert [r.headers.get("x-api-key") for r in same.requests] == [TOKEN, TOKEN]


# -- retries -------------------------------------------------------------------------------------


def test_429_waits_exactly_retry_after(serve: Serve, make: Make, sleeps: list[float]) -> None:
    server = serve(pagination="page", faults={2: Fault.rate_limit("7")})
    table, _ = run(make(server, records_path="data", pagination="page", page_size=10))
    assert sleeps == [7.0]
    assert table.column("id").to_pylist() == list(range(1, 26))
    assert server.data_requests[1].query == server.data_requests[2].query


def test_429_retry_after_as_http_date(serve: Serve, make: Make, sleeps: list[float]) -> None:
    when = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    server = serve(pagination="none", faults={1: Fault.rate_limit(when)})
    run(make(server, records_path="data"))
    assert sleeps == [30.0]


def test_503_with_retry_after_waits_it(serve: Serve, make: Make, sleeps: list[float]) -> None:
    busy = Fault(status=503, headers={"Retry-After": "12"}, body=b"{}")
    server = serve(pagination="none", faults={1: busy})
    assert run(make(server, records_path="data"))[0].num_rows == 25
    assert sleeps == [12.0]


def test_retry_after_longer_than_max_wait_fails_at_once_as_transient(
    serve: Serve, make: Make, sleeps: list[float], notices: list[str]
) -> None:
    server = serve(pagination="page", faults={2: Fault.rate_limit("86400")})
    with pytest.raises(TransientSourceError) as caught:
        run(make(server, records_path="data", pagination="page", page_size=10))
    assert sleeps == [] and notices == []
    assert len(server.data_requests) == 2
    assert caught.value.retried is True  # the server said when to come back: not in this run
    assert caught.value.message == (
        "HTTP 429 Too Many Requests: the server asks to wait 86400s before the next request "
        "(Retry-After), longer than max_wait_seconds (300s); not waiting"
    )
    assert caught.value.where == f"{server.url} (page 2)"


def test_max_wait_seconds_caps_retry_after_and_backoff(
    serve: Serve, make: Make, sleeps: list[float]
) -> None:
    server = serve(pagination="none", faults={1: Fault.rate_limit("15")})
    assert run(make(server, records_path="data", max_wait_seconds=15))[0].num_rows == 25
    with pytest.raises(TransientSourceError, match=r"wait 16s .* max_wait_seconds \(15s\)"):
        run(make(serve(pagination="none", faults={1: Fault.rate_limit("16")}), max_wait_seconds=15))
    assert sleeps == [15.0]
    sleeps.clear()
    server = serve(pagination="none", fault_always=Fault.error(503))
    with pytest.raises(TransientSourceError):
        run(make(server, records_path="data", backoff_seconds=10, max_wait_seconds=15))
    assert_backoff(sleeps, base=10, cap=15)
    assert sleeps[1:] == [15.0, 15.0]


def test_5xx_then_success_backs_off_exponentially(
    serve: Serve, make: Make, sleeps: list[float]
) -> None:
    faults = {1: Fault.error(503), 2: Fault.error(502), 3: Fault.error(500)}
    server = serve(pagination="none", faults=faults)
    table, _ = run(make(server, records_path="data"))
    assert len(sleeps) == 3
    assert_backoff(sleeps)  # 2-4 s, 4-6 s, 8-10 s
    assert table.num_rows == 25


def test_backoff_is_jittered(serve: Serve, make: Make, sleeps: list[float]) -> None:
    server = serve(pagination="none", fault_always=Fault.error(503))
    with pytest.raises(TransientSourceError):
        run(make(server, records_path="data", max_attempts=20, backoff_seconds=1))
    assert len(sleeps) == 19
    assert_backoff(sleeps, base=1)
    exact = [min(2.0**n, 300.0) for n in range(19)]
    assert sum(w != e for w, e in zip(sleeps, exact, strict=True)) >= 5  # not the bare curve


def test_5xx_forever_is_transient_after_max_attempts_and_says_so_once(
    serve: Serve, make: Make, sleeps: list[float], notices: list[str]
) -> None:
    server = serve(pagination="none", fault_always=Fault.error(503), path="/x/items")
    with pytest.raises(TransientSourceError) as caught:
        run(make(server, records_path="data", params={"q": "private"}))
    assert len(sleeps) == 3
    assert_backoff(sleeps)
    assert len(server.requests) == 4
    assert caught.value.retried is True  # the pipeline does not ask again
    assert caught.value.message == (
        "page 1 failed after 4 attempts; last cause: HTTP 503 Service Unavailable"
    )
    assert len(notices) == 3
    assert notices[0].startswith(f"{server.url} (page 1): HTTP 503 Service Unavailable; ")
    assert [n.split("; ")[1].split(",")[0] for n in notices] == [
        "attempt 1 of 4",
        "attempt 2 of 4",
        "attempt 3 of 4",
    ]
    assert all("private" not in text for text in [*notices, str(caught.value)])


def test_retry_notices_go_to_notify_not_to_logging(
    serve: Serve, make: Make, notices: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = serve(pagination="none", faults={1: Fault.error(502)})
    run(make(server, records_path="data"))
    assert len(notices) == 1 and "HTTP 502 Bad Gateway; attempt 1 of 4, retrying in" in notices[0]
    assert [r for r in caplog.records if r.name.startswith("weir")] == []


def test_one_attempt_means_no_retry(serve: Serve, make: Make, sleeps: list[float]) -> None:
    server = serve(pagination="none", fault_always=Fault.error(500))
    with pytest.raises(TransientSourceError, match="failed after 1 attempt; last cause: HTTP 500"):
        run(make(server, records_path="data", max_attempts=1))
    assert sleeps == [] and len(server.requests) == 1


def test_custom_attempts_and_backoff(serve: Serve, make: Make, sleeps: list[float]) -> None:
    server = serve(pagination="none", fault_always=Fault.rate_limit(None))
    with pytest.raises(TransientSourceError, match="429"):
        run(make(server, records_path="data", max_attempts=3, backoff_seconds=0.5))
    assert len(sleeps) == 2
    assert_backoff(sleeps, base=0.5)


def test_timeouts_are_retried(serve: Serve, make: Make, sleeps: list[float]) -> None:
    server = serve(pagination="none", faults={1: Fault.slow(2.0)})
    table, _ = run(make(server, records_path="data", timeout_seconds=0.1))
    assert len(sleeps) == 1
    assert_backoff(sleeps)
    assert table.num_rows == 25


def test_dropped_connections_are_retried(serve: Serve, make: Make, sleeps: list[float]) -> None:
    server = serve(pagination="none", faults={1: Fault.disconnect()})
    table, _ = run(make(server, records_path="data"))
    assert len(sleeps) == 1
    assert_backoff(sleeps)
    assert table.num_rows == 25


def test_connection_refused_is_transient(make: Make, sleeps: list[float]) -> None:
    with RestServer() as server:
        url = server.url
    with pytest.raises(TransientSourceError, match="connection failed"):
        run(make(url, max_attempts=2))
    assert len(sleeps) == 1
    assert_backoff(sleeps)


def test_malformed_page_is_retried_then_succeeds(
    serve: Serve, make: Make, sleeps: list[float]
) -> None:
    server = serve(
        pagination="page", faults={2: Fault.malformed(), 3: Fault.malformed(b"<html>busy</html>")}
    )
    table, _ = run(make(server, records_path="data", pagination="page", page_size=10))
    assert len(sleeps) == 2
    assert_backoff(sleeps)
    assert table.column("id").to_pylist() == list(range(1, 26))


@pytest.mark.parametrize(
    "body", [b'{"data": [{"id": 1,', b'{"other": []}', b'{"data": {"id": 1}}', b"[]", b""]
)
def test_persistently_malformed_page_is_a_source_error(
    serve: Serve, make: Make, sleeps: list[float], body: bytes
) -> None:
    server = serve(pagination="none", fault_always=Fault.malformed(body))
    with pytest.raises(SourceError) as caught:
        run(make(server, records_path="data", params={"q": "x"}))
    assert not isinstance(caught.value, TransientSourceError)
    assert "page 1 is malformed" in str(caught.value)
    assert server.url in str(caught.value)
    assert "q=x" not in str(caught.value)
    assert len(sleeps) == 3
    assert_backoff(sleeps)


def test_404_is_not_retried(serve: Serve, make: Make, sleeps: list[float]) -> None:
    server = serve(pagination="none")
    with pytest.raises(SourceError, match="HTTP 404") as caught:
        run(make(server.base + "/nope", records_path="data"))
    assert not isinstance(caught.value, TransientSourceError)
    assert sleeps == []
    assert len(server.requests) == 1


# -- records → Arrow -----------------------------------------------------------------------------


def test_extra_fields_warn_once_per_name(serve: Serve, make: Make) -> None:
    records = [{**r, "color": "red", "tags": [1, 2]} for r in sample_records(25)]
    server = serve(records, pagination="page")
    table, extraction = run(make(server, records_path="data", pagination="page", page_size=10))
    assert table.schema == SCHEMA
    assert extraction.warnings == [
        "field 'color' is not in the contract; ignored",
        "field 'tags' is not in the contract; ignored",
    ]
    assert extraction.parser.extra_fields == {"color": 25, "tags": 25}


def test_extra_field_of_mixed_types_still_warns(serve: Serve, make: Make) -> None:
    records = sample_records(4)
    records[0]["odd"], records[3]["odd"] = 1, "one"
    server = serve(records, pagination="none")
    table, extraction = run(make(server, records_path="data"))
    assert table.column("id").to_pylist() == [1, 2, 3, 4]
    assert extraction.warnings == ["field 'odd' is not in the contract; ignored"]


def test_a_value_that_is_not_an_int_names_the_field_and_record(serve: Serve, make: Make) -> None:
    """Values are converted by the engine's strict rules: the error names the field, the
    page and record, and the value — masked when the field is PII."""
    records = sample_records(3)
    records[2]["id"] = "abc-private"
    server = serve(records, pagination="none")
    with pytest.raises(
        SchemaDriftError, match=r"column id, value 'abc-private' \(page 1, record 3\)"
    ):
        run(make(server, records_path="data"))
    context = SourceContext(pipeline="p", project_dir=".", run_id="r", pii=("id",))
    with pytest.raises(SchemaDriftError, match=r"column id, value '\*\*\*'") as caught:
        run(make(server, records_path="data", context=context))
    assert "abc-private" not in str(caught.value)


def test_numbers_sent_as_strings_are_cast(serve: Serve, make: Make) -> None:
    records = [{**r, "id": str(r["id"]), "amount": f"{r['amount']}"} for r in sample_records(3)]
    server = serve(records, pagination="none")
    table, _ = run(make(server, records_path="data"))
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert table.column("amount").to_pylist() == [1.5, 3.0, 4.5]


def test_float_where_int_is_required_names_the_field(serve: Serve, make: Make) -> None:
    records = sample_records(2)
    records[1]["id"] = 2.5
    server = serve(records, pagination="none")
    with pytest.raises(SchemaDriftError, match=r"column id, value '2.5' \(page 1, record 2\)"):
        run(make(server, records_path="data"))


def test_number_where_string_is_expected_becomes_its_text(serve: Serve, make: Make) -> None:
    """As in NDJSON files: a JSON number for a string field is kept as the text it was."""
    records = sample_records(2)
    records[1]["name"] = 12345
    server = serve(records, pagination="none")
    table, _ = run(make(server, records_path="data"))
    assert table.column("name").to_pylist() == ["item 1", "12345"]


def test_in_quarantine_mode_a_bad_value_is_a_reason_of_its_record(serve: Serve, make: Make) -> None:
    """A page pyarrow cannot read as one type per field goes the careful way: every other
    value is kept, the bad ones are NULL with their reasons (objects in scalar fields too)."""
    records = sample_records(3)
    records[1]["id"] = "0x10"
    records[2]["name"] = {"first": "x"}
    server = serve(records, pagination="none")
    context = SourceContext(pipeline="p", project_dir=".", run_id="r", on_parse_error="quarantine")
    source = make(server, records_path="data", context=context)
    extraction = source.extract(None, SCHEMA)
    table = pa.Table.from_batches(list(extraction.batches()))
    assert table.column("id").to_pylist() == [1, None, 3]
    assert table.column("name").to_pylist() == ["item 1", "item 2", None]
    assert table.column("_parse_errors").to_pylist() == [
        None,
        ["parse: column id, value '0x10' (page 1, record 2)"],
        ['parse: column name, value \'{"first": "x"}\' (page 1, record 3)'],
    ]


def test_missing_fields_are_null_even_required_ones(serve: Serve, make: Make) -> None:
    """A NULL never fails a read: a record without its key reaches the engine, which
    quarantines it with its ``.required`` rule — as for the same row in a file."""
    records = sample_records(3)
    del records[1]["name"]
    del records[2]["id"]
    server = serve(records, pagination="none")
    table, _ = run(make(server, records_path="data"))
    assert table.column("name").to_pylist() == ["item 1", None, "item 3"]
    assert table.column("id").to_pylist() == [1, 2, None]


def test_dates_and_decimals_are_read_as_strings_and_cast(serve: Serve, make: Make) -> None:
    records = [{"id": 1, "day": "2024-03-01", "price": "12.34"}, {"id": 2, "day": None, "price": 5}]
    server = serve(records, pagination="none")
    schema = pa.schema([("id", pa.int64()), ("day", pa.date32()), ("price", pa.decimal128(10, 2))])
    table, _ = run(make(server, records_path="data"), schema=schema)
    assert table.schema == schema
    assert table.to_pylist()[0]["day"].isoformat() == "2024-03-01"
    assert [str(p) for p in table.column("price").to_pylist()] == ["12.34", "5.00"]
    records[1]["day"] = "not a date"
    with pytest.raises(
        SchemaDriftError, match=r"column day, value .not a date. \(page 1, record 2\)"
    ):
        run(make(serve(records, pagination="none"), records_path="data"), schema=schema)


# -- config and registry -------------------------------------------------------------------------


def test_registry_and_probe(make: Make) -> None:
    assert sources.get("rest") is RestSource
    source = make("https://api.example.com/items")
    assert source.probe(None) is None
    assert RestSource.describe(None) is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"params": {"api_key": "x"}}, "looks like a credential"),
        ({"url": "https://api.example.com/items?access_token=x"}, "looks like a credential"),
        ({"url": "https://user:pw@api.example.com/items"}, "must not carry credentials"),
        ({"url": "ftp://api.example.com/items"}, "http"),
        ({"pagination": {"style": "cursor", "path": "next"}}, "needs records_path"),
        ({"pagination": "scroll"}, "pagination"),
        ({"page_size": 10, "pagination": "page", "params": {"per_page": 5}}, "set twice"),
        ({"incremental": {"param": "since", "field": "t", "format": "epoch"}}, "format"),
        ({"timeout": 3}, "extra"),
        ({"total_path": "meta.total"}, "total_path needs records_path"),
        ({"records_path": "data", "total_path": "data.n"}, "must not contain one another"),
        (
            {"records_path": "data", "total_path": "meta", "pagination": CURSOR},
            "total_path and pagination.path must not contain one another",
        ),
        ({"on_incomplete": "ignore"}, "on_incomplete"),
        ({"max_pages": None}, "max_pages"),
        ({"max_wait_seconds": -1}, "max_wait_seconds"),
    ],
)
def test_config_is_validated(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RestConfig.model_validate({"url": "https://api.example.com/items", **config})


def test_incremental_field_of_a_wrong_type_is_a_config_error(make: Make) -> None:
    source = make("https://api.example.com/items", incremental={"param": "since", "field": "id"})
    with pytest.raises(ConfigError, match=r"incremental\.field 'id'"):
        source.extract(None, SCHEMA)
