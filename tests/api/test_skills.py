"""Skills over REST: create, get, list, patch, delete, isolation, bad input, task recall."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.conftest import UserFactory, auth

TeamFactory = Callable[..., Awaitable[str]]

DEPLOY = {
    "name": "deploy-to-staging",
    "description": "Deploy the current branch to the staging environment",
    "instructions": "1. Run the tests. 2. Build and push the image. 3. kubectl rollout restart -n staging.",
    "tags": ["k8s", "deploy"],
    "metadata": {"runbook": "RB-12"},
}
UNRELATED = [
    ("write-release-notes", "Draft release notes from merged pull requests"),
    ("rotate-api-keys", "Rotate expiring API credentials for third-party services"),
    ("triage-bug-report", "Reproduce and label an incoming bug report"),
    ("db-backup", "Back up the PostgreSQL database to object storage"),
    ("summarize-meeting", "Summarize a meeting transcript into decisions and action items"),
    ("onboard-new-hire", "Set up accounts and access for a new team member"),
    ("book-travel", "Book flights and a hotel for a business trip"),
    ("send-invoice", "Create and email a monthly invoice to a client"),
]


async def create(http: httpx.AsyncClient, h: dict[str, str], **body: Any) -> httpx.Response:
    return await http.post("/v1/skills", json=body, headers=h)


async def count(http: httpx.AsyncClient, h: dict[str, str]) -> int:
    return len((await http.get("/v1/skills", params={"limit": 500}, headers=h)).json()["items"])


async def test_create_get_patch_delete(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    name, h = await make_user()
    r = await create(http, h, **DEPLOY)
    assert r.status_code == 201, r.text
    skill = r.json()
    assert skill["owner"] == f"user:{name}"
    assert skill["tags"] == ["deploy", "k8s"] and skill["metadata"] == {"runbook": "RB-12"}
    assert skill["instructions"] == DEPLOY["instructions"] and skill["embedding_model"]
    got = await http.get(f"/v1/skills/{skill['id']}", headers=h)
    assert got.status_code == 200 and got.json() == skill

    r = await http.patch(
        f"/v1/skills/{skill['id']}", json={"tags": ["ops"], "instructions": "just run make"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["ops"] and r.json()["instructions"] == "just run make"
    assert r.json()["description"] == DEPLOY["description"] and r.json()["name"] == DEPLOY["name"]

    # a new description is re-embedded: search finds the skill by its new meaning
    r = await http.patch(
        f"/v1/skills/{skill['id']}",
        json={"name": "water-the-plants", "description": "Water the office plants every Monday"},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["name"] == "water-the-plants"
    body = {"query": "the ferns look thirsty", "kinds": ["skills"], "mode": "semantic", "k": 1}
    hits = (await http.post("/v1/search", json=body, headers=h)).json()["hits"]
    assert hits[0]["id"] == skill["id"]
    assert hits[0]["content"] == "water-the-plants: Water the office plants every Monday"

    assert (await http.delete(f"/v1/skills/{skill['id']}", headers=h)).status_code == 204
    r = await http.get(f"/v1/skills/{skill['id']}", headers=h)
    assert r.status_code == 404 and r.json()["error"] == "SkillNotFound"
    assert (await http.delete(f"/v1/skills/{skill['id']}", headers=h)).status_code == 404
    assert (await http.patch(f"/v1/skills/{skill['id']}", json={"tags": []}, headers=h)).status_code == 404


async def test_name_unique_per_owner(http: httpx.AsyncClient, make_user: UserFactory, make_team: TeamFactory) -> None:
    alice, a = await make_user("alice")
    _, b = await make_user("bob")
    team = await make_team(alice)
    first = (await create(http, a, name="lint", description="Run ruff over the repository")).json()
    r = await create(http, a, name="lint", description="something else entirely")
    assert r.status_code == 409 and r.json()["error"] == "SkillExists"
    assert "lint" in r.json()["detail"]
    # surrounding whitespace is not a different name
    assert (await create(http, a, name="  lint ", description="again")).status_code == 409
    # the same name is free for another owner
    assert (await create(http, b, name="lint", description="Run eslint")).status_code == 201
    r = await create(http, a, name="lint", description="Team linting", owner=f"team:{team}")
    assert r.status_code == 201 and r.json()["owner"] == f"team:{team}"
    # renaming onto a taken name is refused and changes nothing
    other = (await create(http, a, name="format", description="Run ruff format")).json()
    r = await http.patch(f"/v1/skills/{other['id']}", json={"name": "lint", "description": "x"}, headers=a)
    assert r.status_code == 409
    assert (await http.get(f"/v1/skills/{other['id']}", headers=a)).json() == other
    assert (await http.get(f"/v1/skills/{first['id']}", headers=a)).json() == first


async def test_cursor_pagination_visits_every_skill_once(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    stored = set()
    for i in range(9):
        stored.add((await create(http, h, name=f"skill-{i}", description=f"Does task number {i}")).json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/v1/skills", params=params, headers=h)).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and set(seen) == stored
    await create(http, h, name="tagged", description="x", tags=["special"])
    tagged = (await http.get("/v1/skills", params={"tag": "special"}, headers=h)).json()["items"]
    assert [s["name"] for s in tagged] == ["tagged"]


async def test_isolation_between_users(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    a_name, a = await make_user("a")
    _, b = await make_user("b")
    secret = (await create(http, a, name="open-the-safe", description="Open the office safe with code 4711")).json()
    sid = secret["id"]
    assert (await http.get(f"/v1/skills/{sid}", headers=b)).status_code == 404
    assert (await http.patch(f"/v1/skills/{sid}", json={"description": "hijacked"}, headers=b)).status_code == 404
    assert (await http.delete(f"/v1/skills/{sid}", headers=b)).status_code == 404
    assert (await http.get("/v1/skills", headers=b)).json()["items"] == []
    assert (await http.get("/v1/skills", params={"owner": f"user:{a_name}"}, headers=b)).status_code == 404
    assert (await create(http, b, name="x", description="y", owner=f"user:{a_name}")).status_code == 404
    for mode in ("semantic", "keyword", "hybrid"):
        body = {"query": "open the office safe code", "mode": mode, "kinds": ["skills"]}
        assert (await http.post("/v1/search", json=body, headers=b)).json()["hits"] == [], mode
    assert (await http.get(f"/v1/skills/{sid}", headers=a)).json() == secret


async def test_team_skills(http: httpx.AsyncClient, make_user: UserFactory, make_team: TeamFactory) -> None:
    alice, a = await make_user("alice")
    bob, b = await make_user("bob")
    _, c = await make_user("carol")
    team = await make_team(alice, bob)
    r = await create(http, a, **DEPLOY, owner=f"team:{team}")
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert (await http.get(f"/v1/skills/{sid}", headers=b)).json()["owner"] == f"team:{team}"
    assert [s["id"] for s in (await http.get("/v1/skills", headers=b)).json()["items"]] == [sid]
    r = await http.patch(f"/v1/skills/{sid}", json={"instructions": "use the deploy bot"}, headers=b)
    assert r.status_code == 200
    body = {"query": "push my branch to the test environment", "kinds": ["skills"]}
    hits = (await http.post("/v1/search", json=body, headers=b)).json()["hits"]
    assert hits[0]["id"] == sid and hits[0]["owner"] == f"team:{team}"
    for r in (
        await http.get(f"/v1/skills/{sid}", headers=c),
        await http.patch(f"/v1/skills/{sid}", json={"description": "x"}, headers=c),
        await http.delete(f"/v1/skills/{sid}", headers=c),
        await http.get("/v1/skills", params={"owner": f"team:{team}"}, headers=c),
        await create(http, c, name="sneaky", description="x", owner=f"team:{team}"),
    ):
        assert r.status_code == 404, r.text
    assert (await http.get("/v1/skills", headers=c)).json()["items"] == []
    assert (await http.post("/v1/search", json=body, headers=c)).json()["hits"] == []
    assert (await http.get(f"/v1/skills/{sid}", headers=a)).json()["instructions"] == "use the deploy bot"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"name": "x"}, 422),
        ({"description": "no name"}, 422),
        ({"name": "", "description": "d"}, 422),
        ({"name": "   ", "description": "d"}, 422),
        ({"name": "x", "description": "   "}, 422),
        ({"name": "n" * 257, "description": "d"}, 422),
        ({"name": "tab\tinside", "description": "d"}, 422),
        ({"name": "x", "description": "nul \u0000"}, 422),
        ({"name": 5, "description": "d"}, 422),
        ({"name": "x", "description": "d", "tags": "solo"}, 422),
        ({"name": "x", "description": "d", "metadata": ["not", "a", "dict"]}, 422),
        ({"name": "x", "description": "d", "unknown_field": 1}, 422),
        ({"name": "x", "description": "d" * (32 * 1024 + 1)}, 413),
        ({"name": "x", "description": "d", "instructions": "i" * (32 * 1024 + 1)}, 413),
        ({"name": "x", "description": "d", "metadata": {"blob": "m" * (64 * 1024)}}, 422),
        ({"name": "x", "description": "d", "owner": "team:not-mine"}, 404),
        ({"name": "baseline", "description": "duplicate"}, 409),
    ],
)
async def test_bad_create_changes_nothing(
    http: httpx.AsyncClient, make_user: UserFactory, body: dict[str, Any], status: int
) -> None:
    _, h = await make_user()
    await create(http, h, name="baseline", description="the only skill")
    r = await http.post("/v1/skills", json=body, headers=h)
    assert r.status_code == status, r.text
    assert set(r.json()) >= {"error", "detail"} and r.json()["detail"]
    assert await count(http, h) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": None},
        {"description": None},
        {"description": ""},
        {"tags": None},
        {"name": "n" * 257},
        {"instructions": 12},
        {"owner": "team:x"},
        {"unknown_field": True},
        {"description": "d" * (32 * 1024 + 1)},
    ],
)
async def test_bad_patch_changes_nothing(http: httpx.AsyncClient, make_user: UserFactory, body: dict[str, Any]) -> None:
    _, h = await make_user()
    skill = (await create(http, h, name="baseline", description="the only skill")).json()
    r = await http.patch(f"/v1/skills/{skill['id']}", json=body, headers=h)
    assert r.status_code in (413, 422), r.text
    assert (await http.get(f"/v1/skills/{skill['id']}", headers=h)).json() == skill


async def test_bad_ids_and_reads(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    for method in ("GET", "DELETE"):
        r = await http.request(method, "/v1/skills/not-a-uuid", headers=h)
        assert r.status_code == 422 and r.json()["error"] == "InvalidInput"
    r = await http.get(f"/v1/skills/{uuid.uuid4()}", headers=h)
    assert r.status_code == 404 and r.json()["error"] == "SkillNotFound"
    assert (await http.get("/v1/skills", params={"cursor": "garbage!!"}, headers=h)).status_code == 422
    assert (await http.get("/v1/skills", params={"limit": 0}, headers=h)).status_code == 422
    assert (await http.post("/v1/skills", json={"name": "x", "description": "y"})).status_code == 401


async def test_read_only_key_cannot_write(
    http: httpx.AsyncClient, admin_headers: dict[str, str], make_user: UserFactory
) -> None:
    name, h = await make_user()
    skill = (await create(http, h, name="baseline", description="the only skill")).json()
    key = (await http.post("/v1/admin/keys", json={"user": name, "scopes": ["read"]}, headers=admin_headers)).json()
    ro = auth(key["api_key"])
    assert (await create(http, ro, name="new", description="x")).status_code == 403
    assert (await http.patch(f"/v1/skills/{skill['id']}", json={"tags": ["x"]}, headers=ro)).status_code == 403
    assert (await http.delete(f"/v1/skills/{skill['id']}", headers=ro)).status_code == 403
    assert (await http.get(f"/v1/skills/{skill['id']}", headers=ro)).json() == skill


async def test_which_skill_fits_this_task(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    for name, description in UNRELATED:
        assert (await create(http, h, name=name, description=description)).status_code == 201
    target = (await create(http, h, **DEPLOY)).json()
    for mode in ("semantic", "hybrid"):
        body = {"query": "push my branch to the test environment", "kinds": ["skills"], "mode": mode}
        hits = (await http.post("/v1/search", json=body, headers=h)).json()["hits"]
        assert hits[0]["id"] == target["id"], (mode, [x["content"] for x in hits[:3]])
        assert hits[0]["kind"] == "skills"
        assert hits[0]["content"] == f"{DEPLOY['name']}: {DEPLOY['description']}"
    # instructions are not embedded but keyword search still reaches them
    body = {"query": "kubectl rollout", "kinds": ["skills"], "mode": "keyword"}
    hits = (await http.post("/v1/search", json=body, headers=h)).json()["hits"]
    assert [x["id"] for x in hits] == [target["id"]]


async def test_concurrent_duplicates_make_one_skill(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    # a first request records the key's use, which would otherwise serialize the racers on it
    assert (await http.get("/v1/me", headers=h)).status_code == 200
    results = await asyncio.gather(*(create(http, h, name="race", description=f"attempt {i}") for i in range(4)))
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409], [r.text for r in results]
    assert await count(http, h) == 1
