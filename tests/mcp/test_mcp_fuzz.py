"""Hypothesis over every MCP tool's inputs: arguments named by the tool's input schema (and
unknown ones) holding any JSON value, sent as JSON-RPC ``tools/call`` over streamable HTTP to a
real server. Never an internal error (no 5xx, no ``InternalError``); a refused call stores
nothing (the user's export is unchanged)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_KEY, auth
from tests.portability.test_import_fuzz import JSON_VALUES

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class Session:
    """One MCP session over raw JSON-RPC (the protocol itself, below any SDK)."""

    def __init__(self, http: httpx.Client, key: str) -> None:
        self.http = http
        self.headers = {**HEADERS, **auth(key)}
        self.next_id = 0
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}
        r = self.post({"jsonrpc": "2.0", "id": self._id(), "method": "initialize", "params": init})
        self.headers["mcp-session-id"] = r.headers["mcp-session-id"]
        self.http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=self.headers)

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def post(self, message: dict[str, Any]) -> httpx.Response:
        r = self.http.post("/mcp", json=message, headers=self.headers)
        assert r.status_code == 200, (r.status_code, r.text)
        return r

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        r = self.post({"jsonrpc": "2.0", "id": self._id(), "method": method, "params": params})
        if r.headers.get("content-type", "").startswith("text/event-stream"):
            data = [line[5:].strip() for line in r.text.splitlines() if line.startswith("data:")]
            messages = [json.loads(d) for d in data if d]
            reply: dict[str, Any] = next(m for m in messages if "id" in m)
        else:
            reply = r.json()
        return reply


def rows_of(http: httpx.Client, key: str) -> list[str]:
    r = http.get("/v1/export", headers=auth(key))
    assert r.status_code == 200, r.text
    return [line for line in r.text.splitlines() if json.loads(line)["type"] not in ("header", "end")]


@pytest.fixture(scope="module")
def mcp(cli_url: str) -> Iterator[tuple[httpx.Client, Session, str, list[dict[str, Any]]]]:
    with httpx.Client(base_url=cli_url, timeout=120) as http:
        r = http.post("/v1/admin/users", json={"name": f"fuzzmcp-{uuid.uuid4().hex[:8]}"}, headers=auth(ADMIN_KEY))
        assert r.status_code == 201, r.text
        key = r.json()["api_key"]
        session = Session(http, key)
        tools = session.request("tools/list", {})["result"]["tools"]
        assert len(tools) >= 9  # the tools of docs/mcp.md
        yield http, session, key, tools


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_tool_input_is_answered_without_an_internal_error(
    mcp: tuple[httpx.Client, Session, str, list[dict[str, Any]]], data: st.DataObject
) -> None:
    http, session, key, tools = mcp
    tool = data.draw(st.sampled_from(tools))
    names = sorted(tool.get("inputSchema", {}).get("properties", {}))
    chosen = data.draw(st.lists(st.sampled_from(names) | st.text(max_size=6), max_size=4) if names else st.just([]))
    arguments = {name: data.draw(JSON_VALUES | st.text(max_size=40)) for name in chosen}
    before = rows_of(http, key)
    reply = session.request("tools/call", {"name": tool["name"], "arguments": arguments})
    text = json.dumps(reply)
    assert "InternalError" not in text and "unexpected error" not in text, text
    if "error" in reply:  # a JSON-RPC error: the arguments did not fit the tool at all
        assert reply["error"]["code"] != -32603, text  # -32603: internal error
        refused = True
    else:
        refused = bool(reply["result"].get("isError"))
    if refused:
        assert rows_of(http, key) == before, f"{tool['name']} refused {arguments!r} but stored a row"
