"""SQL for reading memory out page by page (export). Every method takes the owner scope.

Pages follow the owner-leading indexes (keyset, never OFFSET), and select plain columns rather
than ORM entities, so a million-row export keeps neither an identity map nor a growing offset.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.common.repository import owned_by
from mosaic_memory.common.vectors import binary_vector
from mosaic_memory.models import AgentLog, Insight, InsightSource, InstanceMeta, PreferenceHistory

__all__ = ["ExportRepository"]


def _columns(model: Any, with_vectors: bool) -> list[Any]:
    """Every column but the generated ``search_tsv``; the vector (when asked for) in pgvector's
    binary form: parsing its text form cost half of an export's time."""
    cols: list[Any] = [c for c in model.__table__.c if c.name not in ("search_tsv", "embedding")]
    if with_vectors:
        cols.append(binary_vector(model.embedding).label("embedding"))
    return cols


class ExportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def meta(self, key: str) -> Any:
        row = await self.session.get(InstanceMeta, key)
        return None if row is None else row.value

    async def count(self, model: Any, owner_ids: Sequence[uuid.UUID], tags: Sequence[str] | None = None) -> int:
        stmt = select(func.count()).select_from(model).where(owned_by(model.owner_id, owner_ids))
        if tags:
            stmt = stmt.where(model.tags.overlap(list(tags)))
        return int(await self.session.scalar(stmt) or 0)

    async def logs(
        self, owner_id: uuid.UUID, *, after: tuple[datetime, int] | None, limit: int, with_vectors: bool
    ) -> Sequence[Row[Any]]:
        """In (occurred_at, seq) order, so an import appends them in the order they happened."""
        stmt = select(*_columns(AgentLog, with_vectors)).where(AgentLog.owner_id == owner_id)
        if after is not None:
            stmt = stmt.where(tuple_(AgentLog.occurred_at, AgentLog.seq) > tuple_(*after))
        stmt = stmt.order_by(AgentLog.occurred_at, AgentLog.seq).limit(limit)
        return (await self.session.execute(stmt)).all()

    async def insights(
        self,
        owner_id: uuid.UUID,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
        tags: Sequence[str] | None,
        with_vectors: bool,
    ) -> Sequence[Row[Any]]:
        """Oldest first (a superseded row usually precedes its successor)."""
        stmt = select(*_columns(Insight, with_vectors)).where(Insight.owner_id == owner_id)
        if tags:
            stmt = stmt.where(Insight.tags.overlap(list(tags)))
        if after is not None:
            stmt = stmt.where(tuple_(Insight.created_at, Insight.id) > tuple_(*after))
        stmt = stmt.order_by(Insight.created_at, Insight.id).limit(limit)
        return (await self.session.execute(stmt)).all()

    async def sources(self, owner_id: uuid.UUID, insight_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        if not insight_ids:
            return {}
        stmt = (
            select(InsightSource.insight_id, InsightSource.log_id)
            .where(InsightSource.owner_id == owner_id, InsightSource.insight_id.in_(list(insight_ids)))
            .order_by(InsightSource.insight_id, InsightSource.log_id)
        )
        found: dict[uuid.UUID, list[uuid.UUID]] = {}
        for r in await self.session.execute(stmt):
            found.setdefault(r.insight_id, []).append(r.log_id)
        return found

    async def by_id(
        self,
        model: Any,
        owner_id: uuid.UUID,
        *,
        after: uuid.UUID | None,
        limit: int,
        tags: Sequence[str] | None = None,
        with_vectors: bool = False,
    ) -> Sequence[Row[Any]]:
        """Preferences, preference changes or skills in primary-key order."""
        embedded = model is not PreferenceHistory
        cols = _columns(model, with_vectors) if embedded else [c for c in model.__table__.c]
        stmt = select(*cols).where(model.owner_id == owner_id)
        if tags:
            stmt = stmt.where(model.tags.overlap(list(tags)))
        if after is not None:
            stmt = stmt.where(model.id > after)
        stmt = stmt.order_by(model.id).limit(limit)
        return (await self.session.execute(stmt)).all()
