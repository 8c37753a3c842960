"""Bad input answers 4xx with {error, detail} and changes nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import UserFactory


async def _count(http: httpx.AsyncClient, h: dict[str, str]) -> int:
    return len((await http.get("/v1/insights", params={"limit": 500}, headers=h)).json()["items"])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"content": ""}, 422),
        ({"content": "   "}, 422),
        ({"content": "x" * (32 * 1024 + 1)}, 413),
        ({"content": "ok", "importance": 2}, 422),
        ({"content": "ok", "tags": "not-a-list"}, 422),
        ({"content": "ok", "unknown_field": 1}, 422),
        ({"content": "ok", "owner": "team:not-mine"}, 404),
        ({"content": "ok", "supersedes": "not-a-uuid"}, 422),
        ({}, 422),
    ],
)
async def test_bad_insight_bodies(http: httpx.AsyncClient, make_user: UserFactory, body: dict, status: int) -> None:
    _, h = await make_user()
    await http.post("/v1/insights", json={"content": "baseline"}, headers=h)
    r = await http.post("/v1/insights", json=body, headers=h)
    assert r.status_code == status, r.text
    err = r.json()
    assert set(err) >= {"error", "detail"} and err["detail"]
    assert await _count(http, h) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"query": "x", "k": 0},
        {"query": "x", "k": 101},
        {"query": "x", "mode": "psychic"},
        {"query": "x", "kinds": ["dreams"]},
        {"query": "x", "filters": {"tags": "solo"}},
        {"query": "x", "filters": {"created_after": "yesterday"}},
        {"query": "x", "filters": {"nonsense": 1}},
        {"query": ""},
        {"k": 5},
    ],
)
async def test_bad_search_bodies(http: httpx.AsyncClient, make_user: UserFactory, body: dict) -> None:
    _, h = await make_user()
    r = await http.post("/v1/search", json=body, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "InvalidInput"


async def test_transport_level_errors(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    r = await http.post("/v1/insights", content=b'{"content": "half', headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "MalformedJSON"
    r = await http.post("/v1/insights", content=b"content=hi", headers={**h, "Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"] == "UnsupportedMediaType"
    r = await http.get("/v1/insights/not-a-uuid", headers=h)
    assert r.status_code == 422 and r.json()["error"] == "InvalidInput"
    r = await http.get("/v1/insights", params={"cursor": "garbage!!"}, headers=h)
    assert r.status_code == 422
    r = await http.get("/v1/nowhere", headers=h)
    assert r.status_code == 404 and r.json()["error"] == "NotFound"
    r = await http.patch("/v1/insights/00000000-0000-0000-0000-000000000000", json={}, headers=h)
    assert r.status_code == 422
    assert await _count(http, h) == 0
