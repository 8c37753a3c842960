"""Canary secrets through the MCP write tools (remember, log_events, set_preference) over both
transports: redacted and counted by default, refused with SecretDetected in refuse mode."""

from __future__ import annotations

import httpx

from tests.canaries import assert_clean, canaries, everything, leaky_text
from tests.conftest import UserFactory
from tests.mcp.conftest import Connect, error_text, key_of, payload


async def test_mcp_writes_are_redacted(connect: Connect, make_user: UserFactory, http: httpx.AsyncClient) -> None:
    _, h = await make_user("mcp-sec")
    c = canaries()
    async with connect(key_of(h)) as client:
        stored = payload(await client.call_tool("remember", {"content": leaky_text(c)}))
        assert stored["secrets_redacted"] == 5 and "[REDACTED:github-token]" in stored["content"]
        logged = payload(
            await client.call_tool(
                "log_events",
                {"events": [{"session_id": "s", "content": f"ran with {c['aws-key']}"}]},
            )
        )
        assert logged["secrets_redacted"] == 1
        pref = payload(await client.call_tool("set_preference", {"key": "ci", "value": {"password": c["password"]}}))
        assert pref["value"] == {"password": "[REDACTED:password]"} and pref["secrets_redacted"] == 1
        assert_clean(str(payload(await client.call_tool("recall", {"query": c["aws-key"], "mode": "keyword"}))), c)
        plain = payload(await client.call_tool("set_preference", {"key": "theme", "value": "dark"}))
        assert "secrets_redacted" not in plain
    await everything(http, h, c)


async def test_mcp_writes_are_refused_in_refuse_mode(
    connect: Connect, make_user: UserFactory, http: httpx.AsyncClient, refuse_secrets: None
) -> None:
    _, h = await make_user("mcp-sec")
    c = canaries()
    async with connect(key_of(h)) as client:
        for tool, args in (
            ("remember", {"content": leaky_text(c)}),
            ("log_events", {"events": [{"session_id": "s", "content": f"key {c['aws-key']}"}]}),
            ("set_preference", {"key": "ci", "value": f"token {c['github-token']}"}),
        ):
            message = error_text(await client.call_tool(tool, args))
            assert "SecretDetected: " in message and "nothing was stored" in message, (tool, message)
            assert_clean(message, c)
    assert (await http.get("/v1/insights", headers=h)).json()["items"] == []
    assert (await http.get("/v1/logs", headers=h)).json()["items"] == []
    assert (await http.get("/v1/preferences", headers=h)).json()["items"] == []
