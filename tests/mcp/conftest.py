"""MCP clients of the SDK itself, over both transports, against the live service (``live_url``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult

ROOT = Path(__file__).resolve().parents[2]

Connect = Callable[[str], AbstractAsyncContextManager[Client]]

# A raw JSON-RPC initialize over streamable HTTP, for checks below the SDK client (status, headers).
MCP_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "matrix", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def key_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


@asynccontextmanager
async def http_client(live_url: str, key: str) -> AsyncIterator[Client]:
    """The SDK client over streamable HTTP to ``/mcp`` with the key as bearer token."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http,
        Client(streamable_http_client(f"{live_url}/mcp", http_client=http)) as client,
    ):
        yield client


@asynccontextmanager
async def stdio_client(live_url: str, key: str) -> AsyncIterator[Client]:
    """The SDK client over stdio to ``python -m mosaic_memory mcp``, a client of the live service."""
    env = {
        "MOSAIC_URL": live_url,
        "MOSAIC_API_KEY": key,
        "MOSAIC_CONFIG_FILE": "",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    if "VIRTUAL_ENV" in os.environ:
        env["VIRTUAL_ENV"] = os.environ["VIRTUAL_ENV"]
    params = StdioServerParameters(command=sys.executable, args=["-m", "mosaic_memory", "mcp"], env=env, cwd=ROOT)
    async with Client(params) as client:
        yield client


@pytest.fixture(params=["http", "stdio"])
def connect(request: pytest.FixtureRequest, live_url: str) -> Connect:
    """Open an MCP client with a given API key, over each transport in turn."""
    opener = http_client if request.param == "http" else stdio_client
    return lambda key: opener(live_url, key)


def payload(result: CallToolResult) -> Any:
    """The JSON a successful tool call returned."""
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


def error_text(result: CallToolResult) -> str:
    """The text of a failed tool call."""
    assert result.is_error, result
    return " ".join(getattr(block, "text", "") for block in result.content)
