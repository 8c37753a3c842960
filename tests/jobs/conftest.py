"""Fixtures for jobs: log and owner factories, runners with settings of their own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from jobs import JobRunner, build_registry
from mosaic_memory.config import Settings
from mosaic_memory.container import AppState
from mosaic_memory.models import AgentLog, Insight, InsightSource, Owner, utc_now


def runner_for(state: AppState, *, policy: dict[str, Any] | None = None, **jobs_settings: Any) -> JobRunner:
    """A runner over the suite's database and model, with ``settings.jobs`` fields (and
    ``settings.policy`` kinds) overridden."""
    jobs = state.settings.jobs.model_copy(update=jobs_settings)
    update: dict[str, Any] = {"jobs": jobs}
    if policy:
        update["policy"] = state.settings.policy.model_copy(update=policy)
    settings: Settings = state.settings.model_copy(update=update)
    return JobRunner(
        registry=build_registry(settings),
        settings=settings,
        engine=state.engine,
        sessionmaker=state.sessionmaker,
        embedder=state.embedder,
        insights=state.insights,
    )


@pytest.fixture
def runner(state: AppState) -> JobRunner:
    return runner_for(state)


async def owner_id(state: AppState, name: str) -> uuid.UUID:
    async with state.sessionmaker() as session:
        owner = await session.scalar(select(Owner).where(Owner.kind == "user", Owner.name == name))
        assert owner is not None
        return owner.id


async def make_logs(
    state: AppState,
    owner: uuid.UUID,
    *,
    contents: Sequence[str],
    session_id: str | None = "s1",
    agent_id: str | None = "agent-1",
    start: datetime | None = None,
    step: timedelta = timedelta(minutes=1),
    level: str = "info",
    tier: str = "hot",
    tier_changed_at: datetime | None = None,
) -> list[uuid.UUID]:
    """Insert agent logs with the real model's embeddings, one ``step`` apart; returns their ids."""
    start = start or utc_now() - timedelta(hours=1)
    vectors = await state.embedder.embed_documents(list(contents))
    rows = [
        AgentLog(
            owner_id=owner,
            id=uuid.uuid4(),
            session_id=session_id,
            agent_id=agent_id,
            level=level,
            content=text,
            metadata_={},
            occurred_at=start + i * step,
            created_at=start + i * step,
            content_hash=uuid.uuid4().hex,
            embedding=vectors[i],
            embedding_model=state.embedder.model_id,
            tier=tier,
            tier_changed_at=tier_changed_at,
        )
        for i, text in enumerate(contents)
    ]
    async with state.sessionmaker() as session, session.begin():
        session.add_all(rows)
    return [r.id for r in rows]


LOG_COLUMNS = ("id", "session_id", "tier", "tier_changed_at", "summarized_at", "summarized_by_run", "content")


async def log_rows(state: AppState, owner: uuid.UUID) -> dict[uuid.UUID, dict[str, Any]]:
    async with state.sessionmaker() as session:
        rows = (await session.scalars(select(AgentLog).where(AgentLog.owner_id == owner))).all()
        return {r.id: {c: getattr(r, c) for c in LOG_COLUMNS} for r in rows}


INSIGHT_COLUMNS = (
    "id", "content", "content_hash", "category", "tags", "metadata_", "importance", "confidence", "pinned",
    "valid_from", "valid_to", "superseded_by", "expires_at", "access_count", "last_accessed_at",
    "source_type", "source_ref", "created_by_run", "embedding_model", "created_at", "updated_at",
)  # fmt: skip


async def insight_rows(state: AppState, owner: uuid.UUID) -> dict[uuid.UUID, dict[str, Any]]:
    async with state.sessionmaker() as session:
        rows = (await session.scalars(select(Insight).where(Insight.owner_id == owner))).all()
        return {r.id: {c: getattr(r, c) for c in INSIGHT_COLUMNS} for r in rows}


async def source_rows(state: AppState, owner: uuid.UUID) -> set[tuple[uuid.UUID, uuid.UUID]]:
    async with state.sessionmaker() as session:
        rows = (await session.execute(select(InsightSource).where(InsightSource.owner_id == owner))).scalars()
        return {(r.insight_id, r.log_id) for r in rows}
