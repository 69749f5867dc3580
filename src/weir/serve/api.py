"""The HTTP API of ``weir serve``: JSON over the state store and the scheduler, described by
OpenAPI at ``/api/openapi.json``, plus Prometheus' ``/metrics``.

==========================  =====================================================
``GET /api/runs``           recent run records (``node``, ``status``, ``limit``)
``GET /api/runs/{run_id}``  one run record, every node of that run id
``GET /api/nodes``          every node: kind, schedule, next fire, running, last run
``GET /api/health``         the health metrics (docs/health.md)
``GET /api/alerts``         open and recent incidents (docs/alerts.md)
``GET /metrics``            Prometheus text exposition
==========================  =====================================================

With a token (``WEIR_SERVE_TOKEN``, required off loopback) every request must send
``Authorization: Bearer <token>``; without one, 401. Every handler has
``serve.request_timeout_seconds`` to answer (503 after). Errors are JSON
``{"error": message}`` with a 4xx or 5xx status, never a traceback. Run records are scrubbed
of secrets before they are stored, so nothing here can show one.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from weir import __version__
from weir.serve.scheduler import Scheduler, describe

if TYPE_CHECKING:
    from weir.spec import Project

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
STATUS = "^(success|failed|partial|skipped|running)$"


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def app(project: Project, scheduler: Scheduler | None, token: str | None) -> FastAPI:
    """The API over ``project``'s state store and ``scheduler`` (None: no schedule, as in a
    test of the API alone); ``token``: the bearer token every request must send."""
    from weir.state.sqlite import StateStore

    store = StateStore(project.root / project.spec.state)
    timeout = project.spec.serve.request_timeout_seconds
    api = FastAPI(
        title="weir",
        version=__version__,
        description=f"The run history, schedule, health and alerts of project "
        f"{project.spec.name!r}.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # the interactive pages load scripts from a CDN
        redoc_url=None,
    )

    @api.middleware("http")
    async def guard(request: Request, call_next: Handler) -> Response:
        if token is not None and not _authorized(request, token):
            return error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
        try:
            return await asyncio.wait_for(call_next(request), timeout)
        except TimeoutError:
            return error(503, f"the request took longer than {timeout:g}s; try again")

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @api.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
            for e in exc.errors()
        )
        return error(400, f"bad request: {problems}")

    @api.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return error(500, f"internal error ({type(exc).__name__}); see the serve log")

    @api.get("/api/runs", summary="Recent run records, newest first")
    def runs(
        node: Annotated[
            str | None, Query(description="only this pipeline, model or dbt step")
        ] = None,
        status: Annotated[str | None, Query(pattern=STATUS, description="only this status")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        if node is not None:
            _known(project, node)
        rows = store.runs(node, limit=limit, status=status)
        return {"runs": rows}

    @api.get("/api/runs/{run_id}", summary="The records of one run id (one per node)")
    def one_run(run_id: str) -> Response:
        rows = store.run(run_id)
        if not rows:
            return error(404, f"no run {run_id[:64]!r} in the state store")
        return JSONResponse({"run_id": run_id, "records": rows})

    @api.get("/api/nodes", summary="Every node with its schedule and last run")
    def nodes() -> dict[str, Any]:
        from weir.observe.health import health

        schedule = {row["node"]: row for row in describe(scheduler)} if scheduler else {}
        out = []
        for node in health(project):
            row = node.as_dict()
            fire = schedule.get(node.name, {})
            row |= {
                "schedule": fire.get("cron"),
                "next_fire": fire.get("next_fire"),
                "running": fire.get("running", False),
            }
            out.append(row)
        return {"timezone": project.spec.timezone, "nodes": out}

    @api.get("/api/health", summary="The health metrics, per node and for the project")
    def health_view(
        node: Annotated[
            list[str] | None, Query(description="only these nodes (repeatable)")
        ] = None,
    ) -> dict[str, Any]:
        from weir.observe.vitals import project_health

        for name in node or []:
            _known(project, name)
        return project_health(project, nodes=node).as_dict()

    @api.get("/api/alerts", summary="Open and recent incidents")
    def alerts(
        open_only: Annotated[bool, Query(alias="open", description="only open incidents")] = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        from weir.observe.alerts import incidents

        return {"incidents": incidents(project, open_only=open_only, limit=limit)}

    @api.get("/metrics", summary="Prometheus text exposition", response_class=Response)
    def metrics() -> Response:
        from weir.observe.prometheus import CONTENT_TYPE, exposition

        return Response(exposition(project, now=datetime.now(UTC)), media_type=CONTENT_TYPE)

    return api


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def _known(project: Project, node: str) -> None:
    from fastapi import HTTPException

    from weir.hints import did_you_mean

    names = sorted({*project.pipelines, *project.models, *project.dbt_steps})
    if node not in names:
        close = did_you_mean(node, names)
        more = f"; {close}" if close and close.startswith("did") else ""
        raise HTTPException(404, f"no node {node[:64]!r} in project {project.spec.name!r}{more}")
