"""The FastAPI application factory. Nothing is built at import; the lifespan builds it all."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from jobs.endpoints import router as jobs_router
from mosaic_memory import __version__
from mosaic_memory.api.challenge import ResourceChallenge
from mosaic_memory.api.deps import StateDep
from mosaic_memory.api.docs import HEALTH_RESPONSES, READY_RESPONSES, keep_example_nulls
from mosaic_memory.api.errors import error_response, install_error_handlers
from mosaic_memory.api.observe import ObserveRequests
from mosaic_memory.config import Settings
from mosaic_memory.container import AppState, bootstrap_admin, build_state
from mosaic_memory.context.endpoints import router as context_router
from mosaic_memory.db import head_revision
from mosaic_memory.errors import MosaicError
from mosaic_memory.federation.endpoints import router as federation_router
from mosaic_memory.federation.listener import federation_listener
from mosaic_memory.insights.endpoints import router as insights_router
from mosaic_memory.logs.endpoints import router as logs_router
from mosaic_memory.mcp_server import McpHttp
from mosaic_memory.oauth.endpoints import grants_router as oauth_grants_router
from mosaic_memory.oauth.endpoints import router as oauth_router
from mosaic_memory.observability.metrics import CONTENT_TYPE
from mosaic_memory.owners.endpoints import me_router
from mosaic_memory.owners.endpoints import router as admin_router
from mosaic_memory.portability.endpoints import NDJSON_TYPES
from mosaic_memory.portability.endpoints import router as portability_router
from mosaic_memory.preferences.endpoints import router as preferences_router
from mosaic_memory.search.endpoints import router as search_router
from mosaic_memory.skills.endpoints import router as skills_router
from mosaic_memory.web.endpoints import install as install_web_ui

if TYPE_CHECKING:
    from jobs import JobRunner
    from mosaic_memory.tiers import Database

log = logging.getLogger("mosaic_memory")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class RequireJSON:
    """Answer 415 to a /v1 write whose body is not declared as JSON, before any handler runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH") and scope["path"].startswith("/v1/"):
            headers = dict(scope.get("headers") or [])
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            length = headers.get(b"content-length")
            has_body = length is None or length != b"0"
            ndjson = scope["path"] == "/v1/import" and ctype in NDJSON_TYPES  # an export file, streamed
            if has_body and ctype and ctype != b"application/json" and not ndjson:
                response = error_response(
                    415, "UnsupportedMediaType", f"send the body as application/json, not {ctype.decode()!r}"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class LimitBody:
    """Answer 413 to a request body over ``limits.max_request_bytes``: at once when its
    Content-Length says so, else as soon as that many bytes have arrived (a chunked body). The
    import stream (``/v1/import``) is exempt: it is read line by line, each line checked."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/v1/import":
            await self.app(scope, receive, send)
            return
        limit = self.settings.limits.max_request_bytes
        detail = f"the request body is over {limit} bytes (limits.max_request_bytes); nothing was stored"
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await error_response(413, "ContentTooLarge", detail, limit=limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # FastAPI passes an HTTPException through; the handler answers
                    raise StarletteHTTPException(413, detail)
            return message

        async def watched_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except StarletteHTTPException as exc:  # raised where no handler runs (the /mcp endpoint)
            if exc.status_code != 413 or started:
                raise
            await error_response(413, "ContentTooLarge", detail, limit=limit)(scope, receive, send)


def announce_admin_key(key: str) -> None:
    """Print a freshly generated admin key once, to stderr (never to the log)."""
    print(
        "\n  Mosaic Memory created an admin API key. It is shown only this once:\n\n"
        f"      {key}\n\n  Keep it: export MOSAIC_API_KEY={key}\n",
        file=sys.stderr,
        flush=True,
    )


def attach_jobs(state: AppState) -> JobRunner:
    """Give the state its job runner (once); the scheduler and the jobs routes use it."""
    from jobs import JobRunner, build_runner

    if not isinstance(state.jobs, JobRunner):
        state.jobs = build_runner(state)
    return state.jobs


def freeze_startup_heap() -> None:
    """Keep what startup built (modules, the model's tokenizer, the app, ~150,000 objects) out of
    every later garbage collection.

    A full collection walks every tracked object: once every few hundred requests one paused the
    process for 75-105 ms, the slowest search by far (a search is 7-30 ms in process at 100k rows,
    2026-12-07). What startup built lives as long as the process, so collecting it again finds
    nothing; garbage made before the freeze is collected first."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings, *, state: AppState | None = None, database: Database | None = None) -> FastAPI:
    """Build the app. With ``state`` given (tests, embedding in another process) it is used as is
    and not closed at shutdown; otherwise the lifespan opens the database (or takes ``database``,
    already opened, as its own) and loads the model."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state is not None:
            app.state.mosaic = state
            async with mcp_http.running():
                yield
            return
        try:
            built = await build_state(settings, database=database)
        except MosaicError as exc:
            app.state.startup_error = exc.detail  # `serve` says it in one line, without a traceback
            raise
        except Exception as exc:
            from embeddings.base import EmbeddingError

            if isinstance(exc, EmbeddingError):
                app.state.startup_error = str(exc)
            raise
        scheduler = None
        try:
            key = await bootstrap_admin(built)
            if key:
                announce_admin_key(key)
            runner = attach_jobs(built)
            if settings.jobs.enabled:
                from jobs.scheduler import JobScheduler

                scheduler = JobScheduler(runner.registry, runner, timezone=settings.jobs.timezone)
                scheduler.start()
            app.state.scheduler = scheduler
            app.state.mosaic = built
            built.start_background()
            freeze_startup_heap()
            log.info(
                "Mosaic Memory %s ready on http://%s:%s (tier %s, embedder %s)",
                __version__,
                settings.host,
                settings.port,
                built.database.tier,
                built.embedder.model_id,
            )
            async with federation_listener(built), mcp_http.running():  # mTLS port: only when configured
                yield
        finally:
            if scheduler is not None:
                scheduler.shutdown()
            await built.aclose()

    app = FastAPI(
        title="Mosaic Memory",
        version=__version__,
        description="Memory and semantic search for AI agents. Every /v1 route but health needs "
        '\'Authorization: Bearer <key>\'. Errors are JSON: {"error": ..., "detail": ...}.',
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
    )
    app.openapi = keep_example_nulls(app.openapi)  # type: ignore[method-assign]
    install_error_handlers(app)
    app.add_middleware(RequireJSON)
    app.add_middleware(LimitBody, settings=settings)
    app.add_middleware(ResourceChallenge, settings=settings)
    app.add_middleware(ObserveRequests, state=lambda: getattr(app.state, "mosaic", None))  # outermost
    if state is not None:
        attach_jobs(state)  # ASGI test transports do not run the lifespan
    for router in (admin_router, me_router, insights_router, search_router, logs_router, jobs_router):
        app.include_router(router)
    app.include_router(preferences_router)
    app.include_router(skills_router)
    app.include_router(portability_router)
    app.include_router(federation_router)
    app.include_router(context_router)
    app.include_router(oauth_router)
    app.include_router(oauth_grants_router)
    install_web_ui(app)  # /ui: the pages for people, on the same services and keys
    # MCP over streamable HTTP: tools on the same services, served by the lifespan's session manager.
    mcp_http = McpHttp(lambda: app.state.mosaic, log_level=settings.log_level)
    app.router.routes.append(Route("/mcp", endpoint=mcp_http))

    @app.get("/healthz", tags=["health"], responses=HEALTH_RESPONSES)
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def metrics(state: StateDep) -> Response:
        """Prometheus metrics of this process (text format); see docs/operations.md for the list."""
        try:  # a slow database must not stall the scrape: the gauge then keeps its last value
            await asyncio.wait_for(state.refresh_gauges(), timeout=2.0)
        except Exception as exc:
            log.debug("metrics: the database gauges were not refreshed (%s)", type(exc).__name__)
        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/readyz", tags=["health"], response_model=None, responses=READY_RESPONSES)
    async def readyz(state: StateDep) -> JSONResponse | dict[str, Any]:
        """Database reachable, migrations at head, embedder loaded."""
        checks: dict[str, Any] = {}
        try:
            async with state.engine.connect() as conn:
                revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            checks["database"] = "ok"
            checks["migrations"] = "ok" if revision == head_revision() else f"at {revision}, head {head_revision()}"
        except Exception as exc:  # any failure here means "not ready", never a 500
            checks["database"] = f"unreachable ({type(exc).__name__})"
        checks["embedder"] = state.embedder.model_id
        ok = checks.get("database") == "ok" and checks.get("migrations") == "ok"
        if not ok:
            return error_response(503, "NotReady", "; ".join(f"{k}: {v}" for k, v in checks.items()), checks=checks)
        return {"status": "ready", "tier": state.database.tier, "checks": checks}

    return app
