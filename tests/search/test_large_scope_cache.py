"""Facts about a large scope (its vector plan, its keyword document frequencies) are counted once
and remembered for a while; a small scope's exact plan is remembered too (it reads every row), its
frequencies and an empty scope's plan are counted on every search (a fresh row there matters)."""

from __future__ import annotations

import time

import httpx
import pytest

from benchmarks.common import fact_texts, question_texts
from mosaic_memory.common.ttl_cache import TtlCache
from mosaic_memory.common.vectors import SCOPE_PLANS
from mosaic_memory.container import AppState
from mosaic_memory.search.repository import LARGE_SCOPE_DF, LARGE_SCOPE_VOCABULARY, LARGE_SCOPES
from mosaic_memory.search.schemas import Mode, SearchRequest
from mosaic_memory.search.service import SearchService
from mosaic_memory.search.vocabulary import VocabularyRefresher
from tests.conftest import UserFactory
from tests.search.test_statement_count import counted


async def _searches(
    state: AppState, service: SearchService, token: str, query: str, mode: Mode = "hybrid"
) -> list[tuple[list[str], list[tuple[str, float]]]]:
    async with state.sessionmaker() as session:
        principal = await state.owners.authenticate(session, token)
    out = []
    for _ in range(2):
        with counted(state) as statements:
            async with state.sessionmaker() as session, session.begin():
                found = await service.search(
                    session, principal, SearchRequest(query=query, kinds=["insights"], mode=mode)
                )
        out.append((list(statements), [(h.content, h.score) for h in found.hits]))
    return out


async def test_a_large_scope_is_planned_and_counted_once(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState
) -> None:
    # "Large" made small for the test: past 5 rows a scope walks HNSW; frequencies over 100 rows.
    search = state.settings.search.model_copy(
        update={"exact_scan_min_rows": 5, "exact_scan_threshold": 5, "exact_scan_share": 0.0, "keyword_df_sample": 100}
    )
    service = SearchService(embedder=state.embedder, settings=state.settings.model_copy(update={"search": search}))
    SCOPE_PLANS.clear()
    LARGE_SCOPE_DF.clear()
    LARGE_SCOPES.clear()

    _, big = await make_user()
    items = [{"content": text} for text in fact_texts(150, seed=3)]  # distinct facts: none merge
    r = await http.post("/v1/insights/batch", json={"items": items}, headers=big)
    assert r.status_code == 201 and sum(not x["merged"] for x in r.json()["items"]) >= 100
    question = question_texts(1, seed=3)[0]
    (first, hits), (second, again) = await _searches(state, service, big["Authorization"][7:], question)
    assert hits and again == hits  # the same answer
    assert len(second) == len(first) - 1  # without the plan count
    # the frequencies, counted with the lexemes the first time, are not counted again
    assert any(_counts_frequencies(s) for s in first) and not any(_counts_frequencies(s) for s in second)

    # New words in a scope known large: its sample's vocabulary is read once, then nothing is
    # counted for any word; and the answers are those of a scope counted afresh.
    LARGE_SCOPE_VOCABULARY.clear()
    token = big["Authorization"][7:]
    (standing, standing_hits), (desk, _) = await _searches(
        state, service, token, "standing desk recommended", "keyword"
    )
    (coffee, coffee_hits), _ = await _searches(state, service, token, "italian coffee invoices euros", "keyword")
    assert sum(map(_counts_frequencies, standing)) == 1 and not any(map(_counts_frequencies, desk + coffee))
    for cache in (SCOPE_PLANS, LARGE_SCOPE_DF, LARGE_SCOPES, LARGE_SCOPE_VOCABULARY):
        cache.clear()
    for query, hits in (("standing desk recommended", standing_hits), ("italian coffee invoices euros", coffee_hits)):
        (_, fresh), _ = await _searches(state, service, token, query, "keyword")
        assert hits and fresh == hits

    _, small = await make_user()
    for content in ("The deploy runs on Fridays", "Stage two checks the schema"):
        assert (await http.post("/v1/insights", json={"content": content}, headers=small)).status_code == 201
    (first, hits), (second, again) = await _searches(state, service, small["Authorization"][7:], "deploy stage checks")
    assert hits and again == hits and len(second) == len(first) - 1  # the exact plan remembered
    assert all(any(_counts_frequencies(s) for s in search) for search in (first, second))


async def test_a_fresh_row_is_found_at_once_under_a_remembered_plan(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState
) -> None:
    """An empty scope's plan is remembered as an exact scan, which reads every row the scope holds
    when it runs: the scope's first row is found by the next search, with no count before it."""
    _, h = await make_user()
    token = h["Authorization"][7:]
    (counting, nothing), (remembered, still_nothing) = await _searches(
        state, state.search, token, "kayak on the lake", "semantic"
    )
    assert nothing == still_nothing == []
    assert [_counts_scope(s) for s in counting] == [True]  # empty: no search statement at all
    assert not any(map(_counts_scope, remembered))
    for content in ("Paddles a kayak on the lake", "Owns a red kayak"):
        assert (await http.post("/v1/insights", json={"content": content}, headers=h)).is_success
        (statements, hits), _ = await _searches(state, state.search, token, "kayak on the lake", "semantic")
        assert not any(map(_counts_scope, statements))
        assert content in {found for found, _ in hits}


def _counts_scope(statement: str) -> bool:
    return "cap0" in statement  # common/vectors.scan_plans' count


async def _large_scope_with_vocabulary(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState
) -> tuple[SearchService, VocabularyRefresher, dict[str, str], list[str], list[str]]:
    """A new user of 150 insights, a scope large for a service whose sample is 100 rows: counted
    by one search, its vocabulary read by the next. The service, its refresher, the user's
    headers, the insights' ids, and the statements of the search that read the vocabulary."""
    search = state.settings.search.model_copy(update={"keyword_df_sample": 100})
    refresher = VocabularyRefresher(state.sessionmaker)
    service = SearchService(
        embedder=state.embedder, settings=state.settings.model_copy(update={"search": search}), vocabulary=refresher
    )
    for cache in (LARGE_SCOPE_DF, LARGE_SCOPES, LARGE_SCOPE_VOCABULARY):
        cache.clear()
    _, big = await make_user()
    items = [{"content": text} for text in fact_texts(150, seed=3)]
    r = await http.post("/v1/insights/batch", json={"items": items}, headers=big)
    assert r.status_code == 201
    ids = list(dict.fromkeys(item["id"] for item in r.json()["items"]))  # a near-duplicate merged: one id
    token = big["Authorization"][7:]
    await _searches(state, service, token, "standing desk recommended", "keyword")  # counted: large
    (read, _), _ = await _searches(state, service, token, "italian coffee invoices euros", "keyword")
    return service, refresher, big, ids, read


async def test_a_stale_vocabulary_is_used_and_read_again_off_the_search_path(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, refresher, big, _, read = await _large_scope_with_vocabulary(http, make_user, state)
    token = big["Authorization"][7:]
    assert sum(map(_counts_frequencies, read)) == 1  # the vocabulary, on the search's path

    # A minute on, the vocabulary is stale: a search uses it as it is, and hands it on to be read
    # again (the read starts once the search is done: no statement of the search reads it).
    monkeypatch.setattr(LARGE_SCOPE_VOCABULARY, "clock", lambda: time.monotonic() + 61)
    async with state.sessionmaker() as session:
        principal = await state.owners.authenticate(session, token)
    query = SearchRequest(query="jazz playlists while coding", kinds=["insights"], mode="keyword")
    with counted(state) as statements:
        async with state.sessionmaker() as session, session.begin():
            stale = await service.search(session, principal, query)
            assert refresher.pending == 1 and not any(map(_counts_frequencies, statements))
    await refresher.wait()
    with counted(state) as statements:  # read again: fresh, nothing more to read
        async with state.sessionmaker() as session, session.begin():
            await service.search(session, principal, query.model_copy(update={"query": "hiking in the alps"}))
            assert refresher.pending == 0 and not any(map(_counts_frequencies, statements))

    for cache in (LARGE_SCOPE_DF, LARGE_SCOPES, LARGE_SCOPE_VOCABULARY):
        cache.clear()
    async with state.sessionmaker() as session, session.begin():
        fresh = await service.search(session, principal, query)
    assert stale.hits and [(h.id, h.score) for h in stale.hits] == [(h.id, h.score) for h in fresh.hits]


async def test_a_scope_that_shrank_below_the_sample_is_counted_as_a_small_one_again(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, refresher, big, ids, _ = await _large_scope_with_vocabulary(http, make_user, state)
    token = big["Authorization"][7:]
    assert len(LARGE_SCOPES) == 1 and len(LARGE_SCOPE_VOCABULARY) == 1

    # The user forgets all but 40 rows: under the sample of 100, the scope is small again.
    assert len(ids) > 100
    for insight_id in ids[40:]:
        assert (await http.delete(f"/v1/insights/{insight_id}", headers=big)).status_code == 204
    monkeypatch.setattr(LARGE_SCOPE_VOCABULARY, "clock", lambda: time.monotonic() + 61)
    # Stale: read again while the search runs a second time, which then finds the vocabulary gone
    # and reads it for itself, and must not keep it.
    await _searches(state, service, token, "jazz playlists while coding", "keyword")
    await refresher.wait()
    assert len(LARGE_SCOPE_VOCABULARY) == 0  # forgotten
    # so a search counts its words on its own path, as for any small scope
    (counted_now, _), (counted_again, _) = await _searches(state, service, token, "hiking in the alps", "keyword")
    assert any(map(_counts_frequencies, counted_now)) and any(map(_counts_frequencies, counted_again))


def _counts_frequencies(statement: str) -> bool:
    """The statement reads the scope's sample of rows for document frequencies (repository._idf)."""
    return "sample" in statement or "FILTER (WHERE" in statement


def test_entries_expire() -> None:
    now = [0.0]
    cache: TtlCache[str] = TtlCache(10.0, max_entries=2, clock=lambda: now[0])
    cache.put("a", "plan")
    assert cache.get("a") == "plan"
    now[0] = 10.0
    assert cache.get("a") is None
    cache.put("a", "x")
    cache.put("b", "y")
    cache.put("c", "z")  # full: dropped and started again
    assert cache.get("a") is None and cache.get("c") == "z"
