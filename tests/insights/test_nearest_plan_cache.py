"""The write path remembers an owner's near-duplicate plan for a while, like search does: a large
owner's HNSW walk, a small or empty owner's exact scan (right whatever the owner holds by then)."""

from __future__ import annotations

import httpx

from benchmarks.common import fact_texts
from mosaic_memory.common.vectors import SCOPE_PLANS
from mosaic_memory.container import AppState
from mosaic_memory.insights.schemas import InsightCreate
from mosaic_memory.insights.service import InsightService
from tests.conftest import UserFactory
from tests.search.test_statement_count import counted


async def _writes(state: AppState, service: InsightService, token: str, contents: list[str]) -> list[tuple[bool, bool]]:
    """(counted the owner's rows, merged) of each write, one transaction each."""
    async with state.sessionmaker() as session:
        principal = await state.owners.authenticate(session, token)
    out = []
    for content in contents:
        with counted(state) as statements:
            async with state.sessionmaker() as session, session.begin():
                written = await service.create(session, principal, InsightCreate(content=content))
        out.append((any("cap0" in s for s in statements), written.merged))  # scan_plans' CTE
    return out


async def test_a_large_owner_is_planned_once_and_still_merges(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState
) -> None:
    # "Large" made small for the test: past 5 rows an owner's lookup walks HNSW.
    search = state.settings.search.model_copy(
        update={"exact_scan_min_rows": 5, "exact_scan_threshold": 5, "exact_scan_share": 0.0}
    )
    service = InsightService(embedder=state.embedder, settings=state.settings.model_copy(update={"search": search}))
    SCOPE_PLANS.clear()

    _, big = await make_user()
    stored = fact_texts(150, seed=3)  # distinct facts: none merge
    r = await http.post("/v1/insights/batch", json={"items": [{"content": t} for t in stored]}, headers=big)
    assert r.status_code == 201 and sum(not x["merged"] for x in r.json()["items"]) >= 100
    token = big["Authorization"][7:]
    writes = await _writes(state, service, token, ["Owns a green kayak", stored[0] + ".", "Sails on Sundays"])
    # Counted once; the remembered plan still finds the near-duplicate.
    assert writes == [(True, False), (False, True), (False, False)]

    _, small = await make_user()
    writes = await _writes(
        state, service, small["Authorization"][7:], ["The deploy runs on Fridays", "Owns a kayak", "Owns a kayak."]
    )
    # empty: counted once, an exact scan from then on, which still finds the near-duplicate
    assert writes == [(True, False), (False, False), (False, True)]
