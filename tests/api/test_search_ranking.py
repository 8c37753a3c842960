"""Search options beyond relevance: tags_all, min_score, importance and recency weighting, MMR
diversity, and several kinds in one call. Real model, real database."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from mosaic_memory.container import AppState
from tests.conftest import UserFactory


async def _search(http: httpx.AsyncClient, h: dict[str, str], **body: object) -> list[dict]:  # type: ignore[type-arg]
    r = await http.post("/v1/search", json=body, headers=h)
    assert r.status_code == 200, r.text
    return r.json()["hits"]  # type: ignore[no-any-return]


async def _add(http: httpx.AsyncClient, h: dict[str, str], **body: object) -> str:
    r = await http.post("/v1/insights", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


async def test_tags_all_and_min_score(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    both = await _add(http, h, content="Backups run at midnight to the NAS", tags=["ops", "backup"])
    await _add(http, h, content="Backup drives are rotated monthly", tags=["backup"])
    await _add(http, h, content="The ops rota changes on Mondays", tags=["ops"])
    hits = await _search(http, h, query="backups", filters={"tags_all": ["ops", "backup"]})
    assert [x["id"] for x in hits] == [both]
    loose = await _search(http, h, query="when do backups run?", mode="semantic")
    strict = await _search(http, h, query="when do backups run?", mode="semantic", min_score=0.5)
    assert len(strict) < len(loose)
    assert strict and all(x["score"] >= 0.5 for x in strict)


async def test_importance_weight_lifts_important_insights(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    coffee = await _add(http, h, content="The user drinks coffee in the morning", importance=0.0)
    tea = await _add(http, h, content="The user drinks tea in the afternoon", importance=1.0)
    plain = await _search(http, h, query="coffee in the morning", mode="semantic")
    assert plain[0]["id"] == coffee
    weighted = await _search(http, h, query="coffee in the morning", mode="semantic", importance_weight=0.8)
    assert weighted[0]["id"] == tea


async def test_recency_weight_lifts_recent_insights(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState
) -> None:
    _, h = await make_user()
    old = await _add(http, h, content="The team's favourite lunch spot is the ramen bar")
    new = await _add(http, h, content="The team sometimes eats at the taco truck")
    async with state.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE insights SET created_at = now() - interval '90 days' WHERE id = :id"), {"id": old}
        )
    plain = await _search(http, h, query="favourite lunch spot ramen", mode="semantic")
    assert plain[0]["id"] == old
    recent = await _search(
        http, h, query="favourite lunch spot ramen", mode="semantic", recency_weight=0.8, recency_half_life_days=7
    )
    assert recent[0]["id"] == new


async def test_diversity_spreads_the_hits(http: httpx.AsyncClient, make_user: UserFactory, state: AppState) -> None:
    _, h = await make_user()
    for content in (
        "The production database is PostgreSQL 16",
        "Production runs on a PostgreSQL 16 database server",
        "Our prod DB is Postgres version 16",
        "Grafana dashboards show the database latency",
    ):
        await _add(http, h, content=content)

    async def spread(hits: list[dict]) -> float:  # type: ignore[type-arg]
        vecs = await state.embedder.embed_documents([x["content"] for x in hits])
        return float(vecs[0] @ vecs[1])

    query = {"query": "which database does production use?", "mode": "semantic", "k": 2}
    plain = await _search(http, h, **query)
    diverse = await _search(http, h, **query, diversity=0.7)
    assert len(plain) == len(diverse) == 2
    assert await spread(diverse) < await spread(plain)


async def test_one_call_over_several_kinds(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    await _add(http, h, content="The user deploys with GitHub Actions")
    r = await http.put("/v1/preferences/deploy_window", json={"value": "weekday mornings"}, headers=h)
    assert r.status_code == 201, r.text
    r = await http.post(
        "/v1/skills", json={"name": "deploy-service", "description": "Deploy a service to production"}, headers=h
    )
    assert r.status_code == 201, r.text
    hits = await _search(http, h, query="how and when do we deploy?", k=10)
    assert {x["kind"] for x in hits} == {"insights", "preferences", "skills"}
    only = await _search(http, h, query="how and when do we deploy?", kinds=["skills", "preferences"])
    assert {x["kind"] for x in only} == {"skills", "preferences"}
