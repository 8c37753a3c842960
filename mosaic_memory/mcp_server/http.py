"""MCP over streamable HTTP, mounted on the service at ``/mcp``.

Every HTTP request must carry ``Authorization: Bearer <key>``; the key is checked by the REST
API itself (``GET /v1/me``) and every tool call is forwarded, with the caller's key, to the
same REST app in-process. A key therefore sees exactly what it sees over REST.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

from mosaic_memory.api.errors import error_response
from mosaic_memory.client import AsyncMosaicClient, MosaicClientError
from mosaic_memory.mcp_server.tools import build_server

__all__ = ["McpHttp", "bearer_key"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The in-process REST app is reached through httpx.ASGITransport; the host is never resolved.
_INTERNAL_URL = "http://mosaic.internal"


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, or None."""
    if not authorization:
        return None
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


class McpHttp:
    """The ``/mcp`` endpoint of one REST app: an ASGI app to route, ``running()`` for the lifespan.

    ``running()`` must be entered once, inside the app's lifespan, before ``/mcp`` is served.
    """

    def __init__(self, rest_app: ASGIApp, *, log_level: str = "INFO") -> None:
        self._rest_app = rest_app
        self.server = build_server(self._client_for_call, log_level=log_level)
        # The SDK's DNS-rebinding check would refuse any Host but localhost (a reverse proxy, a
        # LAN name). It guards servers without authentication; here a page that rebinds a name
        # onto us still cannot send the bearer key, so the key check below is the guard.
        self.server.streamable_http_app(
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
        )
        self._sessions = self.server.session_manager

    def running(self) -> AbstractAsyncContextManager[None]:
        return self._sessions.run()

    def _rest_client(self, key: str) -> AsyncMosaicClient:
        transport = httpx.ASGITransport(app=self._rest_app, raise_app_exceptions=False)
        return AsyncMosaicClient(_INTERNAL_URL, key, transport=transport)

    @asynccontextmanager
    async def _client_for_call(self, ctx: Context) -> AsyncIterator[AsyncMosaicClient]:
        headers = ctx.headers or {}
        key = bearer_key(headers.get("authorization"))
        if key is None:  # the gate lets no such request through; kept as a guard
            raise ToolError("AuthenticationFailed: send 'Authorization: Bearer <key>'")
        async with self._rest_client(key) as client:
            yield client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse requests without a key the REST API accepts, then serve MCP."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        key = bearer_key(headers.get("authorization"))
        if key is None:
            response = error_response(
                401, "AuthenticationFailed", "a valid API key is required: send 'Authorization: Bearer <key>'"
            )
            await response(scope, receive, send)
            return
        scopes: list[str] = []
        subject: str | None = None
        try:
            async with self._rest_client(key) as client:
                me = await client.me()
            scopes, subject = list(me.get("scopes", [])), me.get("user")
        except MosaicClientError as exc:
            # 403 is a valid key without the read scope: let it in, each tool call is checked.
            if exc.status != 403:
                await error_response(exc.status or 503, exc.error, exc.detail)(scope, receive, send)
                return
        # Bind the MCP session to this key: the SDK answers 404 to a session used with another one.
        fingerprint = hashlib.sha256(key.encode()).hexdigest()[:32]
        scope["user"] = AuthenticatedUser(AccessToken(token=key, client_id=fingerprint, scopes=scopes, subject=subject))
        await self._sessions.handle_request(scope, receive, send)
