"""Agent logs over REST, search, the background embedder and the client: real database, real model."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mosaic_memory.client import AsyncMosaicClient, MosaicClientError
from mosaic_memory.config import LogSettings, Settings
from mosaic_memory.container import AppState
from mosaic_memory.logs.repository import LogRepository
from mosaic_memory.logs.schemas import LogBatchIn
from mosaic_memory.logs.service import LogService
from mosaic_memory.logs.worker import LogEmbeddingWorker
from mosaic_memory.owners.schemas import Principal
from tests.conftest import UserFactory

TeamFactory = Callable[..., Awaitable[str]]
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

FILLER = [
    "opened file src/app.py and read 120 lines",
    "ran the unit tests: 42 passed",
    "asked the user which branch to use",
    "formatted the code with ruff",
    "committed the change with message 'fix typo'",
    "listed the directory tree of the repository",
]


def ev(content: str, session_id: str = "s1", **fields: Any) -> dict[str, Any]:
    return {"session_id": session_id, "content": content, **fields}


async def post_logs(http: httpx.AsyncClient, h: dict[str, str], events: list[dict[str, Any]], **extra: Any) -> Any:
    r = await http.post("/v1/logs", json={"events": events, **extra}, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


async def all_logs(http: httpx.AsyncClient, h: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 1000, **params, **({"cursor": cursor} if cursor else {})}
        r = await http.get("/v1/logs", params=query, headers=h)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return items


async def principal_of(state: AppState, h: dict[str, str]) -> Principal:
    async with state.sessionmaker() as session:
        return await state.owners.authenticate(session, h["Authorization"].removeprefix("Bearer "))


async def drain(state: AppState, h: dict[str, str]) -> int:
    """Embed the caller's pending events now, as the background embedder would."""
    principal = await principal_of(state, h)
    total = 0
    async with state.sessionmaker() as session:
        while n := await state.logs.embed_pending(session, 500, owner_ids=principal.owner_ids):
            total += n
        await session.commit()
    return total


async def search(http: httpx.AsyncClient, h: dict[str, str], query: str, **body: Any) -> list[dict[str, Any]]:
    r = await http.post("/v1/search", json={"query": query, "kinds": ["logs"], **body}, headers=h)
    assert r.status_code == 200, r.text
    hits: list[dict[str, Any]] = r.json()["hits"]
    return hits


def deferred_batch(settings: Settings, special: str, session_id: str = "s1") -> list[dict[str, Any]]:
    """A batch too large to embed inline under the configured budget, with ``special`` in it."""
    n = settings.logs.inline_max_events + 5
    return [ev(special, session_id)] + [ev(f"{FILLER[i % len(FILLER)]} (step {i})", session_id) for i in range(n)]


# writing and reading --------------------------------------------------------------------------
async def test_order_and_pagination_across_pages(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    # Out of order in the request, with ties on occurred_at: order is (occurred_at, insertion).
    offsets = [5, 1, 3, 1, 0, 3, 3, 2, 4, 1, 0]
    events = [ev(f"event {i}", occurred_at=(T0 + timedelta(minutes=m)).isoformat()) for i, m in enumerate(offsets)]
    ids = (await post_logs(http, h, events))["ids"]
    expected = [ids[i] for i in sorted(range(len(offsets)), key=lambda i: (offsets[i], i))]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/v1/logs", params=params, headers=h)).json()
        seen += [e["id"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected
    assert pages == 4

    # A later call appends after what is there, even with the same timestamps.
    more = (await post_logs(http, h, [ev("late", occurred_at=(T0 + timedelta(minutes=5)).isoformat())]))["ids"]
    assert [e["id"] for e in await all_logs(http, h)] == [*expected, *more]


async def test_filters_get_and_defaults(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    name, h = await make_user()
    before = datetime.now(UTC)
    out = await post_logs(
        http,
        h,
        [
            ev("planning the refactor", "s1", agent_id="planner", metadata={"step": 1}),
            ev("tests failed", "s1", agent_id="coder", level="error"),
            ev("other session", "s2", agent_id="coder", level="debug"),
        ],
    )
    assert out["count"] == 3 and len(out["ids"]) == 3
    got = (await http.get(f"/v1/logs/{out['ids'][0]}", headers=h)).json()
    assert got["owner"] == f"user:{name}"
    assert got["level"] == "info"  # the default
    assert got["metadata"] == {"step": 1}
    assert got["tier"] == "hot"
    assert datetime.fromisoformat(got["occurred_at"]) >= before - timedelta(seconds=5)
    assert [e["content"] for e in await all_logs(http, h, session_id="s1")] == ["planning the refactor", "tests failed"]
    assert [e["content"] for e in await all_logs(http, h, agent_id="coder")] == ["tests failed", "other session"]
    assert [e["content"] for e in await all_logs(http, h, level="error")] == ["tests failed"]
    assert await all_logs(http, h, session_id="nope") == []
    r = await http.get(f"/v1/logs/{uuid.uuid4()}", headers=h)
    assert r.status_code == 404 and r.json()["error"] == "LogNotFound"


async def test_agent_bound_key_fills_agent_id(
    http: httpx.AsyncClient, make_user: UserFactory, admin_headers: dict[str, str]
) -> None:
    name, h = await make_user()
    r = await http.post("/v1/admin/keys", json={"user": name, "agent_id": "scout"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    agent = {"Authorization": f"Bearer {r.json()['api_key']}"}
    out = await post_logs(http, agent, [ev("looked around"), ev("said hi", agent_id="scout")])
    items = await all_logs(http, h)
    assert [e["agent_id"] for e in items] == ["scout", "scout"]
    # A bound key cannot write as another agent; nothing of that call is stored.
    r = await http.post("/v1/logs", json={"events": [ev("ok"), ev("impostor", agent_id="other")]}, headers=agent)
    assert r.status_code == 403, r.text
    assert [e["id"] for e in await all_logs(http, h)] == out["ids"]
    # An unbound key leaves agent_id empty unless given.
    await post_logs(http, h, [ev("by hand")])
    assert (await all_logs(http, h))[-1]["agent_id"] is None


async def test_5000_events_accepted_5001_refused(
    http: httpx.AsyncClient, make_user: UserFactory, settings: Settings
) -> None:
    assert settings.logs.max_events_per_call == 5000
    _, h = await make_user()
    too_many = [ev(f"tool call {i} returned {i * 7 % 13} rows") for i in range(5001)]
    r = await http.post("/v1/logs", json={"events": too_many}, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "InvalidInput" and "5000" in r.json()["detail"]
    assert await all_logs(http, h) == []

    out = await post_logs(http, h, too_many[:5000])
    assert out["count"] == 5000 and len(set(out["ids"])) == 5000
    # Far over the inline budget: stored at once, embedded later.
    assert out["pending"] == 5000
    stored = await all_logs(http, h)
    assert [e["id"] for e in stored] == out["ids"]
    assert not any(e["embedded"] for e in stored)


# search -----------------------------------------------------------------------------------------
async def test_keyword_at_once_semantic_after_background_embedding(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState, settings: Settings
) -> None:
    _, h = await make_user()
    special = "deploy aborted: the TLS certificate for api.example.com expired yesterday"
    out = await post_logs(http, h, deferred_batch(settings, special))
    assert out["pending"] == out["count"]
    special_id = out["ids"][0]

    hits = await search(http, h, "certificate expired", mode="keyword")
    assert hits and hits[0]["id"] == special_id and hits[0]["kind"] == "logs"
    hybrid = await search(http, h, "certificate expired")
    assert hybrid and hybrid[0]["id"] == special_id
    # No vector yet: semantic search skips the rows rather than failing.
    assert await search(http, h, "SSL cert out of date", mode="semantic") == []

    assert await drain(state, h) == out["count"]
    assert await drain(state, h) == 0
    assert (await http.get(f"/v1/logs/{special_id}", headers=h)).json()["embedded"] is True
    hits = await search(http, h, "SSL cert out of date", mode="semantic")
    assert hits and hits[0]["id"] == special_id


async def test_small_batch_is_embedded_inline_within_budget(
    make_user: UserFactory, state: AppState, settings: Settings
) -> None:
    _, h = await make_user()
    principal = await principal_of(state, h)
    generous = settings.model_copy(update={"logs": LogSettings(embed_inline_budget_ms=60_000)})
    zero = settings.model_copy(update={"logs": LogSettings(embed_inline_budget_ms=0)})
    batch = LogBatchIn.model_validate({"events": [ev("the build cache was corrupted"), ev("cleared the cache")]})
    async with state.sessionmaker() as session:
        inline = await LogService(embedder=state.embedder, settings=generous).append(session, principal, batch)
        deferred = await LogService(embedder=state.embedder, settings=zero).append(session, principal, batch)
        await session.commit()
    assert inline.pending == 0 and deferred.pending == 2
    async with state.sessionmaker() as session:
        rows = [await LogRepository(session).get(principal.owner_ids, i) for i in [*inline.ids, *deferred.ids]]
    assert [r is not None and r[1] for r in rows] == [True, True, False, False]
    assert [r[0].embedding_model if r else "missing" for r in rows] == [state.embedder.model_id] * 2 + [None] * 2


async def test_inline_limit_follows_measured_throughput(state: AppState, settings: Settings) -> None:
    service = LogService(embedder=state.embedder, settings=settings)
    assert service.inline_max_events == settings.logs.inline_max_events
    service.record_throughput(5, 100.0)  # too few texts to say anything about the rate
    assert service.texts_per_s == settings.logs.embed_texts_per_s
    service.record_throughput(100, 10.0)  # a slow host: 10 texts/s
    assert service.texts_per_s == 10.0
    assert service.inline_max_events == int(settings.logs.embed_inline_budget_ms / 1000 * 10)
    for _ in range(30):  # a fast host never raises it above the configured figure
        service.record_throughput(10_000, 1.0)
    assert service.texts_per_s == settings.logs.embed_texts_per_s


async def test_search_filters_on_logs(http: httpx.AsyncClient, make_user: UserFactory, state: AppState) -> None:
    _, h = await make_user()
    events = [
        ev(
            "database migration failed on table users",
            "s1",
            agent_id="coder",
            metadata={"env": "prod"},
            occurred_at=(T0 - timedelta(days=2)).isoformat(),
        ),
        ev(
            "database migration failed on table orders",
            "s2",
            agent_id="coder",
            metadata={"env": "dev"},
            occurred_at=T0.isoformat(),
        ),
        ev(
            "database migration failed on table items",
            "s2",
            agent_id="reviewer",
            metadata={"env": "prod"},
            occurred_at=(T0 + timedelta(days=2)).isoformat(),
        ),
    ]
    ids = (await post_logs(http, h, events))["ids"]
    await drain(state, h)
    for mode in ("keyword", "semantic", "hybrid"):
        base = {"mode": mode, "k": 10}
        assert {x["id"] for x in await search(http, h, "database migration failed", **base)} == set(ids), mode
        got = await search(http, h, "database migration failed", **base, filters={"session_id": "s2"})
        assert {x["id"] for x in got} == set(ids[1:]), mode
        got = await search(http, h, "database migration failed", **base, filters={"agent_id": "coder"})
        assert {x["id"] for x in got} == set(ids[:2]), mode
        got = await search(http, h, "database migration failed", **base, filters={"metadata": {"env": "prod"}})
        assert {x["id"] for x in got} == {ids[0], ids[2]}, mode
        window = {
            "created_after": (T0 - timedelta(hours=1)).isoformat(),
            "created_before": (T0 + timedelta(hours=1)).isoformat(),
        }
        got = await search(http, h, "database migration failed", **base, filters=window)
        assert [x["id"] for x in got] == [ids[1]], mode
        # Occurred_at is the time a log hit carries.
        assert datetime.fromisoformat(got[0]["created_at"]) == T0
    # Filters that logs do not have exclude them rather than matching everything.
    assert await search(http, h, "database migration failed", filters={"tags": ["x"]}) == []


async def test_cold_logs_stay_searchable_by_keyword(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState
) -> None:
    _, h = await make_user()
    ids = (await post_logs(http, h, [ev("the kraken service ran out of file descriptors"), ev("restarted kraken")]))[
        "ids"
    ]
    await drain(state, h)
    principal = await principal_of(state, h)
    async with state.sessionmaker() as session:
        moved = await LogRepository(session).set_tier(
            principal.owner_ids, [ids[0]], "cold", datetime.now(UTC), drop_vectors=True
        )
        await session.commit()
    assert moved == 1
    got = (await http.get(f"/v1/logs/{ids[0]}", headers=h)).json()
    assert got["tier"] == "cold" and got["embedded"] is False
    hits = await search(http, h, "kraken file descriptors", mode="keyword")
    assert hits and hits[0]["id"] == ids[0]
    assert ids[0] in [x["id"] for x in await search(http, h, "kraken file descriptors", mode="hybrid")]
    assert ids[0] not in [x["id"] for x in await search(http, h, "kraken file descriptors", mode="semantic")]
    # The embedder does not put back vectors the tiering job dropped.
    assert await drain(state, h) == 0


# the background embedder ------------------------------------------------------------------------
async def test_replicas_claim_disjoint_rows(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState, settings: Settings
) -> None:
    _, h = await make_user()
    ids = (await post_logs(http, h, deferred_batch(settings, "first")))["ids"]
    owner_ids = (await principal_of(state, h)).owner_ids
    async with state.sessionmaker() as one, state.sessionmaker() as two, state.sessionmaker() as three:
        a = await LogRepository(one).claim_unembedded(10, owner_ids)
        b = await LogRepository(two).claim_unembedded(10, owner_ids)
        c = await LogRepository(three).claim_unembedded(len(ids), owner_ids)
        assert len(a) == 10 and len(b) == 10
        claimed = [str(row[1]) for row in [*a, *b, *c]]
        assert len(claimed) == len(set(claimed)) == len(ids)
        assert claimed[:10] == ids[:10]  # oldest first
        await one.rollback()  # a replica that dies releases its claim
        again = await LogRepository(one).claim_unembedded(len(ids), owner_ids)
        assert [str(row[1]) for row in again] == ids[:10]
        for session in (one, two, three):
            await session.rollback()


async def test_worker_embeds_pending_rows(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState, settings: Settings
) -> None:
    _, h = await make_user()
    out = await post_logs(http, h, deferred_batch(settings, "the nightly backup job wrote 0 bytes"))
    owner_ids = (await principal_of(state, h)).owner_ids
    service = LogService(embedder=state.embedder, settings=settings)
    # Scoped to this test's owner so it never embeds other tests' backlog.
    worker = LogEmbeddingWorker(service, state.sessionmaker, owner_ids=owner_ids, batch_size=10)
    assert await worker.run_once() == 10
    assert await worker.drain() == out["count"] - 10
    assert all(e["embedded"] for e in await all_logs(http, h))

    # Started as a task, it drains what a write leaves and stops cleanly.
    more = await post_logs(http, h, deferred_batch(settings, "backup retried"))
    worker.start()
    assert worker.running
    service.notify_pending()
    async with asyncio.timeout(300):
        while not all(e["embedded"] for e in await all_logs(http, h)):
            await asyncio.sleep(0.2)
    await worker.stop()
    assert not worker.running
    assert worker.embedded_total == out["count"] - 10 + more["count"]


# isolation --------------------------------------------------------------------------------------
async def test_isolation_between_users_and_teams(
    http: httpx.AsyncClient, make_user: UserFactory, make_team: TeamFactory, state: AppState
) -> None:
    alice, a = await make_user("alice")
    bob, b = await make_user("bob")
    _, c = await make_user("carol")
    team = await make_team(alice, bob)
    private = (await post_logs(http, a, [ev("alice's private note about the zebra incident", "sa")]))["ids"][0]
    shared = (await post_logs(http, a, [ev("team note: the zebra incident is resolved", "st")], owner=f"team:{team}"))[
        "ids"
    ][0]
    await drain(state, a)

    # Bob (team member) sees the team's event, never Alice's own.
    assert (await http.get(f"/v1/logs/{private}", headers=b)).status_code == 404
    got = await http.get(f"/v1/logs/{shared}", headers=b)
    assert got.status_code == 200 and got.json()["owner"] == f"team:{team}"
    assert [e["id"] for e in await all_logs(http, b)] == [shared]
    assert [e["id"] for e in await all_logs(http, b, owner=f"team:{team}")] == [shared]
    for mode in ("keyword", "semantic", "hybrid"):
        assert [x["id"] for x in await search(http, b, "zebra incident", mode=mode)] == [shared], mode
    # Carol (outsider) sees neither, by id, list, search or session filter.
    for log_id in (private, shared):
        assert (await http.get(f"/v1/logs/{log_id}", headers=c)).status_code == 404
    assert await all_logs(http, c) == []
    assert await all_logs(http, c, session_id="sa") == []
    for mode in ("keyword", "semantic", "hybrid"):
        assert await search(http, c, "zebra incident", mode=mode) == [], mode
    r = await http.get("/v1/logs", params={"owner": f"team:{team}"}, headers=c)
    assert r.status_code == 404
    r = await http.post("/v1/logs", json={"events": [ev("sneaky")], "owner": f"team:{team}"}, headers=c)
    assert r.status_code == 404
    r = await http.post("/v1/logs", json={"events": [ev("sneaky")], "owner": f"user:{alice}"}, headers=b)
    assert r.status_code == 404
    # Alice sees both; the failed writes stored nothing.
    assert {e["id"] for e in await all_logs(http, a)} == {private, shared}
    # Bob writes to the team too; Alice reads it.
    bobs = (await post_logs(http, b, [ev("bob was here", "st")], owner=f"team:{team}"))["ids"][0]
    assert (await http.get(f"/v1/logs/{bobs}", headers=a)).status_code == 200
    assert (await http.get("/v1/logs", headers={"Authorization": "Bearer nope"})).status_code == 401


# bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"events": []}, 422),
        ({"events": "not-a-list"}, 422),
        ({"events": [{"content": "no session"}]}, 422),
        ({"events": [ev(42)]}, 422),  # type: ignore[arg-type]
        ({"events": [ev("")]}, 422),
        ({"events": [ev("   ")]}, 422),
        ({"events": [ev("ok"), ev("x" * (32 * 1024 + 1))]}, 413),
        ({"events": [ev("ok", level="fatal")]}, 422),
        ({"events": [ev("ok", level=3)]}, 422),
        ({"events": [ev("ok", occurred_at="yesterday")]}, 422),
        ({"events": [ev("ok", occurred_at="2026-13-40T99:00:00Z")]}, 422),
        ({"events": [ev("ok", metadata="flat")]}, 422),
        ({"events": [ev("ok", unknown_field=1)]}, 422),
        ({"events": [ev("ok")], "unknown_field": 1}, 422),
        ({"events": [ev("ok", session_id="")]}, 422),
        ({"events": [ev("ok", session_id="s" * 257)]}, 422),
        ({"events": [ev("ok", agent_id=["a"])]}, 422),
        ({"events": [ev("ok", metadata={"blob": "x" * (64 * 1024)})]}, 422),
        ({"events": [ev("ok")], "owner": "team:not-mine"}, 404),
        ({"events": [ev("ok")], "owner": "nonsense"}, 422),
    ],
)
async def test_bad_log_bodies_store_nothing(
    http: httpx.AsyncClient, make_user: UserFactory, body: dict[str, Any], status: int
) -> None:
    _, h = await make_user()
    baseline = await post_logs(http, h, [ev("baseline")])
    r = await http.post("/v1/logs", json=body, headers=h)
    assert r.status_code == status, r.text
    err = r.json()
    assert set(err) >= {"error", "detail"} and err["detail"]
    assert [e["id"] for e in await all_logs(http, h)] == baseline["ids"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "many"},
        {"level": "fatal"},
        {"cursor": "garbage"},
        {"cursor": "WyJub3QgYSBkYXRlIiwgMV0"},
        {"owner": "team:not-mine"},
    ],
)
async def test_bad_list_queries(http: httpx.AsyncClient, make_user: UserFactory, params: dict[str, Any]) -> None:
    _, h = await make_user()
    r = await http.get("/v1/logs", params=params, headers=h)
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()) >= {"error", "detail"}


async def test_bad_ids_and_scopes(
    http: httpx.AsyncClient, make_user: UserFactory, admin_headers: dict[str, str]
) -> None:
    name, h = await make_user()
    assert (await http.get("/v1/logs/not-a-uuid", headers=h)).status_code == 422
    r = await http.post("/v1/admin/keys", json={"user": name, "scopes": ["read"]}, headers=admin_headers)
    reader = {"Authorization": f"Bearer {r.json()['api_key']}"}
    assert (await http.post("/v1/logs", json={"events": [ev("x")]}, headers=reader)).status_code == 403
    assert (await http.get("/v1/logs", headers=reader)).status_code == 200
    r = await http.post("/v1/logs", content=b"{not json", headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert await all_logs(http, h) == []


# client and OpenAPI -----------------------------------------------------------------------------
async def test_client_against_live_app(app: Any, make_user: UserFactory, state: AppState) -> None:
    name, h = await make_user()
    key = h["Authorization"].removeprefix("Bearer ")
    async with AsyncMosaicClient("http://mosaic.test", key, transport=httpx.ASGITransport(app=app)) as mm:
        out = await mm.log_events(
            [
                {"session_id": "cli", "content": "the linter flagged an unused import", "agent_id": "coder"},
                {"session_id": "cli", "content": "removed the unused import", "level": "debug"},
            ]
        )
        assert out.count == 2
        one = await mm.log_event("cli", "all checks green", agent_id="coder", level="info")
        page = await mm.list_logs(session_id="cli", limit=2)
        assert [e.id for e in page.items] == out.ids and page.next_cursor
        rest = await mm.list_logs(session_id="cli", limit=2, cursor=page.next_cursor)
        assert [e.id for e in rest.items] == [one] and rest.next_cursor is None
        got = await mm.get_log(out.ids[0])
        assert got.owner == f"user:{name}" and got.agent_id == "coder"
        hits = await mm.search_logs("unused import", session_id="cli", mode="keyword")
        assert {hit.id for hit in hits.hits} == set(out.ids)
        assert (await mm.search_logs("unused import", agent_id="nobody", mode="keyword")).hits == []
        with pytest.raises(MosaicClientError) as err:
            await mm.get_log(uuid.uuid4())
        assert err.value.status == 404 and err.value.error == "LogNotFound"
        with pytest.raises(MosaicClientError) as err:
            await mm.log_events([{"session_id": "cli", "content": "x", "level": "loud"}])
        assert err.value.status == 422


async def test_openapi_documents_log_routes_with_examples(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/v1/openapi.json")).json()
    paths = spec["paths"]
    assert {"post", "get"} <= paths["/v1/logs"].keys()
    assert "get" in paths["/v1/logs/{log_id}"]
    schemas = spec["components"]["schemas"]
    for name in ("LogBatchIn", "LogEventIn", "LogBatchOut", "LogOut"):
        assert schemas[name].get("examples"), name
    post = paths["/v1/logs"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/LogBatchIn")
    assert "201" in post["responses"] and "422" in post["responses"]
    assert paths["/v1/logs"]["get"]["responses"]["200"]["content"]["application/json"]["example"]["items"]
