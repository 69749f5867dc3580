"""The ``serve:`` block of weir.yml: how ``weir serve`` schedules (docs/serve.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from weir.spec.base import Strict

MAX_CATCHUP = 24
"""The most missed fires of one node that ``catchup: all`` runs after serve was down."""


class Serve(Strict):
    catchup: Literal["latest", "none", "all"] = "latest"
    """Fire times missed while serve was down: ``latest`` runs the node once on start,
    ``none`` skips them, ``all`` runs once per missed fire (at most the last
    :data:`MAX_CATCHUP`)."""
    threads: int | None = Field(default=None, ge=1, le=64)
    """How many fires run at once (default: weir.yml's ``threads``)."""
    host: str = "127.0.0.1"
    """The HTTP API's address; any other than a loopback one needs ``WEIR_SERVE_TOKEN``."""
    port: int = Field(default=8750, ge=0, le=65535)
    grace_seconds: float = Field(default=60.0, ge=0, le=86_400)
    """On SIGTERM or SIGINT: how long running nodes may go on before serve exits anyway
    (what is committed stays; a node cut short resumes on its next run)."""
    tick_seconds: float = Field(default=5.0, gt=0, le=60)
    """The longest the loop sleeps between two looks at the clock (SLA and freshness
    watches run at each)."""
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """How long an API request may take before it is answered 503."""
