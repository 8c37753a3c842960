"""What the web UI could do and REST, the client and the CLI could not (docs/surfaces.md): an
insight's correction history, the list of log sessions, search by owner from the CLI, and the
federation identity before ``federation init``."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from mosaic_memory.cli.main import app as cli
from mosaic_memory.client import MosaicClientError
from tests.api.test_client_admin_jobs import client_for, key_of
from tests.conftest import ADMIN_KEY, UserFactory


async def invoke(url: str, headers: dict[str, str], *args: str) -> Result:
    """``mosaic-memory ARGS`` against the service at ``url`` (in a thread: the CLI runs its own loop)."""
    env = {"MOSAIC_URL": url, "MOSAIC_API_KEY": key_of(headers), "MOSAIC_CONFIG_FILE": ""}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def mm(url: str, headers: dict[str, str], *args: str) -> Any:
    """``mosaic-memory ARGS --json``; the parsed output."""
    result = await invoke(url, headers, *args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


async def test_an_insights_history_over_rest_the_client_and_the_cli(
    http: httpx.AsyncClient, app: Any, cli_url: str, make_user: UserFactory
) -> None:
    _, h = await make_user()
    _, other = await make_user()
    first = (await http.post("/v1/insights", json={"content": "Standup is at 9:00"}, headers=h)).json()["id"]
    async with client_for(app, key_of(h)) as client:  # a correction through the client, then the CLI
        second = str((await client.remember("Standup is at 9:30", supersedes=first)).id)
    third = (await mm(cli_url, h, "insights", "add", "Standup is at 10:00", "--supersedes", second))["id"]
    assert (await http.get(f"/v1/insights/{first}", headers=h)).json()["superseded_by"] == second

    r = await http.get(f"/v1/insights/{third}/history", headers=h)
    assert r.status_code == 200 and [i["id"] for i in r.json()] == [second]  # what it replaced directly
    assert r.json()[0]["superseded_by"] == third
    assert (await http.get(f"/v1/insights/{first}/history", headers=h)).json() == []
    r = await http.get(f"/v1/insights/{third}/history", headers=other)
    assert r.status_code == 404 and r.json()["error"] == "InsightNotFound"  # not another user's
    assert (await http.get("/v1/insights/not-an-id/history", headers=h)).status_code == 422

    async with client_for(app, key_of(h)) as client:
        assert [i.content for i in await client.insight_history(second)] == ["Standup is at 9:00"]
    async with client_for(app, key_of(other)) as client:
        with pytest.raises(MosaicClientError) as err:
            await client.insight_history(second)
        assert err.value.status == 404
    assert [i["id"] for i in await mm(cli_url, h, "insights", "history", third)] == [second]


async def test_log_sessions_over_rest_the_client_and_the_cli(
    http: httpx.AsyncClient,
    app: Any,
    cli_url: str,
    make_user: UserFactory,
    make_team: Callable[..., Awaitable[str]],
) -> None:
    name, h = await make_user()
    _, other = await make_user()
    team = await make_team(name)
    events = [
        {"session_id": "early", "content": "one", "occurred_at": "2026-01-01T10:00:00Z"},
        {"session_id": "early", "content": "two", "occurred_at": "2026-01-01T10:05:00Z"},
        {"session_id": "late", "content": "three", "occurred_at": "2026-02-01T09:00:00Z"},
        {"session_id": "middle", "content": "four", "occurred_at": "2026-01-15T08:00:00Z"},
    ]
    assert (await http.post("/v1/logs", json={"events": events}, headers=h)).status_code == 201
    team_event = {"session_id": "shared", "content": "team work", "occurred_at": "2026-03-01T00:00:00Z"}
    r = await http.post("/v1/logs", json={"events": [team_event], "owner": f"team:{team}"}, headers=h)
    assert r.status_code == 201, r.text

    r = await http.get("/v1/logs/sessions", params={"owner": f"user:{name}"}, headers=h)
    assert r.status_code == 200, r.text
    got = [(s["session_id"], s["events"]) for s in r.json()]
    assert got == [("late", 1), ("middle", 1), ("early", 2)]  # latest activity first
    early = r.json()[2]
    assert early["first_at"].startswith("2026-01-01T10:00") and early["last_at"].startswith("2026-01-01T10:05")
    every = (await http.get("/v1/logs/sessions", headers=h)).json()
    assert (every[0]["owner"], every[0]["session_id"]) == (f"team:{team}", "shared")
    assert len((await http.get("/v1/logs/sessions", params={"limit": 2}, headers=h)).json()) == 2
    assert (await http.get("/v1/logs/sessions", headers=other)).json() == []  # nothing of anyone else's
    r = await http.get("/v1/logs/sessions", params={"owner": f"team:{team}"}, headers=other)
    assert r.status_code in (403, 404) and "error" in r.json()
    assert (await http.get("/v1/logs/sessions", params={"limit": 0}, headers=h)).status_code == 422

    async with client_for(app, key_of(h)) as client:
        sessions = await client.log_sessions(owner=f"team:{team}")
        assert [(s.session_id, s.events) for s in sessions] == [("shared", 1)]
    listed = await mm(cli_url, h, "logs", "sessions", "--owner", f"user:{name}", "--limit", "1")
    assert [(s["session_id"], s["events"]) for s in listed] == [("late", 1)]


async def test_cli_search_by_owner(
    http: httpx.AsyncClient, cli_url: str, make_user: UserFactory, make_team: Callable[..., Awaitable[str]]
) -> None:
    name, h = await make_user()
    team = await make_team(name)
    mine = {"content": "Kestrel notes: the spare key is under the mat"}
    theirs = {"content": "Kestrel notes: the team shares one deploy key", "owner": f"team:{team}"}
    for body in (mine, theirs):
        assert (await http.post("/v1/insights", json=body, headers=h)).status_code == 201

    async def owners(*args: str) -> list[str]:
        out = await mm(cli_url, h, "search", "kestrel notes", "--mode", "keyword", "--kind", "insights", *args)
        return sorted(hit["owner"] for hit in out["hits"])

    assert await owners() == sorted([f"team:{team}", f"user:{name}"])
    assert await owners("--owner", f"team:{team}") == [f"team:{team}"]
    assert await owners("--owner", f"user:{name}") == [f"user:{name}"]
    refused = await invoke(cli_url, h, "search", "kestrel", "--owner", f"team:nope-{uuid.uuid4().hex[:6]}")
    assert refused.exit_code != 0 and key_of(h) not in refused.output


async def test_federation_identity_before_init_is_a_clear_conflict(
    http: httpx.AsyncClient, app: Any, make_user: UserFactory
) -> None:
    _, h = await make_user()
    r = await http.get("/v1/federation/identity", headers=h)
    assert r.status_code == 409 and r.json()["error"] == "FederationError"
    assert "federation init" in r.json()["detail"]
    async with client_for(app, key_of(h)) as client:
        with pytest.raises(MosaicClientError) as err:
            await client.federation_identity()
        assert err.value.status == 409 and err.value.error == "FederationError"
    assert (await http.get("/v1/federation/identity")).status_code == 401


async def test_removing_a_team_member_ends_its_reach_at_once(
    http: httpx.AsyncClient,
    app: Any,
    admin_headers: dict[str, str],
    make_user: UserFactory,
    make_team: Callable[..., Awaitable[str]],
) -> None:
    ann, ann_h = await make_user()
    ben, ben_h = await make_user()
    team = await make_team(ann, ben)
    body = {"content": "The team's on-call rota lives in the ops wiki", "owner": f"team:{team}"}
    made = (await http.post("/v1/insights", json=body, headers=ann_h)).json()["id"]
    assert (await http.get(f"/v1/insights/{made}", headers=ben_h)).status_code == 200

    r = await http.delete(f"/v1/admin/teams/{team}/members/{ben}", headers=admin_headers)
    assert r.status_code == 200 and r.json()["members"] == [ann]
    assert (await http.get(f"/v1/insights/{made}", headers=ben_h)).status_code == 404
    assert f"team:{team}" not in (await http.get("/v1/me", headers=ben_h)).json()["owners"]
    assert (await http.get(f"/v1/insights/{made}", headers=ann_h)).status_code == 200  # the memory stays

    again = await http.delete(f"/v1/admin/teams/{team}/members/{ben}", headers=admin_headers)
    assert again.status_code == 404 and "not a member" in again.json()["detail"]
    assert (await http.delete(f"/v1/admin/teams/{team}/members/{ann}", headers=ann_h)).status_code == 403
    async with client_for(app, ADMIN_KEY) as admin:
        assert (await admin.remove_team_member(team, ann)).members == []
        with pytest.raises(MosaicClientError) as err:
            await admin.remove_team_member(f"nope-{uuid.uuid4().hex[:6]}", ann)
        assert err.value.status == 404
    assert (await http.get(f"/v1/insights/{made}", headers=ann_h)).status_code == 404
