"""SQL for skills. Every method takes the owner scope."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.common.repository import owned_by, try_add, try_flush
from mosaic_memory.models import Skill

__all__ = ["SkillRepository"]


class SkillRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, owner_ids: Sequence[uuid.UUID], skill_id: uuid.UUID) -> Skill | None:
        return await self.session.scalar(select(Skill).where(owned_by(Skill.owner_id, owner_ids), Skill.id == skill_id))

    async def get_for_update(self, owner_ids: Sequence[uuid.UUID], skill_id: uuid.UUID) -> Skill | None:
        stmt = select(Skill).where(owned_by(Skill.owner_id, owner_ids), Skill.id == skill_id).with_for_update()
        return await self.session.scalar(stmt)

    async def by_name(self, owner_id: uuid.UUID, name: str) -> Skill | None:
        return await self.session.scalar(select(Skill).where(Skill.owner_id == owner_id, Skill.name == name))

    async def try_add(self, row: Skill) -> bool:
        """Insert ``row``; False (nothing written) when the owner already has a skill of that name."""
        return await try_add(self.session, row)

    async def try_flush(self) -> bool:
        """Flush pending changes; False (changes rolled back to the savepoint) on a name clash."""
        return await try_flush(self.session)

    async def delete(self, owner_ids: Sequence[uuid.UUID], skill_id: uuid.UUID) -> bool:
        result: Any = await self.session.execute(
            delete(Skill).where(owned_by(Skill.owner_id, owner_ids), Skill.id == skill_id)
        )
        return bool(result.rowcount)

    async def list(
        self,
        owner_ids: Sequence[uuid.UUID],
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None = None,
        tag: str | None = None,
    ) -> Sequence[Skill]:
        """Newest first."""
        stmt = select(Skill).where(owned_by(Skill.owner_id, owner_ids))
        if after is not None:
            created, row_id = after
            stmt = stmt.where(or_(Skill.created_at < created, and_(Skill.created_at == created, Skill.id < row_id)))
        if tag is not None:
            stmt = stmt.where(Skill.tags.contains([tag]))
        stmt = stmt.order_by(Skill.created_at.desc(), Skill.id.desc()).limit(limit)
        return (await self.session.scalars(stmt)).all()

    async def id_taken(self, owner_id: uuid.UUID, skill_id: uuid.UUID) -> bool:
        stmt = select(Skill.id).where(Skill.owner_id == owner_id, Skill.id == skill_id)
        return await self.session.scalar(stmt) is not None
