"""The URL clients reach this service at, which names its issuer and resources."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mosaic_memory.config import Settings

__all__ = ["base_url"]


def base_url(settings: Settings, scope: Mapping[str, Any]) -> str:
    """``oauth.public_url`` if set, else the scheme and Host of this ASGI request (after the proxy
    headers uvicorn trusts), without a trailing slash."""
    if settings.oauth.public_url:
        return settings.oauth.public_url.rstrip("/")
    host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
    if not host:
        server = scope.get("server") or ("127.0.0.1", settings.port)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}".rstrip("/")
