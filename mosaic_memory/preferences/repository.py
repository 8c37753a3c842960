"""SQL for preferences and their history. Every method takes the owner scope."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, and_, bindparam, cast, delete, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.common.repository import owned_by, try_add
from mosaic_memory.models import ApiKey, Preference, PreferenceHistory
from mosaic_memory.preferences.spec import preference_text

__all__ = ["PreferenceRepository"]


class PreferenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def render(self, key: str, value: Any) -> str:
        """``preference_text`` for a value not stored yet."""
        json_value = cast(bindparam("value", value, type_=JSONB), JSONB)
        text = await self.session.scalar(select(preference_text(literal(key, Text), json_value)))
        return str(text)

    async def find(self, owner_ids: Sequence[uuid.UUID], key: str, scope: str) -> Sequence[Preference]:
        """The rows for ``(key, scope)`` of each of ``owner_ids`` (at most one per owner)."""
        stmt = select(Preference).where(
            owned_by(Preference.owner_id, owner_ids), Preference.key == key, Preference.scope == scope
        )
        return (await self.session.scalars(stmt)).all()

    async def get_for_update(self, owner_id: uuid.UUID, key: str, scope: str) -> Preference | None:
        stmt = (
            select(Preference)
            .where(Preference.owner_id == owner_id, Preference.key == key, Preference.scope == scope)
            .with_for_update()
        )
        return await self.session.scalar(stmt)

    async def try_add(self, row: Preference) -> bool:
        """Insert ``row``; False (and nothing written) when a concurrent writer created the same key."""
        return await try_add(self.session, row)

    async def delete(self, row: Preference) -> None:
        await self.session.execute(
            delete(Preference).where(Preference.owner_id == row.owner_id, Preference.id == row.id)
        )

    async def list(
        self,
        owner_ids: Sequence[uuid.UUID],
        *,
        limit: int,
        after: tuple[str, str, uuid.UUID] | None = None,
        scope: str | None = None,
        prefix: str | None = None,
    ) -> Sequence[Preference]:
        """Ordered by key, then scope, then id: stable while rows are edited."""
        stmt = select(Preference).where(owned_by(Preference.owner_id, owner_ids))
        if scope is not None:
            stmt = stmt.where(Preference.scope == scope)
        if prefix:
            stmt = stmt.where(func.starts_with(Preference.key, prefix))
        if after is not None:
            key, scope_after, row_id = after
            stmt = stmt.where(
                or_(
                    Preference.key > key,
                    and_(Preference.key == key, Preference.scope > scope_after),
                    and_(Preference.key == key, Preference.scope == scope_after, Preference.id > row_id),
                )
            )
        stmt = stmt.order_by(Preference.key, Preference.scope, Preference.id).limit(limit)
        return (await self.session.scalars(stmt)).all()

    async def add_change(self, change: PreferenceHistory) -> None:
        self.session.add(change)
        await self.session.flush()

    async def owners_with_history(self, owner_ids: Sequence[uuid.UUID], key: str, scope: str) -> set[uuid.UUID]:
        stmt = (
            select(PreferenceHistory.owner_id)
            .where(
                owned_by(PreferenceHistory.owner_id, owner_ids),
                PreferenceHistory.key == key,
                PreferenceHistory.scope == scope,
            )
            .distinct()
        )
        return set((await self.session.scalars(stmt)).all())

    async def history(self, owner_id: uuid.UUID, key: str, scope: str, *, limit: int) -> Sequence[PreferenceHistory]:
        """Newest first; outlives the preference itself (deletes are recorded too)."""
        stmt = (
            select(PreferenceHistory)
            .where(
                PreferenceHistory.owner_id == owner_id,
                PreferenceHistory.key == key,
                PreferenceHistory.scope == scope,
            )
            .order_by(PreferenceHistory.changed_at.desc(), PreferenceHistory.id.desc())
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()

    async def key_prefix(self, user_id: uuid.UUID, key_id: uuid.UUID) -> str | None:
        """The visible prefix of the caller's own API key, to record who made a change."""
        stmt = select(ApiKey.prefix).where(ApiKey.user_id == user_id, ApiKey.id == key_id)
        return await self.session.scalar(stmt)

    # import (portability) -------------------------------------------------------------------
    async def id_taken(self, owner_id: uuid.UUID, preference_id: uuid.UUID) -> bool:
        stmt = select(Preference.id).where(Preference.owner_id == owner_id, Preference.id == preference_id)
        return await self.session.scalar(stmt) is not None

    async def existing_change_ids(self, owner_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        if not ids:
            return set()
        stmt = select(PreferenceHistory.id).where(
            PreferenceHistory.owner_id == owner_id, PreferenceHistory.id.in_(set(ids))
        )
        return set((await self.session.scalars(stmt)).all())

    async def add_changes(self, changes: Sequence[PreferenceHistory]) -> None:
        self.session.add_all(changes)
        await self.session.flush()
