"""SQL for peers, grants and the audit. Grants are filtered here: what is not active is never returned."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.common.repository import owned_by
from mosaic_memory.models import FederationAudit, FederationGrant, FederationPeer, Owner


class PeerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, name: str) -> FederationPeer | None:
        return await self.session.get(FederationPeer, name)

    async def add(self, peer: FederationPeer) -> FederationPeer:
        self.session.add(peer)
        await self.session.flush()
        return peer

    async def list(self) -> Sequence[FederationPeer]:
        return (await self.session.scalars(select(FederationPeer).order_by(FederationPeer.name))).all()

    async def remove(self, name: str) -> bool:
        result = await self.session.execute(delete(FederationPeer).where(FederationPeer.name == name))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def record_contact(
        self,
        name: str,
        *,
        at: datetime,
        latency_ms: float | None,
        cert_not_after: datetime | None,
        error: str | None,
    ) -> None:
        values: dict[str, object] = {"last_error": error}
        if error is None:
            values.update(last_contact_at=at, last_latency_ms=latency_ms)
        if cert_not_after is not None:
            values["cert_not_after"] = cert_not_after
        await self.session.execute(update(FederationPeer).where(FederationPeer.name == name).values(**values))


class GrantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, grant: FederationGrant) -> FederationGrant:
        self.session.add(grant)
        await self.session.flush()
        return grant

    async def get(self, grant_id: uuid.UUID, owner_ids: Sequence[uuid.UUID] | None) -> FederationGrant | None:
        """The grant, if it belongs to one of ``owner_ids`` (None: any owner, for admins)."""
        query = select(FederationGrant).where(FederationGrant.id == grant_id)
        if owner_ids is not None:
            query = query.where(owned_by(FederationGrant.owner_id, owner_ids))
        return (await self.session.scalars(query)).first()

    async def list(
        self, owner_ids: Sequence[uuid.UUID] | None, *, peer: str | None = None
    ) -> Sequence[tuple[FederationGrant, Owner]]:
        query = select(FederationGrant, Owner).join(Owner, Owner.id == FederationGrant.owner_id)
        if owner_ids is not None:
            query = query.where(owned_by(FederationGrant.owner_id, owner_ids))
        if peer is not None:
            query = query.where(FederationGrant.peer == peer)
        rows = await self.session.execute(query.order_by(FederationGrant.created_at))
        return [(g, o) for g, o in rows]

    async def revoke(self, grant: FederationGrant, at: datetime) -> None:
        if grant.revoked_at is None:
            grant.revoked_at = at
            await self.session.flush()

    async def active_for(
        self,
        peer: str,
        recipients: Sequence[str],
        now: datetime,
        *,
        owner_id: uuid.UUID | None = None,
    ) -> Sequence[tuple[FederationGrant, Owner]]:
        """The grants ``peer`` may use right now for one of ``recipients``: not revoked, not expired.

        This is the one place a serving instance decides what a peer may read; every federated
        read goes through it on every request, so a revocation or expiry counts at once."""
        query = (
            select(FederationGrant, Owner)
            .join(Owner, Owner.id == FederationGrant.owner_id)
            .where(
                FederationGrant.peer == peer,
                FederationGrant.recipient.in_(list(recipients)),
                FederationGrant.revoked_at.is_(None),
                FederationGrant.expires_at > now,
            )
        )
        if owner_id is not None:
            query = query.where(FederationGrant.owner_id == owner_id)
        rows = await self.session.execute(query.order_by(FederationGrant.created_at))
        return [(g, o) for g, o in rows]


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: FederationAudit) -> None:
        self.session.add(row)
        await self.session.flush()

    async def list(
        self,
        *,
        peer: str | None = None,
        since: datetime | None = None,
        owner_ids: Sequence[uuid.UUID] | None = None,
        limit: int = 100,
    ) -> Sequence[tuple[FederationAudit, Owner | None]]:
        query = select(FederationAudit, Owner).outerjoin(Owner, Owner.id == FederationAudit.owner_id)
        if peer is not None:
            query = query.where(FederationAudit.peer == peer)
        if since is not None:
            query = query.where(FederationAudit.at >= since)
        if owner_ids is not None:
            query = query.where(owned_by(FederationAudit.owner_id, owner_ids))
        rows = await self.session.execute(query.order_by(FederationAudit.at.desc()).limit(limit))
        return [(a, o) for a, o in rows]
