"""MCP over stdio: a client of a running service, for MCP hosts that launch a command."""

from __future__ import annotations

from mosaic_memory.client import AsyncMosaicClient
from mosaic_memory.mcp_server.rest import RestBackend
from mosaic_memory.mcp_server.tools import build_server

__all__ = ["run_stdio"]


async def run_stdio(url: str, api_key: str, *, log_level: str = "WARNING") -> None:
    """Serve the memory tools on stdin/stdout until the host closes them; every tool call goes
    to the REST API at ``url`` with ``api_key``. The service need not be up yet: a call made
    while it is down is a tool error (ServiceUnreachable), not a crash."""
    async with AsyncMosaicClient(url, api_key) as client:
        await build_server(RestBackend(client), log_level=log_level).run_stdio_async()
