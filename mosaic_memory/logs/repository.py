"""SQL for agent logs. Every request-path method takes the owner scope.

The embedding backlog (``claim_unembedded``) is a system-wide queue: it takes an optional
owner scope so tests and per-owner runs can drain only their own rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from mosaic_memory.common.repository import owned_by
from mosaic_memory.models import AgentLog, InsightSource

__all__ = ["LogRepository", "LogRow", "PendingLog"]

PendingLog = tuple[uuid.UUID, uuid.UUID, str]  # (owner_id, id, content)
LogRow = tuple[AgentLog, bool]  # the row (vector not loaded) and whether it has a vector


def _rows() -> Any:
    # Reading events never needs the 384 floats, only whether they are there.
    return select(AgentLog, AgentLog.embedding.is_not(None).label("embedded")).options(defer(AgentLog.embedding))


class LogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sessions(self, owner_ids: Sequence[uuid.UUID], *, limit: int) -> Sequence[Any]:
        """Per owner and session: (owner_id, session_id, events, first, last), latest activity first."""
        last = func.max(AgentLog.occurred_at)
        stmt = (
            select(AgentLog.owner_id, AgentLog.session_id, func.count(), func.min(AgentLog.occurred_at), last)
            .where(owned_by(AgentLog.owner_id, owner_ids))
            .group_by(AgentLog.owner_id, AgentLog.session_id)
            .order_by(last.desc())
            .limit(limit)
        )
        return (await self.session.execute(stmt)).all()

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows given as attribute dicts (one multi-row INSERT per chunk; no RETURNING)."""
        if rows:
            await self.session.execute(insert(AgentLog), list(rows))

    async def insert_new(self, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
        """Insert the rows whose (owner, id) is not taken; the ids inserted. A row a concurrent
        transaction inserted first is skipped (``ON CONFLICT DO NOTHING`` waits for it to end)."""
        if not rows:
            return set()
        stmt = pg_insert(AgentLog).on_conflict_do_nothing(index_elements=["owner_id", "id"]).returning(AgentLog.id)
        return set((await self.session.scalars(stmt, list(rows))).all())

    async def get(self, owner_ids: Sequence[uuid.UUID], log_id: uuid.UUID) -> LogRow | None:
        stmt = _rows().where(owned_by(AgentLog.owner_id, owner_ids), AgentLog.id == log_id)
        found = (await self.session.execute(stmt)).first()
        return None if found is None else (found[0], bool(found[1]))

    async def list(
        self,
        owner_ids: Sequence[uuid.UUID],
        *,
        limit: int,
        after: tuple[datetime, int] | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        level: str | None = None,
        cited_by: uuid.UUID | None = None,
    ) -> Sequence[LogRow]:
        """Events in (occurred_at, seq) order, strictly after ``after``; with ``cited_by``, only the
        events that insight was summarized from (its ``insight_sources`` links)."""
        stmt = _rows().where(owned_by(AgentLog.owner_id, owner_ids))
        if cited_by is not None:
            stmt = stmt.join(
                InsightSource,
                (InsightSource.owner_id == AgentLog.owner_id)
                & (InsightSource.log_id == AgentLog.id)
                & (InsightSource.insight_id == cited_by),
            )
        if session_id is not None:
            stmt = stmt.where(AgentLog.session_id == session_id)
        if agent_id is not None:
            stmt = stmt.where(AgentLog.agent_id == agent_id)
        if level is not None:
            stmt = stmt.where(AgentLog.level == level)
        if after is not None:
            stmt = stmt.where(tuple_(AgentLog.occurred_at, AgentLog.seq) > tuple_(*after))
        stmt = stmt.order_by(AgentLog.occurred_at, AgentLog.seq).limit(limit)
        return [(r[0], bool(r[1])) for r in await self.session.execute(stmt)]

    async def claim_unembedded(self, limit: int, owner_ids: Sequence[uuid.UUID] | None = None) -> Sequence[PendingLog]:
        """Lock up to ``limit`` hot or warm rows without a vector, oldest first.

        ``FOR UPDATE SKIP LOCKED``: two replicas (or the worker and an on-demand drain) never
        claim the same rows; the locks last until the caller's transaction ends. Cold rows are
        never claimed: the tiering job may drop their vectors on purpose (keyword search only).
        """
        stmt = select(AgentLog.owner_id, AgentLog.id, AgentLog.content).where(
            AgentLog.embedding.is_(None), AgentLog.tier != "cold"
        )
        if owner_ids is not None:
            stmt = stmt.where(owned_by(AgentLog.owner_id, owner_ids))
        stmt = stmt.order_by(AgentLog.seq).limit(limit).with_for_update(skip_locked=True)
        return [(r.owner_id, r.id, r.content) for r in await self.session.execute(stmt)]

    async def set_embeddings(self, items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]], model_id: str) -> None:
        """Store vectors for ``(owner_id, id, vector)`` rows claimed by :meth:`claim_unembedded`."""
        if not items:
            return
        params = [{"owner_id": o, "id": i, "embedding": v, "embedding_model": model_id} for o, i, v in items]
        await self.session.execute(update(AgentLog), params)

    async def count_unembedded(self, owner_ids: Sequence[uuid.UUID] | None = None) -> int:
        stmt = select(func.count()).select_from(AgentLog).where(AgentLog.embedding.is_(None), AgentLog.tier != "cold")
        if owner_ids is not None:
            stmt = stmt.where(owned_by(AgentLog.owner_id, owner_ids))
        return int(await self.session.scalar(stmt) or 0)

    async def set_tier(
        self,
        owner_ids: Sequence[uuid.UUID],
        log_ids: Sequence[uuid.UUID],
        tier: str,
        when: datetime,
        *,
        drop_vectors: bool = False,
    ) -> int:
        """Move rows to ``tier`` (for the tiering job); ``drop_vectors`` leaves them keyword-only."""
        values: dict[str, Any] = {"tier": tier, "tier_changed_at": when}
        if drop_vectors:
            values |= {"embedding": None, "embedding_model": None}
        stmt = (
            update(AgentLog)
            .where(owned_by(AgentLog.owner_id, owner_ids), AgentLog.id.in_(log_ids))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        result: Any = await self.session.execute(stmt)
        return int(result.rowcount)

    # import (portability) -------------------------------------------------------------------
    async def existing_ids(self, owner_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Which of ``ids`` the owner already has, with their content hashes."""
        if not ids:
            return {}
        stmt = select(AgentLog.id, AgentLog.content_hash).where(
            AgentLog.owner_id == owner_id, AgentLog.id.in_(set(ids))
        )
        return {r.id: r.content_hash for r in await self.session.execute(stmt)}

    async def same_events(
        self, owner_id: uuid.UUID, times: Sequence[datetime]
    ) -> dict[tuple[datetime, str | None, str | None, str, str], uuid.UUID]:
        """The owner's events at ``times``, keyed by (occurred_at, session, agent, level, content hash)."""
        if not times:
            return {}
        stmt = select(
            AgentLog.id,
            AgentLog.occurred_at,
            AgentLog.session_id,
            AgentLog.agent_id,
            AgentLog.level,
            AgentLog.content_hash,
        ).where(AgentLog.owner_id == owner_id, AgentLog.occurred_at.in_(set(times)))
        return {
            (r.occurred_at, r.session_id, r.agent_id, r.level, r.content_hash): r.id
            for r in await self.session.execute(stmt)
        }
