"""SQL for owners, team membership and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.models import ApiKey, Owner, TeamMember
from mosaic_memory.owners.schemas import OwnerRef


class OwnerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_bootstrap(self) -> None:
        """Serialise first-start set-up across replicas until the transaction ends: two processes
        starting at once on an empty database would both create the admin user (one then fails)."""
        await self.session.execute(text("SELECT pg_advisory_xact_lock(72786003)"))

    async def get_by_name(self, kind: str, name: str) -> Owner | None:
        return await self.session.scalar(select(Owner).where(Owner.kind == kind, Owner.name == name))

    async def get(self, owner_id: uuid.UUID) -> Owner | None:
        return await self.session.get(Owner, owner_id)

    async def add(self, owner: Owner) -> Owner:
        self.session.add(owner)
        await self.session.flush()
        return owner

    async def list(self, kind: str) -> Sequence[Owner]:
        return (await self.session.scalars(select(Owner).where(Owner.kind == kind).order_by(Owner.name))).all()

    async def user_and_teams(self, user_id: uuid.UUID) -> tuple[OwnerRef | None, tuple[OwnerRef, ...]]:
        """The user and the teams it belongs to (by name), in one statement: every request's
        authentication needs both, and two round trips were a third of its statements. Plain
        columns, not entities: a user in 100 teams cost every request 101 ORM instances."""
        teams = select(TeamMember.team_id).where(TeamMember.user_id == user_id)
        stmt = (
            select(Owner.id, Owner.kind, Owner.name)
            .where(or_(Owner.id == user_id, Owner.id.in_(teams)))
            .order_by(Owner.name)
        )
        refs = [OwnerRef(id=r.id, kind=r.kind, name=r.name) for r in await self.session.execute(stmt)]
        user = next((o for o in refs if o.id == user_id), None)
        return user, tuple(o for o in refs if o.id != user_id)

    async def members_of(self, team_id: uuid.UUID) -> Sequence[Owner]:
        stmt = (
            select(Owner)
            .join(TeamMember, TeamMember.user_id == Owner.id)
            .where(TeamMember.team_id == team_id)
            .order_by(Owner.name)
        )
        return (await self.session.scalars(stmt)).all()

    async def add_member(self, team_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
        existing = await self.session.get(TeamMember, (team_id, user_id))
        if existing is None:
            self.session.add(TeamMember(team_id=team_id, user_id=user_id, role=role))
        else:
            existing.role = role
        await self.session.flush()

    async def remove_member(self, team_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Take ``user_id`` out of ``team_id``; False when it was not a member."""
        existing = await self.session.get(TeamMember, (team_id, user_id))
        if existing is None:
            return False
        await self.session.delete(existing)
        await self.session.flush()
        return True

    async def admin_exists(self) -> bool:
        stmt = (
            select(ApiKey.id)
            .join(Owner, Owner.id == ApiKey.user_id)
            .where(Owner.is_admin.is_(True), ApiKey.revoked_at.is_(None))
            .limit(1)
        )
        return (await self.session.scalar(stmt)) is not None


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        await self.session.flush()
        return key

    async def get(self, key_id: uuid.UUID) -> ApiKey | None:
        return await self.session.get(ApiKey, key_id)

    async def by_prefix(self, prefix: str) -> ApiKey | None:
        return await self.session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))

    async def list(self, user_id: uuid.UUID | None = None) -> Sequence[ApiKey]:
        stmt = select(ApiKey).order_by(ApiKey.created_at)
        if user_id is not None:
            stmt = stmt.where(ApiKey.user_id == user_id)
        return (await self.session.scalars(stmt)).all()

    async def touch(self, key_id: uuid.UUID, when: datetime) -> None:
        """Record use without ever waiting: if another request holds the row, it is recording it."""
        locked = select(ApiKey.id).where(ApiKey.id == key_id).with_for_update(skip_locked=True).scalar_subquery()
        await self.session.execute(update(ApiKey).where(ApiKey.id == locked).values(last_used_at=when))
