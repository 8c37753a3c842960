"""A second, empty instance (its own embedded PostgreSQL) as the import target, and seed data."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from mosaic_memory.config import Settings
from mosaic_memory.container import AppState, bootstrap_admin, build_state
from mosaic_memory.insights.schemas import InsightCreate
from mosaic_memory.logs.schemas import LogBatchIn
from mosaic_memory.models import AgentLog, Insight
from mosaic_memory.owners.schemas import OwnerRef, Principal
from mosaic_memory.portability.format import dump_line
from mosaic_memory.portability.service import export_records
from mosaic_memory.preferences.schemas import PreferencePut
from mosaic_memory.skills.schemas import SkillCreate
from tests.conftest import ADMIN_KEY, scratch_dir

TARGET_ADMIN_KEY = "mm_0badc0df_target-admin-key-for-the-suite"


@pytest.fixture(scope="session")
async def target() -> AsyncIterator[AppState]:
    """An empty second instance: its own data directory, database and model."""
    path = scratch_dir("mosaic-target-")
    built = await build_state(Settings(data_dir=path, tier="local", admin_key=TARGET_ADMIN_KEY))
    await bootstrap_admin(built)
    yield built
    await built.aclose()
    shutil.rmtree(path, ignore_errors=True)


def principal_for(owner: OwnerRef) -> Principal:
    return Principal(user=owner, key_id=None, scopes=frozenset({"read", "write"}))


async def new_user(state: AppState, prefix: str = "pu") -> OwnerRef:
    async with state.sessionmaker() as session, session.begin():
        return await state.owners.ensure_owner(session, f"user:{prefix}-{uuid.uuid4().hex[:8]}")


@dataclass
class Seeded:
    owner: OwnerRef
    old_id: uuid.UUID
    new_id: uuid.UUID
    log_ids: list[uuid.UUID]


async def seed(state: AppState, owner: OwnerRef, *, facts: Sequence[str] = ()) -> Seeded:
    """Every kind with history: logs (one summarized, one cold), an insight superseded by another
    and linked to its source logs, preference changes (an immutable key, a deleted key), a skill."""
    p = principal_for(owner)
    async with state.sessionmaker() as session, session.begin():
        batch = LogBatchIn.model_validate(
            {
                "events": [
                    {"session_id": "s1", "agent_id": "coder", "content": "ran the test suite: 3 failures"},
                    {"session_id": "s1", "agent_id": "coder", "content": "fixed the flaky database fixture"},
                    {"session_id": "s2", "content": "deployed to staging", "metadata": {"env": "staging"}},
                ]
            }
        )
        logs = await state.logs.append(session, p, batch)
        await state.logs.embed_pending(session, owner_ids=[owner.id])  # settled, as the worker would
        old = await state.insights.create(
            session, p, InsightCreate(content="Tests run against SQLite", tags=["testing"], importance=0.4)
        )
        new = await state.insights.create(
            session,
            p,
            InsightCreate(
                content="Tests run against a real PostgreSQL with pgvector",
                tags=["testing", "db"],
                supersedes=old.id,
                source={"type": "job", "ref": "s1"},
            ),
        )
        for fact in facts:
            await state.insights.create(session, p, InsightCreate(content=fact, tags=["work"]))
        await state.insights.import_sources(session, owner.id, [(new.id, logs.ids[0]), (new.id, logs.ids[1])])
        rows = (await session.scalars(select(AgentLog).where(AgentLog.owner_id == owner.id))).all()
        for row in rows:
            if row.id == logs.ids[0]:
                row.summarized_at = row.created_at
                row.tier = "warm"
            if row.id == logs.ids[2]:
                row.tier = "cold"
        for value in ("vim", "emacs"):
            await state.preferences.put(session, p, "editor", PreferencePut(value=value))
        await state.preferences.put(session, p, "language", PreferencePut(value="en-GB", mutable=False))
        await state.preferences.put(session, p, "scratch", PreferencePut(value={"a": 1}))
        await state.preferences.delete(session, p, "scratch")
        await state.skills.create(
            session,
            p,
            SkillCreate(name="release", description="cut a release", instructions="1. tag\n2. push", tags=["ops"]),
        )
    return Seeded(owner=owner, old_id=old.id, new_id=new.id, log_ids=list(logs.ids))


async def export_lines_of(state: AppState, owners: Sequence[OwnerRef], **options: Any) -> list[bytes]:
    async with state.sessionmaker() as session, session.begin():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return [dump_line(r) async for r in export_records(session, owners, **options)]


async def lines_of(lines: Sequence[bytes]) -> AsyncIterator[bytes]:
    for line in lines:
        yield line


async def import_lines(target: AppState, lines: Sequence[bytes], **options: Any) -> Any:
    service = target.portability
    options.setdefault("principal", None)
    return await service.import_stream(target.sessionmaker, lines_of(lines), **options)


async def insights_of(state: AppState, owner_id: uuid.UUID) -> list[Insight]:
    async with state.sessionmaker() as session:
        stmt = select(Insight).where(Insight.owner_id == owner_id).order_by(Insight.created_at, Insight.id)
        return list((await session.scalars(stmt)).all())


__all__ = ["ADMIN_KEY"]
