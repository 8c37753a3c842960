"""Both MCP eras against a real ``mosaic-memory serve`` process, with the SDK's own client.

The initialize-handshake revisions (2025-11-25 and the earlier 2025-06-18, 2025-03-26 and
2024-11-05 that clients in the field still offer) and the stateless 2026-07-28 revision
(``server/discover``, no initialize, every request self-contained) over streamable HTTP, and
stdio. Then the entries ``mosaic-memory mcp config`` prints are used as each client would use
them: the variable expanded from the environment, the rest as written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client, ClientSession
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from mosaic_memory.container import AppState
from mosaic_memory.mcp_server import TOOL_NAMES
from tests.conftest import ADMIN_KEY, auth, free_port, scratch_dir, start_serve
from tests.mcp.conftest import ROOT, payload

MODERN = "2026-07-28"


@dataclass
class Service:
    url: str
    data_dir: Path

    def user(self) -> str:
        """A new user of the service; returns its first API key."""
        name = f"era-{uuid.uuid4().hex[:8]}"
        r = httpx.post(f"{self.url}/v1/admin/users", json={"name": name}, headers=auth(ADMIN_KEY), timeout=30)
        assert r.status_code == 201, r.text
        key: str = r.json()["api_key"]
        return key

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
        env.update(MOSAIC_CONFIG_FILE="", MOSAIC_DATA_DIR=str(self.data_dir), HF_HUB_OFFLINE="1")
        env.update(extra)
        return env


@pytest.fixture(scope="module")
def service(state: AppState) -> Iterator[Service]:
    """``python -m mosaic_memory serve`` on a loopback port, on the suite's database (standalone)."""
    data_dir = scratch_dir("mosaic-eras-")
    port = free_port()
    svc = Service(f"http://127.0.0.1:{port}", data_dir)
    env = svc.env(
        MOSAIC_TIER="standalone",
        MOSAIC_DATABASE_URL=state.database.url,
        MOSAIC_ADMIN_KEY=ADMIN_KEY,
        MOSAIC_JOBS__ENABLED="false",
        MOSAIC_LOGS__BACKGROUND_EMBEDDER="false",
        MOSAIC_LOG_LEVEL="WARNING",
        TRANSFORMERS_OFFLINE="1",
    )
    proc = start_serve(port, env, data_dir / "serve.log")
    yield svc
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    shutil.rmtree(data_dir, ignore_errors=True)


@asynccontextmanager
async def http_client(endpoint: str, headers: dict[str, str], mode: str) -> AsyncIterator[Client]:
    """The SDK client over streamable HTTP, in ``mode``: "legacy", "auto" or a modern version."""
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(endpoint, http_client=http), mode=mode) as client,
    ):
        yield client


async def remember_and_recall(client: Client, fact: str, query: str) -> None:
    """What every era must do: list the tools, store a fact, find it again."""
    assert {t.name for t in (await client.list_tools()).tools} == set(TOOL_NAMES)
    stored = payload(await client.call_tool("remember", {"content": fact}))
    assert stored["status"] == "stored"
    found = payload(await client.call_tool("recall", {"query": query, "k": 3}))
    assert found["hits"] and found["hits"][0]["id"] == stored["id"]


@pytest.mark.parametrize(("mode", "version"), [("legacy", "2025-11-25"), (MODERN, MODERN), ("auto", MODERN)])
async def test_each_era_over_http(service: Service, mode: str, version: str) -> None:
    key = service.user()
    async with http_client(f"{service.url}/mcp", auth(key), mode) as client:
        # auto probes server/discover first: a server that answers it is spoken to statelessly
        assert client.protocol_version == version
        if mode != MODERN:  # a pinned version skips discover, and with it the server's self-description
            assert client.server_info is not None and client.server_info.name == "mosaic-memory"
            assert "get_context" in (client.instructions or "")
        await remember_and_recall(client, f"The user's build runs on Gradle 9 ({mode})", "which build tool?")


@pytest.mark.parametrize("version", ["2025-06-18", "2025-03-26", "2024-11-05"])
async def test_older_handshake_revisions(service: Service, version: str) -> None:
    """A client that offers an older revision gets that revision, not the newest."""
    key = service.user()
    async with (
        create_mcp_http_client(headers=auth(key)) as http,
        streamable_http_client(f"{service.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        offer = types.InitializeRequestParams(
            protocol_version=version,
            capabilities=types.ClientCapabilities(),
            client_info=types.Implementation(name="older-client", version="1.0"),
        )
        result = await session.send_request(types.InitializeRequest(params=offer), types.InitializeResult)
        assert result.protocol_version == version
        session.adopt(result)
        await session.send_notification(types.InitializedNotification())
        assert {t.name for t in (await session.list_tools()).tools} == set(TOOL_NAMES)
        stored = payload(await session.call_tool("remember", {"content": f"The user writes Kotlin ({version})"}))
        found = payload(await session.call_tool("recall", {"query": "which language?"}))
        assert found["hits"][0]["id"] == stored["id"]


async def test_the_modern_era_is_stateless_and_keyed(service: Service) -> None:
    """2026-07-28 requests open no session, and each one is checked against its own key."""
    key = service.user()
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "server/discover",
        "params": {
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientInfo": {"name": "raw-http", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        },
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "Mcp-Protocol-Version": MODERN,
        "Mcp-Method": "server/discover",
    }
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
        found = await http.post("/mcp", json=body, headers={**headers, **auth(key)})
        assert found.status_code == 200, found.text
        assert "mcp-session-id" not in found.headers
        assert MODERN in found.json()["result"]["supportedVersions"]
        refused = await http.post("/mcp", json=body, headers={**headers, **auth(key + "x")})
        assert refused.status_code == 401
        assert refused.json()["error"] == "AuthenticationFailed"
        assert key not in refused.text


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_in_each_era(service: Service, mode: str) -> None:
    key = service.user()
    env = service.env(MOSAIC_URL=service.url, MOSAIC_API_KEY=key, TRANSFORMERS_OFFLINE="1")
    params = StdioServerParameters(command=sys.executable, args=["-m", "mosaic_memory", "mcp"], env=env, cwd=ROOT)
    async with Client(params, mode=mode) as client:
        await remember_and_recall(client, f"The user deploys on Fridays never ({mode})", "when do we deploy?")


# The printed configurations, used as each client uses them --------------------------------------------
def printed(service: Service, client: str, *args: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "mosaic_memory", "mcp", "config", client, "--url", service.url, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=service.env(),
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def expand(value: Any, env: dict[str, str], pattern: str) -> Any:
    """What the client does to its file's strings before use (``pattern`` captures the name)."""
    if isinstance(value, str):
        return re.sub(pattern, lambda m: env[m.group(1)], value)
    if isinstance(value, list):
        return [expand(v, env, pattern) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, env, pattern) for k, v in value.items()}
    return value


async def test_the_claude_code_entry_connects_as_claude_code_would(service: Service) -> None:
    key = service.user()
    entry = json.loads(printed(service, "claude-code"))["mcpServers"]["mosaic"]
    assert key not in json.dumps(entry)
    used = expand(entry, {"MOSAIC_API_KEY": key}, r"\$\{([A-Z_]+)\}")
    assert used["type"] == "http"
    # Claude Code runs the initialize handshake
    async with http_client(used["url"], used["headers"], "legacy") as client:
        await remember_and_recall(client, "The user reviews pull requests in the morning", "when are reviews?")


async def test_the_codex_http_entry_connects_with_the_key_from_its_variable(service: Service) -> None:
    import tomllib

    key = service.user()
    entry = tomllib.loads(printed(service, "codex"))["mcp_servers"]["mosaic"]
    headers = {"Authorization": f"Bearer {({'MOSAIC_API_KEY': key})[entry['bearer_token_env_var']]}"}
    async with http_client(entry["url"], headers, "auto") as client:
        await remember_and_recall(client, "The user's laptop is a ThinkPad X1", "what laptop?")


async def test_the_cursor_stdio_entry_starts_a_working_server(service: Service) -> None:
    key = service.user()
    entry = json.loads(printed(service, "cursor", "--stdio"))["mcpServers"]["mosaic"]
    used = expand(entry, {"MOSAIC_API_KEY": key}, r"\$\{env:([A-Z_]+)\}")
    # the command is this install's mosaic-memory; run it with this interpreter so the test's
    # checkout is the one under test, and with exactly the environment the entry gives
    assert Path(used["command"]).name == "mosaic-memory" and used["args"] == ["mcp"]
    env = {**service.env(), **used["env"]}
    params = StdioServerParameters(command=sys.executable, args=["-m", "mosaic_memory", *used["args"]], env=env)
    async with Client(params) as client:
        await remember_and_recall(client, "The user names branches feature/<ticket>", "branch naming?")
