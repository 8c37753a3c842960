"""Hybrid fusion keeps score magnitudes, and scores mean relevance (issue 9). Real model, real database."""

from __future__ import annotations

import httpx

from tests.conftest import UserFactory

FOUR = (
    "The user likes dark themes in every editor",
    "Deploys go out on Tuesdays after the standup",
    "The cat is called Miso",
    "Prefers PostgreSQL over MySQL for new services",
)
CUT = 0.5  # search.relevance_cut


async def _four(http: httpx.AsyncClient, make_user: UserFactory) -> dict[str, str]:
    _, h = await make_user()
    for content in FOUR:
        r = await http.post("/v1/insights", json={"content": content}, headers=h)
        assert r.status_code == 201, r.text
    return h


async def _hits(http: httpx.AsyncClient, h: dict[str, str], **body: object) -> list[dict]:  # type: ignore[type-arg]
    r = await http.post("/v1/search", json=body, headers=h)
    assert r.status_code == 200, r.text
    return r.json()["hits"]  # type: ignore[no-any-return]


async def test_default_hybrid_ranks_the_clear_semantic_winner_first(
    http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    h = await _four(http, make_user)
    hits = await _hits(http, h, query="what colour scheme does she prefer?")
    assert hits[0]["content"] == FOUR[0]
    assert set(hits[0]["scores"]) >= {"semantic"}
    assert all(0.0 <= x["score"] <= 1.0 for x in hits)


async def test_the_cut_separates_the_relevant_hit_from_the_unrelated(
    http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    h = await _four(http, make_user)
    hits = await _hits(http, h, query="what colour scheme does she prefer?")
    scores = {x["content"]: x["score"] for x in hits}
    assert scores[FOUR[0]] >= CUT
    assert all(scores[c] < CUT for c in FOUR[1:] if c in scores)
    cut = await _hits(http, h, query="what colour scheme does she prefer?", min_score=CUT)
    assert [x["content"] for x in cut] == [FOUR[0]]


async def test_nothing_stored_about_it_means_no_hit_above_the_cut(
    http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    h = await _four(http, make_user)
    for mode in ("hybrid",):  # the default mode; keyword alone: see benchmarks/RESULTS.md
        hits = await _hits(http, h, query="which airline does she fly with?", mode=mode)
        assert all(x["score"] < CUT for x in hits), (mode, hits)


async def test_a_common_word_alone_carries_no_keyword_hit(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    for content in ("The user likes tea", "The user likes long walks", "The user likes jazz", "Backups run nightly"):
        assert (await http.post("/v1/insights", json={"content": content}, headers=h)).status_code == 201
    # "user" and "like" are in most rows: they weigh nothing, so only "jazz" can match
    hits = await _hits(http, h, query="does the user like jazz?", mode="keyword")
    assert [x["content"] for x in hits] == ["The user likes jazz"]


async def test_an_identifier_with_a_hyphen_is_found_by_keyword(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    texts = ("Order ORD-20931 was refunded twice", "Order ORD-20913 shipped late", "Order ORD-20939 is on hold")
    for content in texts:
        r = await http.post("/v1/insights", json={"content": content}, headers=h)
        assert r.status_code in (200, 201)
    hits = await _hits(http, h, query="what happened to order ORD-20913?", mode="keyword")
    assert hits[0]["content"] == texts[1]
    assert all(x["score"] < hits[0]["score"] for x in hits[1:])
