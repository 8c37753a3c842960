"""Unchanged text is never embedded again (preferences and skills), with the real model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from embeddings import Embedder, FloatArray
from mosaic_memory.container import AppState
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.preferences.schemas import PreferencePut
from mosaic_memory.preferences.service import PreferenceService
from mosaic_memory.skills.schemas import SkillCreate, SkillUpdate
from mosaic_memory.skills.service import SkillService
from tests.conftest import UserFactory


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimensions = inner.dimensions
        self.texts: list[str] = []

    async def embed_documents(self, texts: Sequence[str]) -> FloatArray:
        self.texts += list(texts)
        return await self.inner.embed_documents(texts)

    async def embed_query(self, text: str) -> FloatArray:
        return await self.inner.embed_query(text)


async def principal_for(state: AppState, headers: dict[str, str]) -> Principal:
    async with state.sessionmaker() as session:
        principal = await state.owners.authenticate(session, headers["Authorization"].split()[1])
        await session.commit()
    return principal


async def test_preference_embeds_only_changed_text(state: AppState, make_user: UserFactory) -> None:
    _, h = await make_user()
    principal = await principal_for(state, h)
    counting = CountingEmbedder(state.embedder)
    prefs = PreferenceService(embedder=counting, settings=state.settings)  # type: ignore[arg-type]

    async def put(value: Any, **extra: Any) -> None:
        async with state.sessionmaker() as session:
            await prefs.put(session, principal, "reply_length", PreferencePut(value=value, **extra))
            await session.commit()

    await put("short")
    assert counting.texts == ["reply_length: short"]
    await put("short", mutable=False)  # a flag changes, the text does not
    await put("short")
    await put(["short"])  # new text
    await put("short")  # back to a text already embedded once, but not the stored one
    assert counting.texts == ["reply_length: short", 'reply_length: ["short"]', "reply_length: short"]


async def test_skill_embeds_only_changed_text(state: AppState, make_user: UserFactory) -> None:
    _, h = await make_user()
    principal = await principal_for(state, h)
    counting = CountingEmbedder(state.embedder)
    skills = SkillService(embedder=counting, settings=state.settings)  # type: ignore[arg-type]
    async with state.sessionmaker() as session:
        out = await skills.create(session, principal, SkillCreate(name="lint", description="Run ruff"))
        await session.commit()
    for change in (
        SkillUpdate(instructions="ruff check --fix ."),
        SkillUpdate(tags=["python"], metadata={"tool": "ruff"}),
        SkillUpdate(description="Run ruff"),
        SkillUpdate(description="Run ruff and mypy"),
        SkillUpdate(name="check"),
    ):
        async with state.sessionmaker() as session:
            await skills.update(session, principal, out.id, change)
            await session.commit()
    assert counting.texts == ["lint: Run ruff", "lint: Run ruff and mypy", "check: Run ruff and mypy"]
