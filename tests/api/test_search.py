"""Search quality and modes with the real model."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import numpy as np

from mosaic_memory.container import AppState
from mosaic_memory.insights.repository import InsightRepository
from mosaic_memory.owners.repository import OwnerRepository
from mosaic_memory.search.repository import SearchRepository
from mosaic_memory.search.schemas import SearchFilters
from tests.conftest import UserFactory

UNRELATED = [
    "The quarterly report is due on the first Monday of the month",
    "Kubernetes pods restart when the liveness probe fails",
    "The cat is fed twice a day, at 7am and 6pm",
    "Flights to Tokyo are cheaper in February",
    "Use pg_dump with --format=custom for large databases",
    "The team standup happens at 9:30 every weekday",
]


async def _seed(http: httpx.AsyncClient, h: dict[str, str], extra: list[str]) -> dict[str, str]:
    items = [{"content": c} for c in [*UNRELATED, *extra]]
    r = await http.post("/v1/insights/batch", json={"items": items}, headers=h)
    assert r.status_code == 201, r.text
    return {i["content"]: i["id"] for i in r.json()["items"]}


async def test_paraphrase_ranks_first(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    ids = await _seed(http, h, ["the user likes dark themes"])
    for mode in ("semantic", "hybrid"):
        r = await http.post(
            "/v1/search", json={"query": "what colour scheme does she prefer?", "mode": mode}, headers=h
        )
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        assert hits[0]["id"] == ids["the user likes dark themes"], (mode, hits[:3])
        assert hits[0]["kind"] == "insights"
        assert {"id", "kind", "content", "score", "tags", "metadata", "owner", "created_at"} <= hits[0].keys()


async def test_keyword_mode_matches_words_not_meaning(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    ids = await _seed(http, h, ["the user likes dark themes"])
    r = await http.post("/v1/search", json={"query": "pg_dump custom format", "mode": "keyword"}, headers=h)
    hits = r.json()["hits"]
    assert hits[0]["id"] == ids["Use pg_dump with --format=custom for large databases"]
    # no shared word: keyword mode finds nothing where semantic mode would
    r = await http.post("/v1/search", json={"query": "colour scheme", "mode": "keyword"}, headers=h)
    assert r.json()["hits"] == []


async def test_hybrid_fuses_both(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    ids = await _seed(http, h, ["Error code E4711 means the disk quota is exhausted"])
    r = await http.post("/v1/search", json={"query": "E4711", "mode": "hybrid", "k": 3}, headers=h)
    hits = r.json()["hits"]
    assert hits[0]["id"] == ids["Error code E4711 means the disk quota is exhausted"]
    assert "keyword" in hits[0]["scores"] and "semantic" in hits[0]["scores"]
    assert 0 < hits[0]["score"] <= 1


async def test_filters_and_k(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    items = [
        {
            "content": f"Recipe {i}: a soup with {v}",
            "tags": ["food", "soup" if i % 2 else "veg"],
            "category": "cooking" if i < 6 else "other",
            "metadata": {"n": i % 3},
        }
        for i, v in enumerate(["leeks", "carrots", "beans", "lentils", "onions", "kale", "peas", "corn"])
    ]
    await http.post("/v1/insights/batch", json={"items": items}, headers=h)
    body = {"query": "soup", "k": 3, "mode": "semantic"}
    assert len((await http.post("/v1/search", json=body, headers=h)).json()["hits"]) == 3
    hits = (await http.post("/v1/search", json={**body, "k": 10, "filters": {"tags": ["veg"]}}, headers=h)).json()[
        "hits"
    ]
    assert len(hits) == 4 and all("veg" in x["tags"] for x in hits)
    hits = (await http.post("/v1/search", json={**body, "k": 10, "filters": {"category": "other"}}, headers=h)).json()[
        "hits"
    ]
    assert len(hits) == 2
    hits = (await http.post("/v1/search", json={**body, "k": 10, "filters": {"metadata": {"n": 0}}}, headers=h)).json()[
        "hits"
    ]
    assert len(hits) == 3 and all(x["metadata"]["n"] == 0 for x in hits)
    hits = (
        await http.post(
            "/v1/search", json={**body, "k": 10, "filters": {"created_before": "2000-01-01T00:00:00Z"}}, headers=h
        )
    ).json()["hits"]
    assert hits == []


async def test_search_counts_recalls(http: httpx.AsyncClient, make_user: UserFactory, state: AppState) -> None:
    _, h = await make_user()
    ins = (await http.post("/v1/insights", json={"content": "Birthday is on the 3rd of March"}, headers=h)).json()
    assert ins["access_count"] == 0
    await http.post("/v1/search", json={"query": "when is the birthday?"}, headers=h)
    assert state.access_recorder is not None
    await state.access_recorder.flush()  # recalls are written off the search path, in batches
    again = (await http.get(f"/v1/insights/{ins['id']}", headers=h)).json()
    assert again["access_count"] == 1
    assert again["last_accessed_at"] is not None


async def test_keyword_all_words_first_and_candidates_capped(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState
) -> None:
    name, h = await make_user()
    async with state.sessionmaker() as session, session.begin():
        owner = await OwnerRepository(session).get_by_name("user", name)
        assert owner is not None
        # "database" in 31 of 71 rows: common, but under the share (half the scope) where a word
        # stops counting as evidence, so rows with it alone still fill the any-word pass.
        notes = [f"Note {i} about the database schema" for i in range(30)]
        notes += [f"Memo {i} on the cafeteria lunch menu" for i in range(40)]
        # keyword search reads no vectors; loaded directly so no near-duplicate merge applies
        vectors = np.eye(70, 384, dtype=np.float32)
        await InsightRepository(session).bulk_load(owner.id, notes, vectors, embedding_model=state.embedder.model_id)
    target = (
        await http.post(
            "/v1/insights", json={"content": "Alarm: database replication lag above ten seconds"}, headers=h
        )
    ).json()["id"]
    hits = (
        await http.post("/v1/search", json={"query": "database replication lag", "mode": "keyword", "k": 10}, headers=h)
    ).json()["hits"]
    assert hits[0]["id"] == target
    assert len(hits) == 10, "the any-word pass fills up to k"
    assert hits[0]["score"] > 0.5 > hits[1]["score"]

    async with state.sessionmaker() as session:
        found = await SearchRepository(session).keyword(
            ["insights"],
            [owner.id],
            "database replication lag",
            SearchFilters(),
            limit=20,
            now=datetime.now(UTC),
            include_history=False,
            candidate_cap=5,
        )
    rows = found["insights"]
    assert str(rows[0].id) == target
    assert 5 <= len(rows) <= 1 + 5, "each pass ranks at most candidate_cap matches"
