"""Preferences: key -> JSON value per owner and scope, with a history of every change."""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from embeddings import Embedder, content_hash
from mosaic_memory.common.schemas import Page, check_json_size, make_page
from mosaic_memory.common.secret_scan import SecretCheck
from mosaic_memory.config import Settings
from mosaic_memory.errors import Conflict, ImmutablePreference, InvalidInput, PreferenceNotFound
from mosaic_memory.models import Preference, PreferenceHistory, new_id, utc_now
from mosaic_memory.owners.schemas import OwnerRef, Principal
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.preferences.repository import PreferenceRepository
from mosaic_memory.preferences.schemas import PreferenceChange, PreferenceOut, PreferencePut

__all__ = ["PreferenceService", "preference_out"]


def preference_out(
    row: Preference, owner: OwnerRef, *, created: bool = False, secrets_redacted: int = 0
) -> PreferenceOut:
    return PreferenceOut(
        id=row.id,
        owner=owner.label,
        key=row.key,
        scope=row.scope,
        value=row.value,
        mutable=row.mutable,
        source=row.source,
        embedding_model=row.embedding_model,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created=created,
        secrets_redacted=secrets_redacted,
    )


def change_out(row: PreferenceHistory, owner: OwnerRef) -> PreferenceChange:
    return PreferenceChange(
        id=row.id,
        preference_id=row.preference_id,
        owner=owner.label,
        key=row.key,
        scope=row.scope,
        action=row.action,
        old_value=row.old_value,
        new_value=row.new_value,
        changed_by=row.changed_by,
        source=row.source,
        changed_at=row.changed_at,
    )


def _same_json(a: Any, b: Any) -> bool:
    """JSON equality that tells true from 1 and 1.0 from 1, as jsonb does."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _encode_cursor(row: Preference) -> str:
    raw = json.dumps([row.key, row.scope, str(row.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str, uuid.UUID]:
    try:
        key, scope, row_id = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        return str(key), str(scope), uuid.UUID(row_id)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidInput("cursor is malformed; pass the next_cursor of a previous page") from None


class PreferenceService:
    """Sets, reads and deletes preferences for a principal's owners.

    Guarantees: one row per (owner, scope, key); every create, change and delete is recorded in
    the history with the writer and source; a preference with ``mutable=false`` is never changed
    or deleted by an agent-bound key (ImmutablePreference, nothing written); the text
    ``key: value`` is embedded only when it changed (content hash); credentials in a value are
    redacted before it is stored or embedded (or the write refused, by ``secrets.mode``).
    Raises InvalidInput, ImmutablePreference, PreferenceNotFound, OwnerNotFound, SecretDetected.
    """

    def __init__(self, *, embedder: Embedder, settings: Settings, clock: Callable[[], datetime] = utc_now) -> None:
        self.embedder = embedder
        self.settings = settings
        self.clock = clock

    async def put(self, session: AsyncSession, principal: Principal, key: str, data: PreferencePut) -> PreferenceOut:
        """Create or replace ``key`` in ``data.scope``; ``created`` in the answer tells which."""
        check_json_size(data.value, self.settings.max_content_bytes, "value")
        check = SecretCheck(self.settings.secrets.mode)
        value = check.named(key, data.value)
        if check.count:
            data = data.model_copy(update={"value": value})
        owner = OwnerService.resolve_owner(principal, data.owner)
        repo = PreferenceRepository(session)
        source = data.source or ("agent" if principal.agent_id is not None else "user")
        row = await repo.get_for_update(owner.id, key, data.scope)
        # Read the clock once the row is locked, so history times follow the order writes apply in.
        now = self.clock()
        if row is None:
            text = await repo.render(key, data.value)
            row = Preference(
                owner_id=owner.id,
                id=new_id(),
                key=key,
                scope=data.scope,
                value=data.value,
                mutable=True if data.mutable is None else data.mutable,
                source=source,
                content_hash=content_hash(text),
                embedding=(await self.embedder.embed_documents([text]))[0],
                embedding_model=self.embedder.model_id,
                created_at=now,
                updated_at=now,
            )
            if await repo.try_add(row):
                await self._record(repo, principal, row, "create", None, row.value, now)
                return preference_out(row, owner, created=True, secrets_redacted=check.count)
            # A concurrent request created it first: replace that row instead.
            row = await repo.get_for_update(owner.id, key, data.scope)
            if row is None:
                raise Conflict(f"preference {key!r} changed concurrently; retry")
            now = self.clock()

        self._check_mutable(principal, row)
        mutable = row.mutable if data.mutable is None else data.mutable
        same_value = _same_json(row.value, data.value)
        if same_value and row.mutable == mutable:
            return preference_out(row, owner, secrets_redacted=check.count)
        old_value = row.value
        if not same_value:
            text = await repo.render(key, data.value)
            h = content_hash(text)
            if h != row.content_hash or row.embedding_model != self.embedder.model_id:
                row.embedding = (await self.embedder.embed_documents([text]))[0]
                row.embedding_model = self.embedder.model_id
                row.content_hash = h
        row.value = data.value
        row.mutable = mutable
        row.source = source
        row.updated_at = now
        await session.flush()
        await self._record(repo, principal, row, "update", old_value, row.value, now)
        return preference_out(row, owner, secrets_redacted=check.count)

    async def get(
        self, session: AsyncSession, principal: Principal, key: str, *, scope: str = "", owner: str | None = None
    ) -> PreferenceOut:
        """The preference of the named owner, or else the user's own, or else a team's."""
        owners = OwnerService.resolve_read_owners(principal, owner)
        rows = {r.owner_id: r for r in await PreferenceRepository(session).find([o.id for o in owners], key, scope)}
        for candidate in owners:
            if candidate.id in rows:
                return preference_out(rows[candidate.id], candidate)
        raise PreferenceNotFound(key, scope, owner)

    async def list(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        limit: int = 100,
        cursor: str | None = None,
        scope: str | None = None,
        owner: str | None = None,
        prefix: str | None = None,
    ) -> Page[PreferenceOut]:
        owners = OwnerService.resolve_read_owners(principal, owner)
        after = _decode_cursor(cursor) if cursor else None
        rows = await PreferenceRepository(session).list(
            [o.id for o in owners], limit=limit + 1, after=after, scope=scope, prefix=prefix
        )
        return make_page(
            rows, limit, item=lambda r: preference_out(r, principal.owner_by_id(r.owner_id)), cursor=_encode_cursor
        )

    async def delete(
        self, session: AsyncSession, principal: Principal, key: str, *, scope: str = "", owner: str | None = None
    ) -> None:
        """Delete the named owner's preference (default the key's user). The history keeps it."""
        target = OwnerService.resolve_owner(principal, owner)
        repo = PreferenceRepository(session)
        row = await repo.get_for_update(target.id, key, scope)
        if row is None:
            raise PreferenceNotFound(key, scope, target.label)
        self._check_mutable(principal, row)
        await repo.delete(row)
        await self._record(repo, principal, row, "delete", row.value, None, self.clock())

    async def history(
        self,
        session: AsyncSession,
        principal: Principal,
        key: str,
        *,
        scope: str = "",
        owner: str | None = None,
        limit: int = 100,
    ) -> builtins.list[PreferenceChange]:
        """Newest change first, for the named owner, or else the user's own, or else a team's."""
        owners = OwnerService.resolve_read_owners(principal, owner)
        repo = PreferenceRepository(session)
        present = await repo.owners_with_history([o.id for o in owners], key, scope)
        for candidate in owners:
            if candidate.id in present:
                return [change_out(r, candidate) for r in await repo.history(candidate.id, key, scope, limit=limit)]
        raise PreferenceNotFound(key, scope, owner)

    @staticmethod
    def _check_mutable(principal: Principal, row: Preference) -> None:
        if not row.mutable and principal.agent_id is not None:
            raise ImmutablePreference(row.key)

    async def _record(
        self,
        repo: PreferenceRepository,
        principal: Principal,
        row: Preference,
        action: str,
        old_value: Any,
        new_value: Any,
        now: datetime,
    ) -> None:
        who = [principal.user.label]
        if principal.key_id is not None:
            prefix = await repo.key_prefix(principal.user.id, principal.key_id)
            if prefix:
                who.append(f"key:{prefix}")
        if principal.agent_id is not None:
            who.append(f"agent:{principal.agent_id}")
        await repo.add_change(
            PreferenceHistory(
                owner_id=row.owner_id,
                id=new_id(),
                preference_id=row.id,
                key=row.key,
                scope=row.scope,
                old_value=old_value,
                new_value=new_value,
                action=action,
                changed_by=" ".join(who)[:256],
                source=row.source if action != "delete" else ("agent" if principal.agent_id else "user"),
                changed_at=now,
            )
        )

    # import (portability) -------------------------------------------------------------------
    async def import_rows(
        self, session: AsyncSession, owner_id: uuid.UUID, rows: builtins.list[Preference], *, origin: str
    ) -> builtins.list[tuple[str, uuid.UUID]]:
        """Store preferences read from an export, keeping id, ``mutable``, source and timestamps.

        Per row ``(outcome, id kept)``: ``added`` (the key is new for the owner); ``duplicate``
        (same value and ``mutable`` already stored); ``merged`` (the stored value differs and
        the file's ``updated_at`` is newer: the file's value replaces it, and the replacement is
        recorded in the history as ``import:ORIGIN``); ``conflict`` (the stored value is newer
        and is kept; the file's history still arrives through :meth:`import_changes`).
        ``embedding`` None means no usable vector: ``key: value`` is embedded here.
        """
        repo = PreferenceRepository(session)
        out: builtins.list[tuple[str, uuid.UUID]] = []
        for row in rows:
            row.owner_id = owner_id
            text = await repo.render(row.key, row.value)
            row.content_hash = content_hash(text)
            current = await repo.get_for_update(owner_id, row.key, row.scope)
            if current is None:
                if await repo.id_taken(owner_id, row.id):
                    row.id = new_id()
                if row.embedding is None:
                    row.embedding = (await self.embedder.embed_documents([text]))[0]
                    row.embedding_model = self.embedder.model_id
                if await repo.try_add(row):
                    out.append(("added", row.id))
                    continue
                current = await repo.get_for_update(owner_id, row.key, row.scope)
                if current is None:
                    raise Conflict(f"preference {row.key!r} changed concurrently; retry")
            if _same_json(current.value, row.value) and current.mutable == row.mutable:
                out.append(("duplicate", current.id))
                continue
            if row.updated_at <= current.updated_at:
                out.append(("conflict", current.id))
                continue
            old_value = current.value
            if current.content_hash != row.content_hash or current.embedding_model != self.embedder.model_id:
                current.embedding = (
                    row.embedding if row.embedding is not None else (await self.embedder.embed_documents([text]))[0]
                )
                current.embedding_model = self.embedder.model_id
                current.content_hash = row.content_hash
            current.value = row.value
            current.mutable = row.mutable
            current.source = row.source
            current.updated_at = row.updated_at
            await session.flush()
            await repo.add_change(
                PreferenceHistory(
                    owner_id=owner_id,
                    id=new_id(),
                    preference_id=current.id,
                    key=current.key,
                    scope=current.scope,
                    old_value=old_value,
                    new_value=current.value,
                    action="update",
                    changed_by=f"import:{origin}"[:256],
                    source=current.source,
                    changed_at=self.clock(),
                )
            )
            out.append(("merged", current.id))
        return out

    async def import_changes(
        self, session: AsyncSession, owner_id: uuid.UUID, rows: builtins.list[PreferenceHistory]
    ) -> builtins.list[tuple[str, uuid.UUID]]:
        """Store history entries read from an export as they were; an id already there is a duplicate."""
        repo = PreferenceRepository(session)
        for row in rows:
            row.owner_id = owner_id
        taken = await repo.existing_change_ids(owner_id, [r.id for r in rows])
        fresh = {r.id: r for r in rows if r.id not in taken}
        await repo.add_changes(list(fresh.values()))
        return [("added" if r.id in fresh and fresh[r.id] is r else "duplicate", r.id) for r in rows]
