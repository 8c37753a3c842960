"""What a write embeds is what re-embedding embeds and what search shows, for every kind.

Each kind's spec (``mosaic_memory/<kind>/spec.py``) states its embedded text once, in Python and
in SQL; this holds the write path, the stored row, re-embedding's batch query and search to it,
with the real model on the real database.
"""

from __future__ import annotations

import uuid

import numpy as np
from sqlalchemy import select

from embeddings import content_hash
from mosaic_memory.container import AppState
from mosaic_memory.insights.schemas import InsightCreate
from mosaic_memory.kinds import EMBEDDED_TABLES, KIND_SPECS
from mosaic_memory.logs.schemas import LogBatchIn, LogEventIn
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.preferences.schemas import PreferencePut
from mosaic_memory.reembed.repository import ReembedRepository
from mosaic_memory.search.schemas import SearchRequest
from mosaic_memory.skills.schemas import SkillCreate


def test_every_kind_has_a_spec_and_a_table() -> None:
    assert set(KIND_SPECS) == {"insights", "preferences", "logs", "skills"}
    assert set(EMBEDDED_TABLES) == {s.table for s in KIND_SPECS.values()}


async def test_write_embeds_what_reembedding_embeds_for_every_kind(state: AppState) -> None:
    owners = OwnerService()
    async with state.sessionmaker() as session:
        try:
            _, token = await owners.create_user(session, f"spec-{uuid.uuid4().hex[:8]}")
            principal = await owners.authenticate(session, token)
            owner_id = principal.user.id
            await state.insights.create(session, principal, InsightCreate(content="Prefers rebase over merge"))
            await state.preferences.put(session, principal, "editor", PreferencePut(value="helix, modal editing"))
            # A non-string value: jsonb's own text form (key order, number form), not Python's json.
            await state.preferences.put(
                session, principal, "review", PreferencePut(value={"tone": "direct", "max_comments": 12.50, "a": [1]})
            )
            await state.logs.append(
                session,
                principal,
                LogBatchIn(events=[LogEventIn(session_id="s1", content="ran the migration on staging")]),
            )
            await state.logs.embed_pending(session, owner_ids=[owner_id])  # in case the write deferred it
            await state.skills.create(
                session,
                principal,
                SkillCreate(name="release", description="cut a release and publish the notes", instructions="1. tag"),
            )
            await session.flush()

            repo = ReembedRepository(session)
            checked: dict[str, int] = {}
            for spec in KIND_SPECS.values():
                model = spec.model
                stored = (await session.scalars(select(model).where(model.owner_id == owner_id))).all()
                assert stored, spec.name
                # Re-embedding's own batch query, for a model every stored row differs from.
                batch = await repo.next_batch(
                    spec.table, "another-model", after=(owner_id, uuid.UUID(int=0)), limit=len(stored) + 50
                )
                texts = {r.id: r.text for r in batch if r.owner_id == owner_id}
                assert set(texts) == {row.id for row in stored}, spec.name
                vectors = await state.embedder.embed_documents([texts[row.id] for row in stored])
                for row, vector in zip(stored, vectors, strict=True):
                    text = texts[row.id]
                    assert content_hash(text) == row.content_hash, (spec.name, text)
                    assert row.embedding_model == state.embedder.model_id
                    np.testing.assert_allclose(np.asarray(row.embedding), vector, atol=1e-5)
                    if spec.text_of is not None:
                        assert spec.text_of(row) == text, spec.name
                checked[spec.name] = len(stored)
            assert checked == {"insights": 1, "preferences": 2, "logs": 1, "skills": 1}

            # Search shows the same text as a hit's content.
            found = await state.search.search(
                session, principal, SearchRequest(query="release notes", mode="keyword", kinds=["skills"])
            )
            assert [h.content for h in found.hits] == ["release: cut a release and publish the notes"]
        finally:
            await session.rollback()
