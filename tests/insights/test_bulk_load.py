"""InsightRepository.bulk_load: rows that come with their embeddings, through binary COPY."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from embeddings import content_hash
from mosaic_memory.container import AppState
from mosaic_memory.errors import Conflict, InvalidInput
from mosaic_memory.insights.repository import InsightRepository
from mosaic_memory.models import Insight
from mosaic_memory.owners.repository import OwnerRepository
from tests.conftest import UserFactory

FACTS = [
    "The user prefers dark themes in every editor",
    "Deployments happen on Tuesdays after the standup",
    "The cat is allergic to chicken-based food",
]


async def _owner_id(state: AppState, name: str) -> object:
    async with state.sessionmaker() as session:
        owner = await OwnerRepository(session).get_by_name("user", name)
        assert owner is not None
        return owner.id


async def test_bulk_loaded_rows_are_stored_with_provenance_and_searchable(
    state: AppState, http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    name, h = await make_user()
    owner_id = await _owner_id(state, name)
    vectors = await state.embedder.embed_documents(FACTS)
    async with state.sessionmaker() as session, session.begin():
        count = await InsightRepository(session).bulk_load(
            owner_id,  # type: ignore[arg-type]
            FACTS,
            vectors,
            embedding_model=state.embedder.model_id,
        )
    assert count == 3

    r = await http.get("/v1/insights", headers=h)
    items = {i["content"]: i for i in r.json()["items"]}
    assert set(items) == set(FACTS)
    assert {i["embedding_model"] for i in items.values()} == {state.embedder.model_id}
    assert {i["source"]["type"] for i in items.values()} == {"import"}

    r = await http.post(
        "/v1/search", json={"query": "which colour scheme does she like?", "mode": "semantic"}, headers=h
    )
    assert r.json()["hits"][0]["content"] == FACTS[0]

    # The stored vector is the one given, bit for bit, and the hash is the content's.
    async with state.sessionmaker() as session:
        rows = await InsightRepository(session).by_hashes(owner_id, [content_hash(FACTS[1])])  # type: ignore[arg-type]
    stored = np.asarray(rows[content_hash(FACTS[1])].embedding, dtype=np.float32)
    assert np.array_equal(stored, vectors[1])


async def test_bulk_load_rejects_a_repeated_content_and_stores_nothing(
    state: AppState, http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    name, h = await make_user()
    owner_id = await _owner_id(state, name)
    vectors = np.zeros((2, state.embedder.dimensions), dtype=np.float32)
    vectors[:, 0] = 1.0
    with pytest.raises(Conflict):
        async with state.sessionmaker() as session, session.begin():
            await InsightRepository(session).bulk_load(
                owner_id,  # type: ignore[arg-type]
                ["same text", "same text"],
                vectors,
                embedding_model="test",
            )
    r = await http.get("/v1/insights", headers=h)
    assert r.json()["items"] == []


async def test_bulk_load_rejects_vectors_of_the_wrong_shape(state: AppState, make_user: UserFactory) -> None:
    name, _ = await make_user()
    owner_id = await _owner_id(state, name)
    async with state.sessionmaker() as session, session.begin():
        repo = InsightRepository(session)
        with pytest.raises(InvalidInput, match="one vector per content"):
            await repo.bulk_load(owner_id, ["a", "b"], np.zeros((1, 384), np.float32), embedding_model="t")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="dimension"):
            await repo.bulk_load(owner_id, ["a"], np.zeros((1, 3), np.float32), embedding_model="t")  # type: ignore[arg-type]


async def test_add_all_keeps_every_rows_values_when_rows_set_different_columns(
    state: AppState, make_user: UserFactory
) -> None:
    # One executemany takes its columns from its first row: a later row's value of a column the
    # first left unset was dropped. Here the second row alone sets a category and an expiry.
    name, _ = await make_user()
    owner_id = await _owner_id(state, name)
    vectors = await state.embedder.embed_documents(FACTS[:2])
    later = datetime(2099, 1, 1, tzinfo=UTC)
    plain = Insight(owner_id=owner_id, content=FACTS[0], content_hash=content_hash(FACTS[0]), embedding=vectors[0])
    fuller = Insight(
        owner_id=owner_id,
        content=FACTS[1],
        content_hash=content_hash(FACTS[1]),
        embedding=vectors[1],
        category="ops",
        expires_at=later,
    )
    async with state.sessionmaker() as session, session.begin():
        await InsightRepository(session).add_all([plain, fuller])
    async with state.sessionmaker() as session:
        stored = {r.content: r for r in await session.scalars(select(Insight).where(Insight.owner_id == owner_id))}
    assert stored[FACTS[1]].category == "ops" and stored[FACTS[1]].expires_at == later
    assert stored[FACTS[0]].category is None and stored[FACTS[0]].expires_at is None
    assert stored[FACTS[0]].id != stored[FACTS[1]].id  # the default id, one each
