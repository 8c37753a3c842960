"""The hot path's parameters, rows and round trips: the query vector's binary form, the owners' one
array literal, ``nearest_rows``'s order and fallback, and the HNSW settings riding on the plan count,
against the real PostgreSQL + pgvector."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Executable, Select, column, func, select, text, values
from sqlalchemy.dialects.postgresql import UUID

from mosaic_memory.common.owner_id_list import OwnerIdList
from mosaic_memory.common.pgvector_binary import from_vector_send
from mosaic_memory.common.repository import owned_by, union_of_parts
from mosaic_memory.common.scan_policy import ScanPolicy
from mosaic_memory.common.vectors import (
    SCOPE_PLANS,
    ScanPlan,
    by_distance,
    nearest_rows,
    query_vector,
    vector_literal,
)
from mosaic_memory.container import AppState
from mosaic_memory.insights.repository import InsightRepository
from mosaic_memory.models import Insight, Owner
from mosaic_memory.owners.repository import OwnerRepository
from mosaic_memory.search.repository import SearchRepository
from tests.conftest import UserFactory
from tests.search.test_statement_count import counted


async def _new_user(state: AppState, make_user: UserFactory, prefix: str) -> Owner:
    name, _ = await make_user(prefix)
    async with state.sessionmaker() as session:
        owner = await OwnerRepository(session).get_by_name("user", name)
    assert owner is not None
    return owner


async def test_the_query_vector_reaches_pgvector_bit_for_bit(state: AppState) -> None:
    rng = np.random.default_rng(11)
    edges = np.array([1.17549435e-38, -3.40282347e38, 3.40282347e38, -0.0, 1e-7, 0.1, 1 / 3], dtype=np.float32)
    vectors = [rng.standard_normal(384).astype(np.float32) * scale for scale in (1e-30, 1e-3, 1.0, 1e30)]
    vectors.append(np.resize(edges, 384))
    async with state.sessionmaker() as session:
        for vector in vectors:
            raw = await session.scalar(select(func.vector_send(query_vector(vector))))
            assert raw is not None
            assert from_vector_send(raw).tobytes() == vector.tobytes()
            assert vector_literal(vector).count(",") == 383


async def test_a_stored_vector_reaches_pgvector_bit_for_bit(state: AppState, make_user: UserFactory) -> None:
    # The column binds pgvector's binary form (common/vectors.py's StoredVector), on insert and on update.
    owner = await _new_user(state, make_user, "stored")
    edges = np.array([1.17549435e-38, -3.40282347e38, 3.40282347e38, -0.0, 1e-7, 0.1, 1 / 3], dtype=np.float32)
    first, second = np.resize(edges, 384), np.random.default_rng(12).standard_normal(384).astype(np.float32)
    async with state.sessionmaker() as session, session.begin():
        row = Insight(owner_id=owner.id, content="stored bit for bit", content_hash="bits", embedding=first)
        empty = Insight(owner_id=owner.id, content="no vector", content_hash="none", embedding=None)
        session.add_all([row, empty])
        await session.flush()
        stored = select(func.vector_send(Insight.embedding)).where(Insight.owner_id == owner.id, Insight.id == row.id)
        raw = await session.scalar(stored)
        assert raw is not None and from_vector_send(raw).tobytes() == first.tobytes()
        row.embedding = second
        await session.flush()
        raw = await session.scalar(stored)
        assert raw is not None and from_vector_send(raw).tobytes() == second.tobytes()
        assert await session.scalar(select(Insight.embedding.is_(None)).where(Insight.id == empty.id))


async def test_owned_by_matches_exactly_the_listed_owners_in_one_parameter(state: AppState) -> None:
    ids = [uuid.uuid4() for _ in range(150)]
    table = values(column("x", UUID(as_uuid=True)), name="t").data([(i,) for i in ids])

    def scoped(owners: list[uuid.UUID]) -> Select[Any]:
        return select(table.c.x).where(owned_by(table.c.x, owners))

    async with state.sessionmaker() as session:
        for owners in (ids[:120], ids[7:8], [], [uuid.uuid4(), ids[149]]):
            found = set((await session.scalars(scoped(owners))).all())
            assert found == set(owners) & set(ids)
    assert len(scoped(ids[:120]).compile().params) == len(ids) + 1  # the rows' values, then one for the owners


async def test_nearest_rows_come_back_nearest_first_and_short_hnsw_falls_back(
    state: AppState, make_user: UserFactory
) -> None:
    owner = await _new_user(state, make_user, "nearest")
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((30, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    q = rng.standard_normal(384).astype(np.float32)
    want = [f"row {i}" for i in np.argsort(-(vectors @ q))[:10]]  # nearest first
    async with state.sessionmaker() as session, session.begin():
        await InsightRepository(session).bulk_load(
            owner.id, [f"row {i}" for i in range(30)], vectors, embedding_model=state.embedder.model_id
        )
        distance = Insight.embedding.cosine_distance(query_vector(q))
        base = select(Insight.content, distance.label("distance")).where(owned_by(Insight.owner_id, [owner.id]))
        ran: list[tuple[ScanPlan, ...]] = []

        def parts(plans: Sequence[ScanPlan]) -> Executable:
            # part 0: its "hnsw" statement returns rows in id order, as relaxed_order may scramble
            # them; part 1: its "hnsw" statement comes back short; part 2: never asked for
            ran.append(tuple(plans))
            shuffled = base.order_by(Insight.id).limit(10)
            short = base.order_by(by_distance(distance, plans[1])).limit(3 if plans[1] == "hnsw" else 10)
            return union_of_parts([shuffled if plans[0] != "empty" else None, short if plans[1] != "empty" else None])

        first, second, third = await nearest_rows(session, ["hnsw", "hnsw", "empty"], parts, limit=10)
        assert ran == [("hnsw", "hnsw", "empty"), ("empty", "exact", "empty")]  # one statement, then the fallback
        assert [r.distance for r in first] == sorted(r.distance for r in first) and len(first) == 10
        assert [r.content for r in second] == want
        assert third == []
        ran.clear()
        assert await nearest_rows(session, ["empty", "empty"], parts, limit=10) == [[], []]
        assert ran == []


async def test_a_remembered_hnsw_plan_sends_its_settings_with_the_other_kinds_count(
    state: AppState, make_user: UserFactory
) -> None:
    owner = await _new_user(state, make_user, "remembered")
    policy = ScanPolicy()
    # as if a search a moment ago had counted this scope's insights past the exact-scan cap
    SCOPE_PLANS.put(("insights", OwnerIdList([owner.id]).text, policy, "", ()), "hnsw")
    try:
        async with state.sessionmaker() as session, session.begin():
            await session.execute(text("SELECT '[1,2]'::vector"))  # loads pgvector, so SHOW knows its settings
            with counted(state) as statements:
                plans = await SearchRepository(session).vector_plans(
                    ["insights", "skills"], [owner.id], policy, ef_search=123
                )
            assert plans == {"insights": "hnsw", "skills": "empty"}
            assert len(statements) == 1, statements
            assert await session.scalar(text("SHOW hnsw.iterative_scan")) == "relaxed_order"
            assert await session.scalar(text("SHOW hnsw.ef_search")) == "123"
            assert await session.scalar(text("SHOW hnsw.max_scan_tuples")) == "50000"
    finally:
        SCOPE_PLANS.clear()
