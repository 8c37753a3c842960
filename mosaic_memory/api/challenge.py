"""``WWW-Authenticate`` on every 401 of ``/mcp`` and ``/v1``: where to find the authorization server.

RFC 9728 §5.1: a resource server names its Protected Resource Metadata in the challenge, which is
how a hosted MCP client that got a 401 discovers how to obtain a token. The REST API and MCP
answer 401 in their own ways; this one middleware gives both the same challenge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mosaic_memory.config import Settings
from mosaic_memory.oauth.urls import base_url

__all__ = ["ResourceChallenge"]

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


def challenge(settings: Settings, scope: Scope) -> str | None:
    """The ``WWW-Authenticate`` value for a 401 of this request, or None outside /mcp and /v1."""
    path: str = scope.get("path", "")
    if path == "/mcp" or path.startswith("/mcp/"):
        suffix = "/mcp"
    elif path.startswith("/v1/"):
        suffix = ""
    else:
        return None
    value = f'Bearer resource_metadata="{base_url(settings, scope)}/.well-known/oauth-protected-resource{suffix}"'
    if any(k == b"authorization" for k, _ in scope.get("headers", [])):
        value += ', error="invalid_token"'  # RFC 6750 §3.1: credentials were sent and refused
    return value


class ResourceChallenge:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.settings.oauth.enabled:
            await self.app(scope, receive, send)
            return

        async def send_with_challenge(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                value = challenge(self.settings, scope)
                if value is not None:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"www-authenticate"]
                    message = {**message, "headers": [*headers, (b"www-authenticate", value.encode("latin-1"))]}
            await send(message)

        await self.app(scope, receive, send_with_challenge)
