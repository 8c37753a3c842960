"""The preference, agent-log and skill tools through MCP.

They call the REST routes of the preferences, logs and skills packages
(PUT/GET /v1/preferences/{key}, GET /v1/preferences, POST /v1/logs, POST /v1/search,
GET /v1/skills/{id}); the REST API, through the plain ``http`` fixture, is the witness.
"""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import UserFactory
from tests.mcp.conftest import Connect, error_text, http_client, key_of, payload


async def test_set_and_get_preferences(connect: Connect, make_user: UserFactory, http: httpx.AsyncClient) -> None:
    _, h = await make_user()
    async with connect(key_of(h)) as client:
        stored = payload(
            await client.call_tool("set_preference", {"key": "code_review_style", "value": "terse bullet points"})
        )
        assert stored["key"] == "code_review_style" and stored["value"] == "terse bullet points"
        assert "embedding_model" not in stored
        payload(
            await client.call_tool(
                "set_preference", {"key": "indent", "value": {"width": 4, "tabs": False}, "scope": "project:mosaic"}
            )
        )
        # REST sees what MCP stored
        rest = (await http.get("/v1/preferences/code_review_style", headers=h)).json()
        assert rest["value"] == "terse bullet points"

        one = payload(await client.call_tool("get_preferences", {"key": "code_review_style"}))
        assert one["value"] == "terse bullet points"
        scoped = payload(await client.call_tool("get_preferences", {"key": "indent", "scope": "project:mosaic"}))
        assert scoped["value"] == {"width": 4, "tabs": False}
        everything = payload(await client.call_tool("get_preferences", {}))
        assert {p["key"] for p in everything["items"]} == {"code_review_style", "indent"}

        replaced = payload(
            await client.call_tool("set_preference", {"key": "code_review_style", "value": "long prose"})
        )
        assert replaced["value"] == "long prose"
        assert "NotFound" in error_text(await client.call_tool("get_preferences", {"key": "never_set"}))
        assert "InvalidInput" in error_text(
            await client.call_tool("set_preference", {"key": "bad key with spaces", "value": 1})
        )

        found = payload(
            await client.call_tool(
                "recall", {"query": "how does the user like code reviews?", "kinds": ["preferences"], "k": 2}
            )
        )
        assert found["hits"] and found["hits"][0]["kind"] == "preferences"
        assert "code_review_style" in found["hits"][0]["content"]


async def test_an_agent_key_cannot_change_an_immutable_preference(
    live_url: str, make_user: UserFactory, http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    name, h = await make_user()
    r = await http.put("/v1/preferences/language", json={"value": "British English", "mutable": False}, headers=h)
    assert r.status_code == 201, r.text
    agent_key = (
        await http.post("/v1/admin/keys", json={"user": name, "agent_id": "bot-1"}, headers=admin_headers)
    ).json()["api_key"]
    async with http_client(live_url, agent_key) as client:
        assert payload(await client.call_tool("get_preferences", {"key": "language"}))["value"] == "British English"
        refused = error_text(await client.call_tool("set_preference", {"key": "language", "value": "US English"}))
        assert "ImmutablePreference" in refused and "language" in refused
    assert (await http.get("/v1/preferences/language", headers=h)).json()["value"] == "British English"


async def test_log_events_then_search_logs(connect: Connect, make_user: UserFactory, http: httpx.AsyncClient) -> None:
    _, h = await make_user()
    session = f"s-{uuid.uuid4().hex[:8]}"
    async with connect(key_of(h)) as client:
        out = payload(
            await client.call_tool(
                "log_events",
                {
                    "events": [
                        {"session_id": session, "content": "ran the migrations on staging", "agent_id": "deployer"},
                        {
                            "session_id": session,
                            "content": "pytest failed: connection refused on port 5432",
                            "level": "error",
                            "metadata": {"exit_code": 1},
                        },
                        {"session_id": "other-session", "content": "pytest failed again on port 5432"},
                    ]
                },
            )
        )
        assert out["count"] == 3 and len(out["ids"]) == 3
        listed = (await http.get("/v1/logs", params={"session_id": session}, headers=h)).json()["items"]
        assert {e["id"] for e in listed} == set(out["ids"][:2])

        hits = payload(
            await client.call_tool("search_logs", {"query": "pytest failed port 5432", "session_id": session})
        )["hits"]
        assert hits[0]["id"] == out["ids"][1] and hits[0]["kind"] == "logs"
        assert out["ids"][2] not in [hit["id"] for hit in hits]  # the same words, another session
        by_agent = payload(await client.call_tool("search_logs", {"query": "migrations", "agent_id": "deployer"}))
        assert [hit["id"] for hit in by_agent["hits"]] == [out["ids"][0]]

        bad = error_text(await client.call_tool("log_events", {"events": [{"session_id": session, "content": ""}]}))
        assert "InvalidInput" in bad and "content" in bad
    assert len((await http.get("/v1/logs", params={"session_id": session}, headers=h)).json()["items"]) == 2


async def test_find_skill_returns_its_instructions(
    connect: Connect, make_user: UserFactory, http: httpx.AsyncClient
) -> None:
    _, h = await make_user()
    for body in (
        {
            "name": "deploy-to-staging",
            "description": "Deploy the current branch to the staging environment",
            "instructions": "1. Run the tests. 2. Push the image. 3. kubectl rollout restart -n staging.",
        },
        {"name": "write-release-notes", "description": "Draft release notes from merged pull requests"},
    ):
        r = await http.post("/v1/skills", json=body, headers=h)
        assert r.status_code == 201, r.text
    async with connect(key_of(h)) as client:
        found = payload(await client.call_tool("find_skill", {"task": "ship this branch to staging", "k": 2}))
        top = found["hits"][0]
        assert top["name"] == "deploy-to-staging" and top["kind"] == "skills"
        assert "kubectl rollout restart" in top["instructions"]
        assert "InvalidInput" in error_text(await client.call_tool("find_skill", {"task": "x", "k": 0}))


async def test_kinds_stay_private_to_their_owner(
    live_url: str, make_user: UserFactory, http: httpx.AsyncClient
) -> None:
    _, a = await make_user("a")
    _, b = await make_user("b")
    assert (await http.put("/v1/preferences/secret_pref", json={"value": "A only"}, headers=a)).status_code == 201
    assert (
        await http.post("/v1/logs", json={"events": [{"session_id": "a-1", "content": "A's private log"}]}, headers=a)
    ).status_code == 201
    assert (
        await http.post("/v1/skills", json={"name": "a-skill", "description": "A's private procedure"}, headers=a)
    ).status_code == 201
    async with http_client(live_url, key_of(b)) as client:
        assert "NotFound" in error_text(await client.call_tool("get_preferences", {"key": "secret_pref"}))
        assert payload(await client.call_tool("get_preferences", {}))["items"] == []
        assert (
            payload(await client.call_tool("search_logs", {"query": "private log", "session_id": "a-1"}))["hits"] == []
        )
        assert payload(await client.call_tool("find_skill", {"task": "private procedure"}))["hits"] == []
    assert (await http.get("/v1/preferences/secret_pref", headers=a)).status_code == 200
