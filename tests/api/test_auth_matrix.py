"""The auth matrix: every non-public route of the served OpenAPI document (and ``/mcp``) × every
scope. Without a key: 401 with ``WWW-Authenticate``; with a key lacking the route's scope: 403;
with a key holding it: neither. A revoked key is refused on its next request; failed guesses on a
key prefix are answered 429 with ``Retry-After``. Figures: docs/reliability.md."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import select

from mosaic_memory.api.deps import RequireScope
from mosaic_memory.container import AppState
from mosaic_memory.models import ApiKey
from mosaic_memory.owners.schemas import SCOPES
from tests.conftest import auth
from tests.mcp.conftest import MCP_HEADERS, MCP_INIT

WRITES = ("POST", "PUT", "PATCH")


def declared_scopes(dependant: Dependant) -> set[str]:
    """The scopes a route's dependency tree requires (``require(scope)`` anywhere in it)."""
    found = {dependant.call.scope} if isinstance(dependant.call, RequireScope) else set()
    for sub in dependant.dependencies:
        found |= declared_scopes(sub)
    return found


def fill(path: str) -> str:
    """A concrete path: ids become fresh UUIDs, names a value nothing is stored under."""
    return re.sub(r"\{(\w+)\}", lambda m: str(uuid.uuid4()) if m.group(1).endswith("id") else "no-such-x", path)


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """The app's routes, included routers opened (their routes carry full paths: no include prefix)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from api_routes(router.routes)


def protected_operations(app: Any) -> list[tuple[str, str, set[str]]]:
    """(method, path, scopes required) of every operation the OpenAPI document marks as secured."""
    document = app.openapi()
    routes = {(r.path, m): r for r in api_routes(app.routes) for m in r.methods or ()}
    ops = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            if op.get("security"):
                ops.append((method.upper(), path, declared_scopes(routes[(path, method.upper())].dependant)))
    return ops


@pytest.fixture(scope="module")
async def scope_keys(http: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, str]:
    """One key per scope, each holding only that scope, on the admin user (who may hold any)."""
    keys: dict[str, str] = {}
    for scope in SCOPES:
        r = await http.post(
            "/v1/admin/keys",
            json={"user": "admin", "name": f"matrix-{scope}", "scopes": [scope]},
            headers=admin_headers,
        )
        assert r.status_code == 201, r.text
        keys[scope] = r.json()["api_key"]
    return keys


async def request(client: httpx.AsyncClient, method: str, path: str, key: str | None) -> httpx.Response:
    headers = auth(key) if key else {}
    return await client.request(method, fill(path), json={} if method in WRITES else None, headers=headers)


async def test_every_protected_route_by_every_scope(
    app: Any, http: httpx.AsyncClient, scope_keys: dict[str, str]
) -> None:
    ops = protected_operations(app)
    assert len(ops) >= 45, "the OpenAPI document lost its secured operations"
    # Every admin route needs the admin scope; every other route one scope (or, /v1/me and the
    # caller's own grants, only a key at all).
    for method, path, scopes in ops:
        assert len(scopes) <= 1, (method, path, scopes)
        if path.startswith("/v1/admin/"):
            assert scopes == {"admin"}, (method, path, scopes)
    failures: list[tuple[Any, ...]] = []
    probes = 0
    for method, path, scopes in ops:
        r = await request(http, method, path, None)
        probes += 1
        if r.status_code != 401 or not r.headers.get("www-authenticate", "").startswith("Bearer"):
            failures.append((method, path, None, r.status_code))
        elif r.json()["error"] != "AuthenticationFailed":
            failures.append((method, path, None, r.json()))
        for scope, key in scope_keys.items():
            r = await request(http, method, path, key)
            probes += 1
            allowed = not scopes or scope in scopes
            if allowed and r.status_code in (401, 403):
                failures.append((method, path, scope, r.status_code, r.text[:200]))
            if not allowed and (r.status_code != 403 or r.json()["error"] != "PermissionDenied"):
                failures.append((method, path, scope, r.status_code, r.text[:200]))
    print(f"auth matrix: {len(ops)} operations x (no key + {len(scope_keys)} scopes) = {probes} probes")
    assert failures == []


async def test_mcp_needs_a_key_of_any_scope(live_url: str, scope_keys: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=live_url, timeout=60) as client:
        r = await client.post("/mcp", json=MCP_INIT, headers=MCP_HEADERS)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["error"] == "AuthenticationFailed"
        for key in scope_keys.values():  # each tool checks its own scope (tests/mcp)
            r = await client.post("/mcp", json=MCP_INIT, headers={**MCP_HEADERS, **auth(key)})
            assert r.status_code == 200, r.text


@pytest.fixture
def from_client(app: Any) -> Iterator[Any]:
    """A client factory whose requests come from a given address (the limits count per client)."""

    def make(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://mosaic.test", timeout=60)

    yield make


async def test_revoked_key_is_refused_on_its_next_request(
    http: httpx.AsyncClient, admin_headers: dict[str, str], scope_keys: dict[str, str]
) -> None:
    r = await http.post("/v1/admin/keys", json={"user": "admin", "scopes": list(SCOPES)}, headers=admin_headers)
    key, prefix = r.json()["api_key"], r.json()["key"]["prefix"]
    assert (await http.get("/v1/admin/users", headers=auth(key))).status_code == 200
    assert (await http.delete(f"/v1/admin/keys/{prefix}", headers=admin_headers)).status_code == 200
    for method, path in [("GET", "/v1/admin/users"), ("GET", "/v1/me"), ("POST", "/v1/search")]:
        r = await request(http, method, path, key)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json() == {"error": "AuthenticationFailed", "detail": "the API key has been revoked"}


async def test_keys_are_stored_only_as_hashes(state: AppState, scope_keys: dict[str, str]) -> None:
    """The lookup is by the indexed prefix, then ``hmac.compare_digest`` of SHA-256 digests
    (``OwnerService.authenticate``): the secret itself is nowhere in the table."""
    async with state.sessionmaker() as session:
        rows = (await session.scalars(select(ApiKey))).all()
    stored = " ".join(f"{r.prefix} {r.key_hash} {r.name}" for r in rows)
    for key in scope_keys.values():
        assert key.split("_", 2)[2] not in stored


async def test_guessing_a_key_prefix_is_rate_limited(
    state: AppState, scope_keys: dict[str, str], from_client: Any
) -> None:
    limits = state.settings.limits
    real = scope_keys["read"]
    prefix = real[:11]  # mm_ and 8 hex digits
    guess = f"{prefix}_{'g' * 32}"
    attacker: httpx.AsyncClient
    async with from_client("203.0.113.7") as attacker, from_client("198.51.100.9") as owner:
        for _ in range(limits.auth_failure_burst):
            r = await attacker.get("/v1/me", headers=auth(guess))
            assert r.status_code == 401, r.text
        r = await attacker.get("/v1/me", headers=auth(guess))
        assert r.status_code == 429, r.text
        assert r.json()["error"] == "RateLimited" and r.json()["retry_after"] >= 1
        assert int(r.headers["retry-after"]) == r.json()["retry_after"]
        assert "g" * 32 not in r.text  # the guessed secret is never echoed
        # The prefix is closed to this client, even for the right key ...
        assert (await attacker.get("/v1/me", headers=auth(real))).status_code == 429
        # ... but not other prefixes from it, nor the key's owner elsewhere: no lock-out by guessing.
        assert (await attacker.get("/v1/me", headers=auth(scope_keys["write"]))).status_code not in (401, 429)
        assert (await owner.get("/v1/me", headers=auth(real))).status_code == 200
        # A request without any key is not a guess and is never counted.
        assert (await attacker.get("/v1/me")).status_code == 401


@pytest.fixture
async def tight_rate(state: AppState) -> AsyncIterator[None]:
    """The per-key request rate set low (as with MOSAIC_LIMITS__REQUESTS_PER_MINUTE=60)."""
    limits = state.settings.limits
    before = (limits.requests_per_minute, limits.request_burst)
    limits.requests_per_minute, limits.request_burst = 60, 3
    yield
    limits.requests_per_minute, limits.request_burst = before


async def test_per_key_request_rate(
    http: httpx.AsyncClient, admin_headers: dict[str, str], tight_rate: None, state: AppState
) -> None:
    keys = []
    for _ in range(2):
        r = await http.post("/v1/admin/keys", json={"user": "admin", "scopes": ["read"]}, headers=admin_headers)
        keys.append(r.json()["api_key"])
    for _ in range(3):
        assert (await http.get("/v1/me", headers=auth(keys[0]))).status_code == 200
    r = await http.get("/v1/me", headers=auth(keys[0]))
    assert r.status_code == 429 and r.json()["error"] == "RateLimited"
    assert r.headers["retry-after"] == "1" and r.json()["retry_after"] == 1
    assert (await http.get("/v1/me", headers=auth(keys[1]))).status_code == 200  # each key its own budget
    state.settings.limits.requests_per_minute = 0  # off
    for _ in range(5):
        assert (await http.get("/v1/me", headers=auth(keys[0]))).status_code == 200
