"""SQL for owners, team membership and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, func, or_, select, text, true, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

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
        rows = await self.session.execute(
            select(Owner.id, Owner.kind, Owner.name).where(_user_and_teams(user_id)).order_by(Owner.name)
        )
        return _split([OwnerRef(id=r.id, kind=r.kind, name=r.name) for r in rows], user_id)

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

    async def by_prefix_with_owners(self, prefix: str) -> tuple[ApiKey | None, OwnerRef | None, tuple[OwnerRef, ...]]:
        """The key of ``prefix``, its user and the user's teams (by name): what every request's
        authentication reads, in one round trip instead of two (the owners ride as three arrays
        on the key's row)."""
        row = (await self.session.execute(_key_with_owners(), {"prefix": prefix})).one_or_none()
        if row is None:
            return None, None, ()
        key, ids, kinds, names = row
        refs = [OwnerRef(id=i, kind=k, name=n) for i, k, n in zip(ids or [], kinds or [], names or [], strict=True)]
        return key, *_split(refs, key.user_id)

    async def list(self, user_id: uuid.UUID | None = None) -> Sequence[ApiKey]:
        stmt = select(ApiKey).order_by(ApiKey.created_at)
        if user_id is not None:
            stmt = stmt.where(ApiKey.user_id == user_id)
        return (await self.session.scalars(stmt)).all()

    async def touch(self, key_id: uuid.UUID, when: datetime) -> None:
        """Record use without ever waiting: if another request holds the row, it is recording it."""
        locked = select(ApiKey.id).where(ApiKey.id == key_id).with_for_update(skip_locked=True).scalar_subquery()
        await self.session.execute(update(ApiKey).where(ApiKey.id == locked).values(last_used_at=when))


@cache
def _key_with_owners() -> Select[Any]:
    """:meth:`ApiKeyRepository.by_prefix_with_owners`'s statement, its prefix the parameter
    ``prefix``: built once, not on every request (~350 Python calls to build it and walk it for
    SQLAlchemy's cache key)."""
    owners = (
        select(
            *(
                func.array_agg(aggregate_order_by(col, Owner.name)).label(col.key)
                for col in (Owner.id, Owner.kind, Owner.name)
            )
        )
        .where(_user_and_teams(ApiKey.user_id))
        .lateral("owners")
    )
    return (
        select(ApiKey, owners.c.id, owners.c.kind, owners.c.name)
        .join(owners, true())
        .where(ApiKey.prefix == bindparam("prefix"))
    )


def _user_and_teams(user_id: Any) -> ColumnElement[bool]:
    """Owners that are the user ``user_id`` (a value or a column) or a team it belongs to."""
    # correlate_except: given a column, the membership is that row's user's, never any key's user's
    teams = select(TeamMember.team_id).where(TeamMember.user_id == user_id).correlate_except(TeamMember)
    return or_(Owner.id == user_id, Owner.id.in_(teams))


def _split(refs: list[OwnerRef], user_id: uuid.UUID) -> tuple[OwnerRef | None, tuple[OwnerRef, ...]]:
    """``refs`` of :func:`_user_and_teams` as the user and its teams."""
    # By the ids' integers, in comprehensions: UUID equality is a Python call, 200 a request for
    # a user in 100 teams.
    user = user_id.int
    return next(iter([o for o in refs if o.id.int == user]), None), tuple([o for o in refs if o.id.int != user])
