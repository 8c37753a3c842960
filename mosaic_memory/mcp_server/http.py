"""MCP over streamable HTTP, mounted on the service at ``/mcp``; tools call the services in-process.

Every HTTP request must carry ``Authorization: Bearer <key>`` (an API key or an OAuth access
token for this server). It is authenticated once per request by ``OAuthService.authenticate``,
the code REST uses, and the principal rides in the
request's ASGI state to the tool calls it carries (``services.ServiceBackend``). A key therefore
sees exactly what it sees over REST, with no serialization or HTTP hop in between.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecuritySettings

from mosaic_memory.common.failures import Failure, error_response, failure_of
from mosaic_memory.container import AppState
from mosaic_memory.errors import AuthenticationFailed
from mosaic_memory.mcp_server.services import PRINCIPAL_STATE_KEY, ServiceBackend
from mosaic_memory.mcp_server.tools import build_server
from mosaic_memory.oauth.service import resources_of
from mosaic_memory.oauth.urls import base_url
from mosaic_memory.owners.schemas import Principal

__all__ = ["McpHttp", "bearer_key", "origin_allowed"]

log = logging.getLogger("mosaic_memory.mcp")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


def origin_allowed(origin: str | None, allowed: Sequence[str]) -> bool:
    """Whether a request with this ``Origin`` header may use /mcp: no header (a non-browser client),
    an exact entry of ``allowed``, or an entry ``scheme://host:*`` and any port of that host."""
    if origin is None:
        return True
    for entry in allowed:
        if origin == entry or (
            entry.endswith(":*") and origin.startswith(entry[:-1]) and origin[len(entry) - 1 :].isdigit()
        ):
            return True
    return False


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, or None."""
    if not authorization:
        return None
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


class McpHttp:
    """The ``/mcp`` endpoint of one app: an ASGI app to route, ``running()`` for the lifespan.

    ``state`` gives the app's container (read per request: the lifespan sets it). ``running()``
    must be entered once, inside the app's lifespan, before ``/mcp`` is served.
    """

    def __init__(self, state: Callable[[], AppState], *, log_level: str = "INFO") -> None:
        self._state = state
        self.server = build_server(ServiceBackend(state), log_level=log_level)
        # The SDK's DNS-rebinding check would refuse any Host but localhost (a reverse proxy, a
        # LAN name), and checks Origin only together with Host. Here the key check is the guard
        # against a rebound name (the page cannot send the bearer key), and __call__ checks
        # Origin on its own, before the key, with the service's JSON error body.
        self.server.streamable_http_app(
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
        )
        self._sessions = self.server.session_manager

    def running(self) -> AbstractAsyncContextManager[None]:
        return self._sessions.run()

    async def _authenticate(self, key: str, scope: Scope) -> Principal:
        """The key's (or OAuth token's) principal, as REST resolves it (recording use, committed)."""
        state = self._state()
        audiences = resources_of(base_url(state.settings, scope))
        async with state.sessionmaker() as session:
            client = scope.get("client") or ("unknown", 0)
            principal = await state.authenticate(session, key, audiences, str(client[0]))
            await session.commit()
        return principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse requests without a key the service accepts, then serve MCP."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if not origin_allowed(origin, self._state().settings.mcp.allowed_origins):
            detail = f"requests from the browser origin {origin!r} are not allowed (mcp.allowed_origins)"
            await error_response(403, "OriginNotAllowed", detail)(scope, receive, send)
            return
        key = bearer_key(headers.get("authorization"))
        try:
            if key is None:
                raise AuthenticationFailed()
            principal = await self._authenticate(key, scope)
        except Exception as exc:
            failure = failure_of(exc)
            if failure is None:
                log.exception("MCP authentication failed")
                failure = Failure(500, "InternalError", "authentication failed; see the server log")
            await error_response(failure.status, failure.error, failure.detail, **failure.extra)(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = principal
        # Bind the MCP session to this key: the SDK answers 404 to a session used with another one.
        fingerprint = hashlib.sha256(key.encode()).hexdigest()[:32]
        scopes = sorted(principal.scopes)
        token = AccessToken(token=key, client_id=fingerprint, scopes=scopes, subject=principal.user.name)
        scope["user"] = AuthenticatedUser(token)
        await self._sessions.handle_request(scope, receive, send)
