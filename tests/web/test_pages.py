"""The web UI's HTTP contract, without a browser (these run wherever the suite runs): sign-in
redirects, CSRF refusals, the session's lifetime bound to its key, headers, vendored htmx."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import UserFactory, auth


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
