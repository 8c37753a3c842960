"""The MCP edge over both transports: tools, insights and search through MCP, keys and isolation.

Every test talks to the live service with the MCP SDK's own client; the REST API, reached with
the plain ``http`` fixture, is the independent witness of what was stored.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import httpx

from mosaic_memory.mcp_server import TOOL_NAMES
from tests.conftest import UserFactory, auth
from tests.mcp.conftest import ROOT, Connect, error_text, http_client, key_of, payload, stdio_client


async def test_tools_are_listed_with_descriptions_for_a_model(connect: Connect, make_user: UserFactory) -> None:
    _, h = await make_user()
    async with connect(key_of(h)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(TOOL_NAMES)
    for tool in tools.values():
        # what it does, when to use it, what it returns, and every argument explained
        assert tool.description and len(tool.description) > 150, tool.name
        assert "Use it" in tool.description and "Returns" in tool.description, tool.name
        for name, schema in tool.input_schema["properties"].items():
            assert schema.get("description"), (tool.name, name)
    assert tools["recall"].annotations is not None and tools["recall"].annotations.read_only_hint
    assert tools["forget"].annotations is not None and tools["forget"].annotations.destructive_hint
    assert tools["remember"].input_schema["required"] == ["content"]


async def test_remember_recall_forget(connect: Connect, make_user: UserFactory, http: httpx.AsyncClient) -> None:
    _, h = await make_user()
    async with connect(key_of(h)) as client:
        stored = payload(
            await client.call_tool(
                "remember",
                {
                    "content": "The user deploys with Ansible from the ops-tools repo",
                    "tags": ["ops"],
                    "importance": 0.8,
                },
            )
        )
        assert stored["status"] == "stored" and stored["tags"] == ["ops"] and stored["importance"] == 0.8
        # the REST API sees exactly what MCP stored, under the key's user
        rest = (await http.get(f"/v1/insights/{stored['id']}", headers=h)).json()
        assert rest["content"] == "The user deploys with Ansible from the ops-tools repo"
        assert rest["owner"] == stored["owner"]

        found = payload(await client.call_tool("recall", {"query": "how do we deploy?", "k": 3}))
        assert found["count"] == len(found["hits"]) >= 1
        top = found["hits"][0]
        assert top["id"] == stored["id"] and top["kind"] == "insights" and 0 < top["score"] <= 1
        filtered = payload(await client.call_tool("recall", {"query": "how do we deploy?", "tags": ["not-ops"]}))
        assert filtered["hits"] == []

        again = payload(
            await client.call_tool("remember", {"content": "The user deploys with Ansible from the ops-tools repo"})
        )
        assert again["status"] == "duplicate" and again["id"] == stored["id"]

        gone = payload(await client.call_tool("forget", {"id": stored["id"]}))
        assert gone == {"id": stored["id"], "deleted": True}
        assert (await http.get(f"/v1/insights/{stored['id']}", headers=h)).status_code == 404
        after = payload(await client.call_tool("recall", {"query": "how do we deploy?", "k": 3}))
        assert stored["id"] not in [hit["id"] for hit in after["hits"]]
        assert "InsightNotFound" in error_text(await client.call_tool("forget", {"id": stored["id"]}))


async def test_user_b_never_reaches_user_a_through_mcp(
    connect: Connect, make_user: UserFactory, http: httpx.AsyncClient
) -> None:
    _, a = await make_user("a")
    _, b = await make_user("b")
    async with connect(key_of(a)) as client_a:
        secret = payload(await client_a.call_tool("remember", {"content": "A's locker combination is 31-07-19"}))
    async with connect(key_of(b)) as client_b:
        for mode in ("semantic", "keyword", "hybrid"):
            hits = payload(await client_b.call_tool("recall", {"query": "locker combination", "mode": mode}))["hits"]
            assert secret["id"] not in [hit["id"] for hit in hits], mode
        # a guessed (here: known) id of A's insight is not found for B, and so is a random one
        assert "InsightNotFound" in error_text(await client_b.call_tool("forget", {"id": secret["id"]}))
        assert "InsightNotFound" in error_text(await client_b.call_tool("forget", {"id": str(uuid.uuid4())}))
        # B cannot write into a space that is not B's
        denied = error_text(await client_b.call_tool("remember", {"content": "planted", "owner": "team:not-bs-team"}))
        assert "NotFound" in denied
    # A's insight is untouched
    assert (await http.get(f"/v1/insights/{secret['id']}", headers=a)).json()["content"].startswith("A's locker")


async def test_a_bad_argument_is_a_tool_error_and_stores_nothing(
    connect: Connect, make_user: UserFactory, http: httpx.AsyncClient
) -> None:
    _, h = await make_user()
    async with connect(key_of(h)) as client:
        message = error_text(await client.call_tool("recall", {"query": "anything", "k": 0}))
        assert "InvalidInput" in message and "k" in message and "greater than or equal to 1" in message
        message = error_text(await client.call_tool("remember", {"content": "too important", "importance": 5}))
        assert "InvalidInput" in message and "importance" in message
        message = error_text(await client.call_tool("remember", {"content": "   "}))
        assert "InvalidInput" in message and "blank" in message
        message = error_text(await client.call_tool("forget", {"id": "not-a-uuid"}))
        assert "InvalidInput" in message
        # a missing required argument is refused by the SDK's schema check before any call
        assert "content" in error_text(await client.call_tool("remember", {"tags": ["x"]}))
    assert (await http.get("/v1/insights", headers=h)).json()["items"] == []


async def test_mcp_over_http_needs_a_valid_key(live_url: str, make_user: UserFactory) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=live_url) as raw:
        for extra, detail in [
            ({}, "Authorization: Bearer"),
            ({"Authorization": "Basic dXNlcjpwYXNz"}, "Authorization: Bearer"),
            (auth("mm_deadbeef_not-a-real-key-at-all-xxxxxx"), "not valid"),
        ]:
            r = await raw.post("/mcp", json=body, headers=headers | extra)
            assert r.status_code == 401, (extra, r.text)
            assert r.json()["error"] == "AuthenticationFailed" and detail in r.json()["detail"]
            # RFC 9728: the challenge says where a hosted client finds how to get a token
            metadata = f'Bearer resource_metadata="{live_url}/.well-known/oauth-protected-resource/mcp"'
            invalid = ', error="invalid_token"' if extra else ""
            assert r.headers["www-authenticate"] == metadata + invalid
        assert (await raw.get("/mcp", headers=headers)).status_code == 401


async def test_a_read_only_key_can_recall_but_not_remember(
    live_url: str, make_user: UserFactory, http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    name, _ = await make_user()
    created = await http.post("/v1/admin/keys", json={"user": name, "scopes": ["read"]}, headers=admin_headers)
    async with http_client(live_url, created.json()["api_key"]) as client:
        assert payload(await client.call_tool("recall", {"query": "anything"}))["hits"] == []
        assert "PermissionDenied" in error_text(await client.call_tool("remember", {"content": "nope"}))


async def test_a_revoked_key_stops_working_at_once(
    live_url: str, make_user: UserFactory, http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    name, _ = await make_user()
    created = (await http.post("/v1/admin/keys", json={"user": name}, headers=admin_headers)).json()
    async with httpx.AsyncClient(base_url=live_url) as raw:
        await http.delete(f"/v1/admin/keys/{created['key']['prefix']}", headers=admin_headers)
        r = await raw.post("/mcp", json={}, headers=auth(created["api_key"]))
        assert r.status_code == 401 and "revoked" in r.json()["detail"]


async def test_an_mcp_session_is_bound_to_the_key_that_opened_it(live_url: str, make_user: UserFactory) -> None:
    _, a = await make_user("a")
    _, b = await make_user("b")
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    async with httpx.AsyncClient(base_url=live_url) as raw:
        opened = await raw.post("/mcp", json=init, headers=headers | a)
        assert opened.status_code == 200, opened.text
        session = {"mcp-session-id": opened.headers["mcp-session-id"]}
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        hijack = await raw.post("/mcp", json=listing, headers=headers | b | session)
        assert hijack.status_code == 404
        await raw.delete("/mcp", headers=headers | a | session)


def test_stdio_without_a_key_fails_with_one_clear_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")} | {"MOSAIC_CONFIG_FILE": ""}
    result = subprocess.run(
        [sys.executable, "-m", "mosaic_memory", "mcp"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stdout == ""  # stdout is the protocol channel: nothing else may go there
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "MOSAIC_API_KEY" in lines[0], result.stderr


async def test_stdio_reports_an_unreachable_service_as_a_tool_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with stdio_client(closed, "mm_deadbeef_any-key") as client:
        message = error_text(await client.call_tool("recall", {"query": "anything"}))
    assert "cannot reach Mosaic Memory" in message and closed in message
