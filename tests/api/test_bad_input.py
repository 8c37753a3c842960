"""Bad input answers 4xx with {error, detail} and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
async def test_bad_insight_bodies(
    http: httpx.AsyncClient, make_user: UserFactory, body: dict[str, Any], status: int
) -> None:
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
async def test_bad_search_bodies(http: httpx.AsyncClient, make_user: UserFactory, body: dict[str, Any]) -> None:
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


NUL = "nul \u0000 inside"


async def _insight_state(http: httpx.AsyncClient, h: dict[str, str]) -> list[dict[str, Any]]:
    r = await http.get("/v1/insights", params={"limit": 500}, headers=h)
    return [{k: v for k, v in i.items() if k not in ("access_count", "last_accessed_at")} for i in r.json()["items"]]


async def test_nul_characters_are_refused_on_every_route(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    """PostgreSQL text and jsonb cannot hold NUL: each route answers 422 and stores nothing."""
    _, h = await make_user()
    r = await http.post("/v1/insights", json={"content": "a fine fact", "metadata": {"k": "v"}}, headers=h)
    iid = r.json()["id"]
    r = await http.post("/v1/skills", json={"name": "deploy", "description": "how to deploy"}, headers=h)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    before = await _insight_state(http, h)
    skills_before = (await http.get("/v1/skills", headers=h)).json()["items"]
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/insights", {"json": {"content": NUL}}),
        ("POST", "/v1/insights", {"json": {"content": "t", "tags": [NUL]}}),
        ("POST", "/v1/insights", {"json": {"content": "c", "category": NUL}}),
        ("POST", "/v1/insights", {"json": {"content": "m", "metadata": {"a": NUL}}}),
        ("POST", "/v1/insights", {"json": {"content": "k", "metadata": {NUL: 1}}}),
        ("POST", "/v1/insights", {"json": {"content": "s", "source": {"type": "api", "ref": NUL}}}),
        ("POST", "/v1/insights/batch", {"json": {"items": [{"content": "good one"}, {"content": NUL}]}}),
        ("PATCH", f"/v1/insights/{iid}", {"json": {"content": NUL}}),
        ("PATCH", f"/v1/insights/{iid}", {"json": {"metadata": {"x": NUL}}}),
        ("PATCH", f"/v1/insights/{iid}", {"json": {"tags": [NUL]}}),
        ("GET", "/v1/insights", {"params": {"category": NUL}}),
        (
            "POST",
            "/v1/logs",
            {"json": {"events": [{"session_id": "s", "content": "ok"}, {"session_id": "s", "content": NUL}]}},
        ),
        ("POST", "/v1/logs", {"json": {"events": [{"session_id": NUL, "content": "x"}]}}),
        ("POST", "/v1/logs", {"json": {"events": [{"session_id": "s", "agent_id": NUL, "content": "x"}]}}),
        ("POST", "/v1/logs", {"json": {"events": [{"session_id": "s", "content": "x", "metadata": {"k": NUL}}]}}),
        ("GET", "/v1/logs", {"params": {"session_id": NUL}}),
        ("POST", "/v1/skills", {"json": {"name": "n1", "description": "d", "metadata": {"k": NUL}}}),
        ("POST", "/v1/skills", {"json": {"name": "n2", "description": "d", "tags": [NUL]}}),
        ("PATCH", f"/v1/skills/{sid}", {"json": {"tags": [NUL]}}),
        ("POST", "/v1/search", {"json": {"query": NUL}}),
        ("POST", "/v1/search", {"json": {"query": NUL, "mode": "keyword"}}),
        ("POST", "/v1/search", {"json": {"query": "x", "filters": {"tags": [NUL]}}}),
        ("POST", "/v1/search", {"json": {"query": "x", "filters": {"metadata": {"a": NUL}}}}),
        ("POST", "/v1/search", {"json": {"query": "x", "filters": {"category": NUL}}}),
    ]
    for method, url, kwargs in requests:
        r = await http.request(method, url, headers=h, **kwargs)
        assert r.status_code == 422, (method, url, kwargs, r.status_code, r.text)
        assert r.json()["error"] == "InvalidInput"
    assert await _insight_state(http, h) == before
    assert (await http.get("/v1/skills", headers=h)).json()["items"] == skills_before
    assert (await http.get("/v1/logs", headers=h)).json()["items"] == []


async def test_non_finite_metadata_and_huge_ttl_are_refused(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    json_headers = {**h, "Content-Type": "application/json"}
    r = await http.post(
        "/v1/insights", content=b'{"content": "nan meta", "metadata": {"a": NaN}}', headers=json_headers
    )
    assert r.status_code == 422, r.text
    r = await http.post("/v1/insights", json={"content": "forever", "ttl_seconds": 1e300}, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "InvalidInput"
    assert await _count(http, h) == 0


async def test_datetimes_are_utc_and_representable(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    """Naive datetimes mean UTC everywhere (not the database session's zone); instants outside
    years 1..9999 in UTC are refused (stored, they would break every later read of the kind)."""
    _, h = await make_user()
    r = await http.post(
        "/v1/insights", json={"content": "naive expiry", "expires_at": "2030-01-01T00:00:00"}, headers=h
    )
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"] in ("2030-01-01T00:00:00Z", "2030-01-01T00:00:00+00:00")
    iid = r.json()["id"]
    r = await http.patch(f"/v1/insights/{iid}", json={"valid_to": "2031-01-01T00:00:00"}, headers=h)
    assert r.status_code == 200 and r.json()["valid_to"] in ("2031-01-01T00:00:00Z", "2031-01-01T00:00:00+00:00")
    filters = {"created_after": "2020-01-01T00:00:00", "created_before": "2099-01-01T00:00:00Z"}
    r = await http.post("/v1/search", json={"query": "expiry", "filters": filters, "include_history": True}, headers=h)
    assert r.status_code == 200, r.text
    assert [hit["id"] for hit in r.json()["hits"]] == [iid]

    too_early, too_late = "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"
    for when in (too_early, too_late):
        r = await http.post("/v1/insights", json={"content": f"expiry {when}", "expires_at": when}, headers=h)
        assert r.status_code == 422, r.text
        r = await http.patch(f"/v1/insights/{iid}", json={"expires_at": when}, headers=h)
        assert r.status_code == 422, r.text
        event = {"session_id": "s", "content": "edge of time", "occurred_at": when}
        r = await http.post("/v1/logs", json={"events": [event]}, headers=h)
        assert r.status_code == 422, r.text
        r = await http.post("/v1/search", json={"query": "x", "filters": {"created_after": when}}, headers=h)
        assert r.status_code == 422, r.text
    assert (await http.get("/v1/logs", headers=h)).status_code == 200
    assert (await http.get(f"/v1/insights/{iid}", headers=h)).status_code == 200
    assert await _count(http, h) == 1


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def test_deeply_nested_json_is_refused_before_it_is_stored(
    http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """JSON nested past what a response can serialize was stored, then every list and search
    of its owner (a whole team, for team rows) answered 500."""
    _, h = await make_user()
    deep, fine = _nested(300), _nested(20)
    writes: list[tuple[str, str, Callable[[dict[str, Any]], dict[str, Any]]]] = [
        ("POST", "/v1/insights", lambda m: {"content": "nested insight", "metadata": m}),
        ("POST", "/v1/logs", lambda m: {"events": [{"session_id": "s", "content": "nested log", "metadata": m}]}),
        ("POST", "/v1/skills", lambda m: {"name": f"nested-{len(str(m))}", "description": "d", "metadata": m}),
        ("PUT", "/v1/preferences/nested", lambda m: {"value": m}),
    ]
    for method, url, body in writes:
        r = await http.request(method, url, json=body(deep), headers=h)
        assert r.status_code == 422, (url, r.status_code, r.text[:300])
        assert r.json()["error"] == "InvalidInput"
        r = await http.request(method, url, json=body(fine), headers=h)
        assert r.status_code in (200, 201), (url, r.text[:300])
    for url in ("/v1/insights", "/v1/logs", "/v1/skills", "/v1/preferences"):
        r = await http.get(url, headers=h)
        assert r.status_code == 200 and len(r.json()["items"]) == 1, (url, r.text[:300])
    r = await http.post("/v1/search", json={"query": "nested", "mode": "keyword"}, headers=h)
    assert r.status_code == 200, r.text[:300]
