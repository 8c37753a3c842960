"""Scoped vector search keeps its recall on both plans: exact scan for small scopes, HNSW with
iterative scans for scopes that are a large share of the table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import text

from mosaic_memory.common.scan_policy import ScanPolicy
from mosaic_memory.common.vectors import prefer_exact_scan
from mosaic_memory.container import AppState
from mosaic_memory.insights.repository import InsightRepository
from mosaic_memory.models import Insight
from mosaic_memory.owners.repository import OwnerRepository
from mosaic_memory.search.repository import SearchRepository
from mosaic_memory.search.schemas import SearchFilters
from tests.conftest import UserFactory


async def _owner_id(state: AppState, name: str) -> uuid.UUID:
    async with state.sessionmaker() as session:
        owner = await OwnerRepository(session).get_by_name("user", name)
        assert owner is not None
        return owner.id


def _unit(rows: int, seed: int) -> np.ndarray:
    """Clustered unit vectors, shaped like text embeddings (topics) rather than uniform noise."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, 384))
    m = (centers[rng.integers(0, 40, rows)] + 0.6 * rng.standard_normal((rows, 384))).astype(np.float32)
    unit: np.ndarray = m / np.linalg.norm(m, axis=1, keepdims=True)
    return unit


async def test_large_share_scope_uses_hnsw_and_keeps_recall(state: AppState, make_user: UserFactory) -> None:
    big_name, _ = await make_user("big")
    small_name, _ = await make_user("small")
    big, small = await _owner_id(state, big_name), await _owner_id(state, small_name)
    vectors = _unit(3_000, seed=7)
    contents = [f"synthetic row {i} of a large owner" for i in range(3_000)]
    async with state.sessionmaker() as session, session.begin():
        repo = InsightRepository(session)
        await repo.bulk_load(big, contents, vectors, embedding_model=state.embedder.model_id)
        await repo.bulk_load(small, ["one row of a small owner"], _unit(1, seed=8), embedding_model="x")
        # 25 rows carry a tag: a filter that only 0.8 % of the scope passes
        await session.execute(
            text("UPDATE insights SET tags = '{rare}' WHERE owner_id = :o AND content = ANY(:cs)"),
            {"o": big, "cs": contents[100:125]},
        )
    async with state.sessionmaker() as session:
        await session.execute(text("ANALYZE insights"))
        await session.commit()

    policy = ScanPolicy(max_rows=20_000, min_rows=2_000, share=0.05)
    async with state.sessionmaker() as session:
        assert await prefer_exact_scan(session, Insight, [small], policy) is True
        assert await prefer_exact_scan(session, Insight, [big], policy) is False, "a 3,000-row majority scope"

    now = datetime.now(UTC)

    async def search(vector: np.ndarray, limit: int, filters: SearchFilters | None = None) -> list[uuid.UUID]:
        async with state.sessionmaker() as session, session.begin():
            rows = await SearchRepository(session).semantic(
                ["insights"],
                [big],
                vector,
                filters or SearchFilters(),
                limit=limit,
                now=now,
                include_history=False,
                scan=policy,
                ef_search=100,
            )
        return [r.id for r in rows]

    async with state.sessionmaker() as session:
        ids = {
            r.content: r.id
            for r in (
                await session.execute(text("SELECT content, id FROM insights WHERE owner_id = :o"), {"o": big})
            ).all()
        }
    recalls = []
    for i in range(0, 3_000, 300):
        got = await search(vectors[i], 10)
        assert got[0] == ids[contents[i]], "the row's own vector is its nearest neighbour"
        exact = np.argsort(-(vectors @ vectors[i]))[:10]
        recalls.append(len({ids[contents[j]] for j in exact} & set(got)) / 10)
    assert np.mean(recalls) >= 0.95
    assert len(await search(vectors[0], 50)) == 50
    rare = SearchFilters(tags=["rare"])
    assert len(await search(vectors[0], 20, rare)) == 20
    assert len(await search(vectors[0], 40, rare)) == 25, "every matching row when fewer than k match"
