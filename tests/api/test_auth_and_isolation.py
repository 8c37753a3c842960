"""Keys, scopes, revocation, and owner isolation across every insight route."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx

from tests.conftest import UserFactory, auth


async def test_every_v1_route_needs_a_key(http: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/v1/insights"),
        ("POST", "/v1/search"),
        ("GET", f"/v1/insights/{uuid.uuid4()}"),
        ("POST", "/v1/admin/users"),
        ("GET", "/v1/me"),
    ]:
        r = await http.request(method, path, json={} if method == "POST" else None)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"] == "AuthenticationFailed"
    r = await http.get("/v1/insights", headers=auth("mm_deadbeef_not-a-real-key-at-all-xxxxxx"))
    assert r.status_code == 401
    assert (await http.get("/healthz")).status_code == 200


async def test_a_key_reads_as_its_user_and_that_users_teams_only(
    http: httpx.AsyncClient, make_user: UserFactory, make_team: Callable[..., Awaitable[str]]
) -> None:
    # Authentication reads the key, its user and the user's teams in one statement: the teams
    # must be those of this key's user, never of another key's.
    alice, ha = await make_user("alice")
    bob, hb = await make_user("bob")
    alices = await make_team(alice)
    bobs = await make_team(bob)
    shared = await make_team(alice, bob)
    assert (await http.get("/v1/me", headers=ha)).json()["owners"] == [
        f"user:{alice}",
        *sorted([f"team:{alices}", f"team:{shared}"], key=lambda label: label.split(":")[1]),
    ]
    assert (await http.get("/v1/me", headers=hb)).json()["owners"] == [
        f"user:{bob}",
        *sorted([f"team:{bobs}", f"team:{shared}"], key=lambda label: label.split(":")[1]),
    ]


async def test_scopes(http: httpx.AsyncClient, admin_headers: dict[str, str], make_user: UserFactory) -> None:
    name, h = await make_user()
    # a normal user is not an admin
    r = await http.post("/v1/admin/users", json={"name": f"x-{uuid.uuid4().hex[:6]}"}, headers=h)
    assert r.status_code == 403
    assert r.json()["error"] == "PermissionDenied"
    # a read-only key cannot write
    key = (await http.post("/v1/admin/keys", json={"user": name, "scopes": ["read"]}, headers=admin_headers)).json()
    ro = auth(key["api_key"])
    assert key["key"]["prefix"] in key["api_key"]
    r = await http.post("/v1/insights", json={"content": "nope"}, headers=ro)
    assert r.status_code == 403
    assert (await http.get("/v1/insights", headers=ro)).status_code == 200
    # an admin-scoped key for a non-admin user is refused
    r = await http.post("/v1/admin/keys", json={"user": name, "scopes": ["admin"]}, headers=admin_headers)
    assert r.status_code == 403


async def test_revocation_is_immediate(
    http: httpx.AsyncClient, admin_headers: dict[str, str], make_user: UserFactory
) -> None:
    name, _ = await make_user()
    key = (await http.post("/v1/admin/keys", json={"user": name, "agent_id": "bot-1"}, headers=admin_headers)).json()
    h = auth(key["api_key"])
    me = (await http.get("/v1/me", headers=h)).json()
    assert me["agent_id"] == "bot-1"
    listed = (await http.get("/v1/admin/keys", params={"user": name}, headers=admin_headers)).json()
    assert key["key"]["prefix"] in [k["prefix"] for k in listed]
    assert all("hash" not in k and "api_key" not in k for k in listed)
    r = await http.delete(f"/v1/admin/keys/{key['key']['prefix']}", headers=admin_headers)
    assert r.status_code == 200 and r.json()["revoked_at"]
    r = await http.get("/v1/me", headers=h)
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]


async def test_user_b_never_reaches_user_a(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, a = await make_user("a")
    _, b = await make_user("b")
    secret = (
        await http.post(
            "/v1/insights", json={"content": "A's bank PIN hint is the cat's birthday", "tags": ["private"]}, headers=a
        )
    ).json()
    sid = secret["id"]
    assert (await http.get(f"/v1/insights/{sid}", headers=b)).status_code == 404
    assert (await http.patch(f"/v1/insights/{sid}", json={"content": "hijacked"}, headers=b)).status_code == 404
    assert (await http.delete(f"/v1/insights/{sid}", headers=b)).status_code == 404
    assert (await http.get(f"/v1/insights/{sid}/sources", headers=b)).status_code == 404
    assert (await http.get("/v1/insights", headers=b)).json()["items"] == []
    for mode in ("semantic", "keyword", "hybrid"):
        hits = (
            await http.post("/v1/search", json={"query": "bank PIN hint cat birthday", "mode": mode}, headers=b)
        ).json()["hits"]
        assert sid not in [x["id"] for x in hits], mode
    # B cannot write into A's space either
    r = await http.post("/v1/insights", json={"content": "x", "owner": "user:someone-else"}, headers=b)
    assert r.status_code == 404
    # and A's row is untouched
    assert (await http.get(f"/v1/insights/{sid}", headers=a)).json()["content"] == secret["content"]


async def test_team_memory_visible_to_members_only(http: httpx.AsyncClient, make_user: UserFactory, make_team) -> None:  # type: ignore[no-untyped-def]
    alice, a = await make_user("alice")
    bob, b = await make_user("bob")
    _, c = await make_user("carol")
    team = await make_team(alice, bob)
    r = await http.post(
        "/v1/insights",
        json={"content": "The staging database lives on host db-stg-3", "owner": f"team:{team}"},
        headers=a,
    )
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    assert r.json()["owner"] == f"team:{team}"
    got = await http.get(f"/v1/insights/{tid}", headers=b)
    assert got.status_code == 200
    hits = (await http.post("/v1/search", json={"query": "where is staging database"}, headers=b)).json()["hits"]
    assert hits and hits[0]["id"] == tid and hits[0]["owner"] == f"team:{team}"
    assert (await http.get(f"/v1/insights/{tid}", headers=c)).status_code == 404
    hits = (await http.post("/v1/search", json={"query": "where is staging database"}, headers=c)).json()["hits"]
    assert tid not in [x["id"] for x in hits]
    r = await http.post("/v1/insights", json={"content": "sneaky", "owner": f"team:{team}"}, headers=c)
    assert r.status_code == 404
