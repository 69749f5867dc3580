"""The ``weir serve`` process: the scheduler in the main thread, the HTTP API (when there
is one) in a thread beside it, and a clean stop on SIGTERM or SIGINT.

A first signal stops new fires and lets running nodes go on for ``serve.grace_seconds``;
serve then exits, with what ran committed. A second signal, or the end of the grace time,
exits at once: a node cut short is left as a killed run leaves it, which the crash-safety
guarantees cover (docs/guarantees.md), and its next run completes it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from weir.errors import ConfigError, UsageError
from weir.serve.clock import Clock, FakeClock, SystemClock
from weir.serve.scheduler import Scheduler, Ticker

if TYPE_CHECKING:
    from weir.observe.events import Observer
    from weir.observe.record import RunRecord
    from weir.spec import Project

log = logging.getLogger(__name__)

TOKEN_ENV = "WEIR_SERVE_TOKEN"
"""The environment variable holding the API's bearer token."""

AppFactory = Callable[["Project", Scheduler, "str | None"], Any]
"""Builds the ASGI app served beside the scheduler: (project, scheduler, token)."""


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_for(host: str) -> str | None:
    """The API token (``WEIR_SERVE_TOKEN``); refused start-up without one off loopback."""
    token = os.environ.get(TOKEN_ENV) or None
    if token is None and not loopback(host):
        raise ConfigError(
            f"weir serve binds to {host}, which is not a loopback address, and "
            f"{TOKEN_ENV} is not set",
            hint=f"set {TOKEN_ENV} to a long random value (every request must then send "
            f"`Authorization: Bearer <token>`), or bind to 127.0.0.1",
        )
    if token is not None and len(token) < 16:
        raise ConfigError(
            f"{TOKEN_ENV} is shorter than 16 characters",
            hint="use a long random value, e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`",
        )
    return token


def alerting(project: Project, clock: Clock) -> tuple[list[Observer], list[Ticker]]:
    """The alerts of a scheduled project (when a node has a channel): one
    :class:`~weir.observe.alerts.Alerting` that hears the fires' events (the running nodes'
    start times) and ticks with the loop (runtime SLAs while they run, freshness SLAs,
    retries of queued deliveries)."""
    from weir.observe import alerts

    if not alerts.configured(project):
        return [], []
    watch = alerts.Alerting(project, clock=clock.now)
    return [watch], [watch.tick]


def run_once(
    project: Project, *, now: datetime | None = None, observers: Sequence[Observer] = ()
) -> list[RunRecord]:
    """What ``weir serve --once`` does: run every fire due now (``now``: a moved clock,
    for tests and replays), wait for them, return their records."""
    clock: Clock = SystemClock() if now is None else FakeClock(now)
    watchers, tickers = alerting(project, clock)
    scheduler = Scheduler(project, clock, observers=[*observers, *watchers], tickers=tickers)
    try:
        return scheduler.run_due(clock.now())
    finally:
        scheduler.drain(None)


def serve(
    project: Project,
    *,
    host: str | None = None,
    port: int | None = None,
    observers: Sequence[Observer] = (),
    tickers: Sequence[Ticker] = (),
    app_factory: AppFactory | None = None,
    ready: Callable[[str], None] = lambda line: None,
) -> int:
    """Schedule until SIGTERM or SIGINT; 0 when every fire in flight finished in the grace
    time. ``ready`` hears one line once the scheduler (and the API) runs."""
    settings = project.spec.serve
    host = host or settings.host
    port = settings.port if port is None else port
    token = token_for(host)
    clock = SystemClock()
    watchers, watches = alerting(project, clock)
    scheduler = Scheduler(
        project, clock, observers=[*observers, *watchers], tickers=[*tickers, *watches]
    )
    stop = threading.Event()
    server = _api(app_factory(project, scheduler, token), host, port) if app_factory else None

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            log.warning("second signal: exiting now")
            os._exit(128 + signum)
        log.warning(
            "%s: no new fires; running nodes may finish for %gs",
            signal.Signals(signum).name,
            settings.grace_seconds,
        )
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        where = f" — API on http://{host}:{bound_port(server)}/api" if server else ""
        ready(f"weir serve: {len(scheduler.nodes)} scheduled node(s){where}")
        scheduler.serve_forever(stop)
        if not scheduler.drain(settings.grace_seconds):
            log.error("nodes still running after %gs: exiting anyway", settings.grace_seconds)
            os._exit(1)
        return 0
    finally:
        if server is not None:
            server.should_exit = True
        for s, handler in previous.items():
            signal.signal(s, handler)


def _api(app: Any, host: str, port: int, timeout: float = 30) -> Any:
    """Start uvicorn serving ``app`` in a thread and wait until it listens; returns the
    server (``should_exit`` stops it; :func:`bound_port` says where it listens)."""
    import time

    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", timeout_keep_alive=5
    )
    server = uvicorn.Server(config)  # in a thread it leaves signals to the main thread

    def listen() -> None:
        with contextlib.suppress(SystemExit):  # uvicorn's way to say it cannot bind: see below
            server.run()

    thread = threading.Thread(target=listen, name="weir-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise UsageError(
                f"the API cannot listen on {host}:{port}",
                hint="another process may hold the port: pick another with --port "
                "(or serve.port in weir.yml); --port 0 takes a free one",
            )
        time.sleep(0.02)
    return server


def bound_port(server: Any) -> int:
    """The port a started uvicorn server listens on (``--port 0`` picks one)."""
    return int(server.servers[0].sockets[0].getsockname()[1])
