"""The federation listener: a second small ASGI app, served over mutual TLS on its own port.

TLS 1.3 only and a client certificate from a trusted CA required (``identity.server_context``):
an untrusted, expired or not-yet-valid certificate fails the handshake. The names in the
verified certificate are attached to every request by the connection (``PeerCertProtocol``),
and ``PeerGate`` checks them against the peer table on every request, before the body is read.
Started and stopped by the main app's lifespan, inside the same ``serve`` process.

A peer is no principal of this instance: its reads cross owners as its grants allow, so the
listener's sessions keep the connecting role, outside row-level security (docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

from mosaic_memory.api.errors import error_response, install_error_handlers
from mosaic_memory.errors import MosaicError
from mosaic_memory.federation.identity import peer_names, server_context
from mosaic_memory.federation.schemas import (
    PeerExportRequest,
    PeerGrant,
    PeerGrantsRequest,
    PeerSearchRequest,
    PeerSearchResponse,
)

if TYPE_CHECKING:
    from mosaic_memory.container import AppState

log = logging.getLogger("mosaic_memory.federation")

__all__ = ["create_federation_app", "federation_listener"]

PEER_KEY = "mosaic.peer_names"


class PeerCertProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus the verified client certificate's names in each request's scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        names = peer_names(ssl_object.getpeercert()) if ssl_object is not None else []
        inner = self.config.loaded_app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[PEER_KEY] = names
            await inner(scope, receive, send)

        self.app = app


class PeerGate:
    """Refuse a request whose certificate names no peer in the table, before any byte of the body is read."""

    def __init__(self, app: Any, state_holder: dict[str, Any]) -> None:
        self.app = app
        self.state_holder = state_holder

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        names: list[str] = (scope.get("extensions") or {}).get(PEER_KEY) or []
        state: AppState = self.state_holder["state"]
        try:
            async with state.sessionmaker() as session:
                peer = await state.federation.require_peer(session, names)
        except MosaicError as exc:
            await error_response(exc.status_code, exc.error, exc.detail)(scope, receive, send)
            return
        scope.setdefault("state", {})["peer"] = peer.name
        await self.app(scope, receive, send)


def create_federation_app(state: AppState) -> Any:
    """The peer-facing API: search and export under the caller peer's grants; hello for a ping."""
    app = FastAPI(title="Mosaic Memory federation", openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app)

    @app.get("/federation/v1/hello")
    async def hello(request: Request) -> dict[str, str]:
        return {"instance": state.federation.name, "peer": request.state.peer}

    @app.post("/federation/v1/search", response_model=PeerSearchResponse)
    async def search(body: PeerSearchRequest, request: Request) -> PeerSearchResponse:
        async with state.sessionmaker() as session:
            out = await state.federation.serve_search(session, request.state.peer, body)
            await session.commit()
        return out

    @app.post("/federation/v1/grants", response_model=list[PeerGrant])
    async def grants(body: PeerGrantsRequest, request: Request) -> list[PeerGrant]:
        async with state.sessionmaker() as session:
            found = await state.federation.peer_grants(session, request.state.peer, body.recipients)
        return [
            PeerGrant(
                id=g.id,
                owner=f"{o.kind}:{o.name}",
                kinds=list(g.kinds),
                tags=list(g.tags) if g.tags else None,
                expires_at=g.expires_at,
            )
            for g, o in found
        ]

    @app.post("/federation/v1/export")
    async def export(body: PeerExportRequest, request: Request) -> StreamingResponse:
        from mosaic_memory.federation.consolidate import export_stream

        peer: str = request.state.peer
        async with state.sessionmaker() as session:  # checked before the first byte: 404 if not active
            grant, owner, kinds = await state.federation.export_grant(
                session, peer, body.recipients, body.grant_id, body.kinds
            )
        return StreamingResponse(export_stream(state, peer, grant, owner, kinds), media_type="application/x-ndjson")

    return PeerGate(app, {"state": state})


class _FederationConfig(uvicorn.Config):
    """uvicorn's config with our SSL context (TLS 1.3 only, client certificate required) in place of its own."""

    def __init__(self, app: Any, *, context: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.federation_context = context

    def load(self) -> None:
        super().load()
        self.ssl = self.federation_context


class _FederationServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the main server owns the signals; its lifespan stops this one


async def _watch_certificates(state: AppState, interval: float = 10.0) -> None:
    """Reload the certificate and trust store when their files change (renewal job, CLI renew/install/trust)."""
    paths = state.federation.paths

    def stamp() -> tuple[float, ...]:
        return tuple(p.stat().st_mtime if p.exists() else 0.0 for p in (paths.cert, paths.key, paths.trusted))

    seen = stamp()
    while True:
        await asyncio.sleep(interval)
        now = stamp()
        if now != seen:
            try:
                state.federation.reload_certificates()
                seen = now
                log.info("federation certificate files changed: reloaded")
            except (OSError, ssl.SSLError) as exc:  # a half-written file: try again next time
                log.warning("could not reload the federation certificate yet: %s", exc)


@contextlib.asynccontextmanager
async def federation_listener(state: AppState) -> AsyncIterator[ssl.SSLContext | None]:
    """Serve the federation API while the block runs, when ``federation.port`` is set.

    Raises FederationError (at start) when the port is set but identity, certificate or trust is missing."""
    cfg = state.settings.federation
    if cfg.port is None:
        yield None
        return
    context = server_context(state.federation.paths)
    state.federation.server_ssl = context
    config = _FederationConfig(
        create_federation_app(state),
        context=context,
        host=cfg.host,
        port=cfg.port,
        http=PeerCertProtocol,
        ssl_certfile=str(state.federation.paths.cert),  # marks the config as TLS; load() swaps in `context`
        ssl_keyfile=str(state.federation.paths.key),
        log_level="warning",
        access_log=False,
        lifespan="off",
        # A peer that keeps a connection open (a stalled TLS handshake, a stream it stopped
        # reading) must not hold the instance's shutdown: SIGTERM ends within this many seconds.
        timeout_graceful_shutdown=10,
    )
    server = _FederationServer(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the federation listener stopped before it started")
        if time.monotonic() > deadline:
            raise RuntimeError("the federation listener did not start within 30 s")
        await asyncio.sleep(0.02)
    log.info("federation listener on https://%s:%d (instance %s)", cfg.host, cfg.port, state.federation.name)
    watcher = asyncio.create_task(_watch_certificates(state))
    try:
        yield context
    finally:
        watcher.cancel()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
