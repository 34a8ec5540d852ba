"""The gateway app, built by a factory from settings; routes stay thin."""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from turnout.core import (
    Catalog,
    ConfigError,
    PayloadTooLargeError,
    Settings,
    TurnoutError,
    load_catalog,
)

from ._admin import admin_routes
from ._errors import error_response, handle_any, handle_http
from ._feedback import feedback_routes
from ._router import Router
from ._search_api import search_routes
from ._serving import ChatService, failure_headers
from ._upstreams import Upstreams
from .governance import Governor
from .retrieval import PageQualityMetrics, RagPath, Retrieval
from .telemetry import Judging, Telemetry
from .telemetry._dashboard import dashboard_routes

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


# Request ids: a random per-process prefix and a counter. uuid4 reads the kernel's random
# source on every call, which showed as 7% of the gateway's CPU under load.
_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count()


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if _SAFE_ID.match(given) else f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


def build_app(
    settings: Settings,
    catalog: Catalog | None = None,
    *,
    span_exporter: Any = None,
    simulated: bool = False,
) -> FastAPI:
    """A gateway for `settings`. Raises ConfigError (naming the key) on a bad configuration.
    `span_exporter` replaces the OTLP exporter (tests pass an in-memory one); `simulated`
    says on the dashboard that the providers are stand-ins (the demo)."""
    if not settings.routes:
        raise ConfigError("settings: no routes configured; see examples/gateway.yaml")
    catalog = catalog or load_catalog(settings.catalog_files)
    upstreams = Upstreams.build(settings.providers, settings.routes, catalog)
    router = Router(settings.routes)
    governor = Governor.open(settings)

    def breakers() -> dict[str, str]:
        return {u.deployment.label: u.breaker.state for u in upstreams.all()}

    # Encoders and collections open on first use: a gateway without retrieval pays nothing.
    retrieval = Retrieval(settings)
    telemetry = Telemetry(
        settings,
        governor.db,
        breakers,
        freshness=retrieval.freshness_ages,
        budgets=governor.budgets_left,
        span_exporter=span_exporter,
    )
    judging = Judging(settings, upstreams, governor, telemetry.metrics, catalog)
    if telemetry.metrics is not None:
        telemetry.metrics.registry.register(PageQualityMetrics(settings))
    service = ChatService(
        settings, router, upstreams, governor, telemetry, judging, RagPath(retrieval)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await governor.start()
        await telemetry.start()
        try:
            yield
        finally:
            await judging.stop()  # first: judgments in flight use the providers and ledger
            await upstreams.aclose()
            await retrieval.close()
            await telemetry.stop()
            await governor.stop()

    app = FastAPI(title="turnout gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    app.state.governor = governor
    app.state.telemetry = telemetry
    app.state.retrieval = retrieval
    app.include_router(admin_routes(settings, governor))
    app.include_router(feedback_routes(governor, telemetry))
    app.include_router(search_routes(settings, governor, retrieval, telemetry.metrics))
    app.include_router(
        dashboard_routes(
            settings, governor.db, freshness=retrieval.freshness_rows, simulated=simulated
        )
    )
    app.add_exception_handler(HTTPException, handle_http)
    # turnout's own errors by class: Starlette answers those in its exception middleware
    # and keeps the connection. The `Exception` handler runs in its server-error
    # middleware, which re-raises after answering, and uvicorn then drops the connection.
    app.add_exception_handler(TurnoutError, handle_any)
    app.add_exception_handler(Exception, handle_any)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        request_id = _request_id(request)
        request.state.request_id = request_id
        try:
            declared = int(request.headers.get("content-length") or 0)
            if declared > settings.gateway.max_body_bytes:
                raise PayloadTooLargeError(
                    f"request body is {declared:,} bytes; this gateway accepts at most "
                    f"{settings.gateway.max_body_bytes:,}"
                )
            reply = await service.complete(await request.body(), request_id, request.headers)
        except Exception as exc:  # every failure leaves as an OpenAI-shaped error
            return error_response(exc, request_id, failure_headers(exc, request_id))
        if reply.stream is not None:
            return StreamingResponse(
                reply.stream, media_type="text/event-stream", headers=reply.headers
            )
        return Response(reply.body, media_type="application/json", headers=reply.headers)

    @app.get("/v1/models")
    async def models() -> Response:
        routes, concrete = router.offered()
        data = [
            {"id": r, "object": "model", "created": 0, "owned_by": "turnout-route"} for r in routes
        ]
        data += [
            {"id": m, "object": "model", "created": 0, "owned_by": "turnout"} for m in concrete
        ]
        return Response(
            orjson.dumps({"object": "list", "data": data}), media_type="application/json"
        )

    if telemetry.metrics is not None:
        registry = telemetry.metrics.registry

        @app.get("/metrics")
        async def metrics() -> Response:
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            # Collecting reads the ledger (budgets left): off the event loop.
            body = await asyncio.to_thread(generate_latest, registry)
            return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/readyz")
    async def readyz() -> Response:
        states = breakers()
        ready = any(state != "open" for state in states.values())
        body = orjson.dumps({"status": "ready" if ready else "unavailable", "deployments": states})
        return Response(body, status_code=200 if ready else 503, media_type="application/json")

    return app
