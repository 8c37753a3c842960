"""SQL for OAuth clients, authorization codes and tokens. Secrets are looked up by their hash only."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.models import ApiKey, InstanceMeta, OAuthClient, OAuthCode, OAuthToken


class OAuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: OAuthClient | OAuthCode | OAuthToken) -> None:
        """Stage a new row; the edge's commit writes it (the protocol code runs synchronously)."""
        self.session.add(row)

    async def client(self, client_id: str) -> OAuthClient | None:
        return await self.session.get(OAuthClient, client_id)

    async def put_document_client(
        self, client_id: str, name: str, redirect_uris: list[str], metadata: dict[str, Any], when: datetime
    ) -> OAuthClient:
        """Insert or refresh a client known by its metadata document (two requests may race)."""
        values = {
            "client_name": name,
            "redirect_uris": redirect_uris,
            "metadata": metadata,
            "document_fetched_at": when,
        }
        stmt = insert(OAuthClient).values(client_id=client_id, created_at=when, **values)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=["client_id"], set_=values))
        row = await self.session.get(OAuthClient, client_id, populate_existing=True)
        assert row is not None
        return row

    async def code(self, code_hash: str) -> OAuthCode | None:
        """The code, locked until the transaction ends: of two exchanges of one code, the second
        waits for the first and then finds it used."""
        return await self.session.get(OAuthCode, code_hash, with_for_update=True)

    async def token_by_access(self, access_hash: str) -> OAuthToken | None:
        return await self.session.scalar(select(OAuthToken).where(OAuthToken.access_hash == access_hash))

    async def token_by_refresh(self, refresh_hash: str) -> OAuthToken | None:
        """The token pair, locked until the transaction ends (one refresh token, one rotation)."""
        stmt = select(OAuthToken).where(OAuthToken.refresh_hash == refresh_hash).with_for_update()
        return await self.session.scalar(stmt)

    async def revoke_grant(self, grant_id: uuid.UUID, when: datetime, user_id: uuid.UUID | None = None) -> int:
        """Revoke every token of one grant (optionally only if it is ``user_id``'s); returns how many."""
        stmt = update(OAuthToken).where(OAuthToken.grant_id == grant_id, OAuthToken.revoked_at.is_(None))
        if user_id is not None:
            stmt = stmt.where(OAuthToken.user_id == user_id)
        result = await self.session.execute(stmt.values(revoked_at=when))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def live_tokens(self, user_id: uuid.UUID, now: datetime) -> Sequence[tuple[OAuthToken, OAuthClient]]:
        """The user's tokens that can still be used or refreshed (their approving key unrevoked),
        newest first, with their clients."""
        stmt = (
            select(OAuthToken, OAuthClient)
            .join(OAuthClient, OAuthClient.client_id == OAuthToken.client_id)
            .join(ApiKey, ApiKey.id == OAuthToken.api_key_id)
            .where(OAuthToken.user_id == user_id, OAuthToken.revoked_at.is_(None), ApiKey.revoked_at.is_(None))
            .where((OAuthToken.access_expires_at > now) | (OAuthToken.refresh_expires_at > now))
            .order_by(OAuthToken.issued_at.desc())
        )
        return [(t, c) for t, c in (await self.session.execute(stmt)).all()]

    async def meta(self, key: str) -> Any:
        row = await self.session.get(InstanceMeta, key)
        return None if row is None else row.value

    async def put_meta_once(self, key: str, value: Any) -> Any:
        """Store ``value`` under ``key`` unless another process did first; returns the stored value."""
        await self.session.execute(insert(InstanceMeta).values(key=key, value=value).on_conflict_do_nothing())
        return await self.meta(key)
