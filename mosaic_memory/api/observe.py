"""Every HTTP request observed once: its request id, its duration by route template, its span.

A pure ASGI middleware (it neither buffers bodies nor changes responses, so streamed exports and
MCP's event streams pass through as they are). The request id is the caller's ``X-Request-ID``
when it is a short token, otherwise a fresh one; either way it is sent back in the response
and attached to every log record written while the request runs.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mosaic_memory.observability.logs import request_id_var

if TYPE_CHECKING:
    from mosaic_memory.container import AppState

__all__ = ["ObserveRequests"]

access_log = logging.getLogger("mosaic_memory.access")

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED = "<unmatched>"  # a path no route answers: never the path itself (unbounded labels)


def _route_of(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else UNMATCHED


class ObserveRequests:
    def __init__(self, app: Any, state: Callable[[], AppState | None]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        given = headers.get("x-request-id", "")
        request_id = given if _VALID_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        state = self.state()
        status = 500
        method = scope["method"]

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        started = time.perf_counter()
        try:
            if state is None or not state.tracing.enabled:
                await self.app(scope, receive, send_with_id)
            else:
                with state.tracing.server_span(method, headers) as span:
                    try:
                        await self.app(scope, receive, send_with_id)
                    finally:
                        route = _route_of(scope)
                        span.update_name(f"{method} {route}")
                        span.set_attribute("http.route", route)
                        span.set_attribute("http.response.status_code", status)
                        span.set_attribute("mosaic.request_id", request_id)
                        if status >= 500:
                            from opentelemetry.trace import Status, StatusCode

                            span.set_status(Status(StatusCode.ERROR))
        finally:
            elapsed = time.perf_counter() - started
            route = _route_of(scope)
            if state is not None:
                state.metrics.http_duration.labels(method, route, str(status)).observe(elapsed)
            access_log.info(
                "%s %s %d %.1f ms",
                method,
                route,
                status,
                elapsed * 1000,
                extra={"method": method, "route": route, "status": status, "duration_ms": round(elapsed * 1000, 3)},
            )
            request_id_var.reset(token)
