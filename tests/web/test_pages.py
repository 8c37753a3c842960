"""The web UI's HTTP contract, without a browser (these run wherever the suite runs): sign-in
redirects, CSRF refusals, the session's lifetime bound to its key, headers, vendored htmx."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, UserFactory, auth


@pytest.fixture
async def browserless(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a cookie jar of its own (the suite's shared client must stay cookie-free)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mosaic.test", timeout=60) as client:
        yield client


def token_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page carries a CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str, next_path: str = "/ui/search") -> httpx.Response:
    page = await client.get("/ui/signin")
    return await client.post("/ui/signin", data={"csrf_token": token_of(page.text), "api_key": key, "next": next_path})


async def test_htmx_and_the_stylesheet_are_served_from_the_package(browserless: httpx.AsyncClient) -> None:
    js = await browserless.get("/ui/static/htmx.min.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert 'version:"2.' in js.text
    css = await browserless.get("/ui/static/ui.css")
    assert css.status_code == 200 and ":focus-visible" in css.text


async def test_without_a_session_pages_redirect_to_sign_in(browserless: httpx.AsyncClient) -> None:
    r = await browserless.get("/ui/insights?tag=x")
    assert r.status_code == 303 and r.headers["location"] == "/ui/signin?next=%2Fui%2Finsights%3Ftag%3Dx"
    r = await browserless.get("/ui/search?q=x", headers={"HX-Request": "true"})
    assert r.status_code == 204 and r.headers["HX-Redirect"].startswith("/ui/signin?next=")
    assert (await browserless.get("/ui")).headers["location"] == "/ui/search"


async def test_posts_without_the_csrf_token_are_refused(browserless: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, headers = await make_user()
    key = headers["Authorization"].removeprefix("Bearer ")
    r = await browserless.post("/ui/signin", data={"api_key": key})
    assert r.status_code == 403 and "mosaic_session" not in r.headers.get("set-cookie", "")
    assert (await sign_in(browserless, key)).status_code == 303
    r = await browserless.post("/ui/logout", data={})
    assert r.status_code == 403
    assert (await browserless.get("/ui/search")).status_code == 200  # still signed in


async def test_sign_in_keeps_the_key_out_of_cookies_pages_and_foreign_redirects(
    browserless: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, headers = await make_user()
    key = headers["Authorization"].removeprefix("Bearer ")
    wrong = await sign_in(browserless, key + "x")
    assert wrong.status_code == 401 and key not in wrong.text and "not valid" in wrong.text
    r = await sign_in(browserless, key, next_path="https://evil.example/ui/x")
    assert r.status_code == 303 and r.headers["location"] == "/ui/search"
    assert key not in r.headers["set-cookie"] and "httponly" in r.headers["set-cookie"].lower()
    page = await browserless.get("/ui/search?q=anything")
    assert page.status_code == 200 and key not in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"


async def test_revoking_the_key_ends_its_sessions_and_scopes_hold(
    browserless: httpx.AsyncClient, http: httpx.AsyncClient, admin_headers: dict[str, str], make_user: UserFactory
) -> None:
    name, writer = await make_user()
    made = await http.post("/v1/insights", json={"content": "Read-only keys see this, unchanged"}, headers=writer)
    r = await http.post("/v1/admin/keys", json={"user": name, "scopes": ["read"]}, headers=admin_headers)
    key, prefix = r.json()["api_key"], r.json()["key"]["prefix"]
    assert (await sign_in(browserless, key)).status_code == 303
    assert (await browserless.get("/ui/jobs")).status_code == 403  # not an admin key
    assert (await browserless.get("/ui/admin")).status_code == 403
    page = await browserless.get(f"/ui/insights/{made.json()['id']}")
    assert page.status_code == 200 and "Read-only keys see this" in page.text
    assert "Save changes" not in page.text and "Delete…" not in page.text  # no forms it could not use
    r = await browserless.get("/ui/search/delete?q=x")
    assert r.status_code == 403  # a read-only key cannot even reach the delete step
    assert (await http.delete(f"/v1/admin/keys/{prefix}", headers=admin_headers)).status_code == 200
    r = await browserless.get("/ui/insights")
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/signin")
    assert (await http.get("/v1/me", headers=auth(key))).status_code == 401


async def test_forms_set_and_delete_a_preference_and_delete_a_skill(
    browserless: httpx.AsyncClient, http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """The forms no browser test drives, posted as the page would post them (token included)."""
    name, h = await make_user()
    skill = (await http.post("/v1/skills", json={"name": "triage", "description": "Sort new bugs"}, headers=h)).json()
    assert (await sign_in(browserless, h["Authorization"].removeprefix("Bearer "))).status_code == 303
    page = await browserless.get("/ui/preferences")
    assert f"Signed in as <strong>{name}</strong>" in page.text  # who am I, on every page
    token = token_of(page.text)
    form = {"csrf_token": token, "key": "timezone", "value": "Europe/Lisbon", "scope": "", "mutable": "on"}
    assert (await browserless.post("/ui/preferences/item", data=form)).status_code == 303
    assert (await http.get("/v1/preferences/timezone", headers=h)).json()["value"] == "Europe/Lisbon"

    confirm = await browserless.get("/ui/preferences/delete", params={"key": "timezone"})
    assert confirm.status_code == 200 and "Delete the preference" in confirm.text and "Europe/Lisbon" in confirm.text
    assert (await http.get("/v1/preferences/timezone", headers=h)).status_code == 200  # asking deletes nothing
    gone = await browserless.post(
        "/ui/preferences/delete", data={"csrf_token": token, "key": "timezone", "scope": "", "owner": ""}
    )
    assert gone.status_code == 303 and gone.headers["location"].endswith("notice=deleted-1")
    assert (await http.get("/v1/preferences/timezone", headers=h)).status_code == 404

    confirm = await browserless.get(f"/ui/skills/{skill['id']}/delete")
    assert confirm.status_code == 200 and "Delete the skill" in confirm.text and "Sort new bugs" in confirm.text
    assert (await browserless.post(f"/ui/skills/{skill['id']}/delete", data={"csrf_token": token})).status_code == 303
    assert (await http.get(f"/v1/skills/{skill['id']}", headers=h)).status_code == 404


async def test_admin_forms_create_a_team_add_and_remove_a_member_and_issue_a_scoped_key(
    browserless: httpx.AsyncClient, http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    ivy, _ = await make_user()
    jon, _ = await make_user()
    team = f"crew-{uuid.uuid4().hex[:6]}"
    assert (await sign_in(browserless, ADMIN_KEY, next_path="/ui/admin")).status_code == 303
    token = token_of((await browserless.get("/ui/admin")).text)
    made = await browserless.post("/ui/admin/teams", data={"csrf_token": token, "name": team, "members": ivy})
    assert made.status_code == 303
    joined = await browserless.post(
        f"/ui/admin/teams/{team}/members", data={"csrf_token": token, "user": jon, "role": "member"}
    )
    assert joined.status_code == 303
    teams = {t["name"]: t["members"] for t in (await http.get("/v1/admin/teams", headers=auth(ADMIN_KEY))).json()}
    assert sorted(teams[team]) == sorted([ivy, jon])
    page = (await browserless.get("/ui/admin")).text
    assert f'aria-label="Remove {jon} from {team}…"' in page and f'aria-label="Remove {ivy} from {team}…"' in page

    form = {"csrf_token": token, "user": jon, "name": "laptop", "scopes": "read"}
    shown = await browserless.post("/ui/admin/keys", data=form)
    assert shown.status_code == 201
    key = re.search(r'id="new-key">([^<]+)<', shown.text)
    assert key is not None
    me = (await http.get("/v1/me", headers=auth(key.group(1).strip()))).json()
    assert me["user"] == jon and me["scopes"] == ["read"] and f"team:{team}" in me["owners"]

    confirm = await browserless.get(f"/ui/admin/teams/{team}/members/{jon}/remove")
    assert confirm.status_code == 200 and f"Take {jon} out of {team}?" in confirm.text
    assert f"team:{team}" in (await http.get("/v1/me", headers=auth(key.group(1).strip()))).json()["owners"]
    removed = await browserless.post(f"/ui/admin/teams/{team}/members/{jon}/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    me = (await http.get("/v1/me", headers=auth(key.group(1).strip()))).json()
    assert f"team:{team}" not in me["owners"]
    assert (await browserless.get(f"/ui/admin/teams/{team}/members/{jon}/remove")).status_code == 404
    refused = await browserless.post(f"/ui/admin/teams/{team}/members/{ivy}/remove", data={})
    assert refused.status_code == 403  # no CSRF token: nothing changes
    assert ivy in (await http.get("/v1/admin/teams", headers=auth(ADMIN_KEY))).text


async def test_admin_page_lists_peers_and_grants_and_revokes_a_grant_after_asking(
    browserless: httpx.AsyncClient, http: httpx.AsyncClient, admin_headers: dict[str, str], make_user: UserFactory
) -> None:
    name, h = await make_user()
    peer = f"peer-{uuid.uuid4().hex[:6]}"
    added = {"name": peer, "url": "https://127.0.0.1:9"}
    r = await http.post("/v1/federation/peers", json=added, headers=admin_headers)
    assert r.status_code == 201, r.text
    try:
        body = {"peer": peer, "owner": f"user:{name}", "kinds": ["insights"], "expires_in": "1d"}
        grant = (await http.post("/v1/federation/grants", json=body, headers=h)).json()
        assert (await sign_in(browserless, ADMIN_KEY, next_path="/ui/admin")).status_code == 303
        page = (await browserless.get("/ui/admin")).text
        assert f'<td>{peer}</td><td class="wrap">https://127.0.0.1:9</td>' in page
        assert f'href="/ui/admin/grants/{grant["id"]}/revoke"' in page and f"user:{name}" in page

        confirm = await browserless.get(f"/ui/admin/grants/{grant['id']}/revoke")
        assert confirm.status_code == 200 and f"Revoke the grant of user:{name} to {peer}?" in confirm.text
        assert (await http.get("/v1/federation/grants", params={"peer": peer}, headers=h)).json()[0]["active"]
        done = await browserless.post(f"/ui/admin/grants/{grant['id']}/revoke", data={"csrf_token": token_of(page)})
        assert done.status_code == 303
        assert not (await http.get("/v1/federation/grants", params={"peer": peer}, headers=h)).json()[0]["active"]
        assert f'href="/ui/admin/grants/{grant["id"]}/revoke"' not in (await browserless.get("/ui/admin")).text
    finally:
        assert (await http.delete(f"/v1/federation/peers/{peer}", headers=admin_headers)).status_code in (200, 204)


def first_hit(page: str) -> str:
    """The text of the first hit on a search page (hits are ranked best first)."""
    found = re.search(r'<li class="card hit">(.*?)</li>', page, re.S)
    assert found, "the page lists at least one hit"
    return found.group(1)


async def test_semantic_search_finds_a_skill_for_a_task_and_the_skills_list_shows_it(
    browserless: httpx.AsyncClient, http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, h = await make_user()
    for name, description in (
        ("release", "Cut and publish a new version of the service"),
        ("triage", "Sort newly reported bugs by severity"),
    ):
        r = await http.post("/v1/skills", json={"name": name, "description": description}, headers=h)
        assert r.status_code == 201, r.text
    await http.post("/v1/insights", json={"content": "The office plants need water on Mondays"}, headers=h)
    assert (await sign_in(browserless, h["Authorization"].removeprefix("Bearer "))).status_code == 303
    listed = (await browserless.get("/ui/skills")).text
    assert "release" in listed and "triage" in listed

    query = {"q": "how do I ship an update to users?", "kinds": "skills", "mode": "semantic"}
    page = (await browserless.get("/ui/search", params=query)).text
    assert "(semantic)" in page and "publish a new version" in first_hit(page)
    query = {"q": "which greenery has to be watered?", "kinds": "insights", "mode": "semantic"}
    page = (await browserless.get("/ui/search", params=query)).text
    assert "office plants" in first_hit(page)  # no word in common: found by meaning
    query["mode"] = "keyword"
    assert "office plants" not in (await browserless.get("/ui/search", params=query)).text
