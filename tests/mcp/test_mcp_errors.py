"""A failure reads the same over MCP as over REST: one mapping from exception to error and detail."""

from __future__ import annotations

import httpx

from tests.conftest import UserFactory
from tests.mcp.conftest import Connect, error_text, key_of


async def test_a_value_the_database_refuses_is_the_same_error_over_mcp_and_rest(
    connect: Connect, make_user: UserFactory, http: httpx.AsyncClient
) -> None:
    _, h = await make_user()
    content = "a NUL \u0000 inside"
    rest = await http.post("/v1/insights", json={"content": content}, headers=h)
    assert rest.status_code == 422, rest.text
    expected = f"{rest.json()['error']}: {rest.json()['detail']}"
    async with connect(key_of(h)) as client:
        # the SDK prefixes "Error executing tool <name>: "; the rest is the REST error and detail
        assert error_text(await client.call_tool("remember", {"content": content})).endswith(f": {expected}")
        bad_pref = error_text(await client.call_tool("set_preference", {"key": "k", "value": {"v": "\u0000"}}))
    assert "InvalidInput: " in bad_pref
    rest_pref = await http.put("/v1/preferences/k", json={"value": {"v": "\u0000"}}, headers=h)
    assert rest_pref.status_code == 422 and rest_pref.json()["error"] == "InvalidInput"
    # nothing was stored by either edge
    assert (await http.get("/v1/insights", headers=h)).json()["items"] == []
    assert (await http.get("/v1/preferences", headers=h)).json()["items"] == []


async def test_an_unknown_id_is_the_same_error_over_mcp_and_rest(
    connect: Connect, make_user: UserFactory, http: httpx.AsyncClient
) -> None:
    _, h = await make_user()
    missing = "5b0f8a9e-2f7c-4d35-9c43-0d6f3c1b2a10"
    rest = (await http.delete(f"/v1/insights/{missing}", headers=h)).json()
    async with connect(key_of(h)) as client:
        message = error_text(await client.call_tool("forget", {"id": missing}))
    assert message.endswith(f": {rest['error']}: {rest['detail']}"), message
