"""Skills: procedural memory (name, description, instructions), found by the task at hand."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from embeddings import Embedder, content_hash
from mosaic_memory.common.schemas import Page, check_json_size, decode_cursor, encode_cursor, make_page
from mosaic_memory.common.secret_scan import SecretCheck
from mosaic_memory.config import Settings
from mosaic_memory.errors import ContentTooLarge, SkillExists, SkillNotFound
from mosaic_memory.models import Skill, new_id, utc_now
from mosaic_memory.owners.schemas import OwnerRef, Principal
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.skills.repository import SkillRepository
from mosaic_memory.skills.schemas import SkillCreate, SkillOut, SkillUpdate
from mosaic_memory.skills.spec import skill_text

__all__ = ["SkillService", "skill_out", "skill_text"]

SkillData = TypeVar("SkillData", SkillCreate, SkillUpdate)


def skill_out(row: Skill, owner: OwnerRef, *, secrets_redacted: int = 0) -> SkillOut:
    return SkillOut(
        id=row.id,
        owner=owner.label,
        name=row.name,
        description=row.description,
        instructions=row.instructions,
        tags=list(row.tags or []),
        metadata=dict(row.metadata_ or {}),
        embedding_model=row.embedding_model,
        created_at=row.created_at,
        updated_at=row.updated_at,
        secrets_redacted=secrets_redacted,
    )


class SkillService:
    """Creates, reads, edits and deletes skills for a principal's owners.

    Guarantees: one skill per (owner, name); ``name: description`` is embedded only when it
    changed (content hash); credentials in name, description, instructions and metadata are
    redacted before anything is stored or embedded (or the write refused, by ``secrets.mode``).
    Raises SkillExists, SkillNotFound, ContentTooLarge, InvalidInput, OwnerNotFound, SecretDetected.
    """

    def __init__(self, *, embedder: Embedder, settings: Settings, clock: Callable[[], datetime] = utc_now) -> None:
        self.embedder = embedder
        self.settings = settings
        self.clock = clock

    def _check_size(self, data: SkillCreate | SkillUpdate) -> None:
        limit = self.settings.max_content_bytes
        for text in (data.description, data.instructions):
            if text is not None and len(text.encode()) > limit:
                raise ContentTooLarge(len(text.encode()), limit)
        if data.metadata is not None:
            check_json_size(data.metadata, 64 * 1024, "metadata")

    def _without_secrets(self, data: SkillData) -> tuple[SkillData, int]:
        """``data`` with credentials redacted from its texts, and how many. Raises SecretDetected."""
        check = SecretCheck(self.settings.secrets.mode)
        update = {
            "name": check.optional(data.name),
            "description": check.optional(data.description),
            "instructions": check.optional(data.instructions),
            "metadata": None if data.metadata is None else check.json(data.metadata),
        }
        if not check.count:
            return data, 0
        return data.model_copy(update={k: v for k, v in update.items() if v is not None}), check.count

    async def create(self, session: AsyncSession, principal: Principal, data: SkillCreate) -> SkillOut:
        self._check_size(data)
        data, redacted = self._without_secrets(data)
        owner = OwnerService.resolve_owner(principal, data.owner)
        repo = SkillRepository(session)
        if await repo.by_name(owner.id, data.name) is not None:
            raise SkillExists(data.name, owner.label)
        text = skill_text(data.name, data.description)
        now = self.clock()
        row = Skill(
            owner_id=owner.id,
            id=new_id(),
            name=data.name,
            description=data.description,
            instructions=data.instructions,
            tags=sorted(set(data.tags)),
            metadata_=data.metadata,
            content_hash=content_hash(text),
            embedding=(await self.embedder.embed_documents([text]))[0],
            embedding_model=self.embedder.model_id,
            created_at=now,
            updated_at=now,
        )
        if not await repo.try_add(row):
            raise SkillExists(data.name, owner.label)
        return skill_out(row, owner, secrets_redacted=redacted)

    async def get(self, session: AsyncSession, principal: Principal, skill_id: uuid.UUID) -> SkillOut:
        row = await SkillRepository(session).get(principal.owner_ids, skill_id)
        if row is None:
            raise SkillNotFound(skill_id)
        return skill_out(row, principal.owner_by_id(row.owner_id))

    async def list(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        limit: int = 50,
        cursor: str | None = None,
        owner: str | None = None,
        tag: str | None = None,
    ) -> Page[SkillOut]:
        owners = OwnerService.resolve_read_owners(principal, owner)
        after = decode_cursor(cursor) if cursor else None
        rows = await SkillRepository(session).list([o.id for o in owners], limit=limit + 1, after=after, tag=tag)
        return make_page(
            rows,
            limit,
            item=lambda r: skill_out(r, principal.owner_by_id(r.owner_id)),
            cursor=lambda r: encode_cursor(r.created_at, r.id),
        )

    async def update(
        self, session: AsyncSession, principal: Principal, skill_id: uuid.UUID, data: SkillUpdate
    ) -> SkillOut:
        self._check_size(data)
        data, redacted = self._without_secrets(data)
        repo = SkillRepository(session)
        row = await repo.get_for_update(principal.owner_ids, skill_id)
        if row is None:
            raise SkillNotFound(skill_id)
        owner = principal.owner_by_id(row.owner_id)
        if data.name is not None and data.name != row.name:
            if await repo.by_name(row.owner_id, data.name) is not None:
                raise SkillExists(data.name, owner.label)
            row.name = data.name
        if data.description is not None:
            row.description = data.description
        if data.instructions is not None:
            row.instructions = data.instructions
        if data.tags is not None:
            row.tags = sorted(set(data.tags))
        if data.metadata is not None:
            row.metadata_ = data.metadata
        text = skill_text(row.name, row.description)
        h = content_hash(text)
        if h != row.content_hash or row.embedding_model != self.embedder.model_id:
            row.embedding = (await self.embedder.embed_documents([text]))[0]
            row.embedding_model = self.embedder.model_id
            row.content_hash = h
        row.updated_at = self.clock()
        if not await repo.try_flush():
            raise SkillExists(row.name, owner.label)
        return skill_out(row, owner, secrets_redacted=redacted)

    async def delete(self, session: AsyncSession, principal: Principal, skill_id: uuid.UUID) -> None:
        if not await SkillRepository(session).delete(principal.owner_ids, skill_id):
            raise SkillNotFound(skill_id)

    # import (portability) -------------------------------------------------------------------
    async def import_rows(
        self, session: AsyncSession, owner_id: uuid.UUID, rows: builtins.list[Skill]
    ) -> builtins.list[tuple[str, uuid.UUID]]:
        """Store skills read from an export, keeping id and timestamps.

        Per row ``(outcome, id kept)``: ``added`` (the name is new for the owner); ``duplicate``
        (same description and instructions already stored under that name); ``merged`` (they
        differ and the file's ``updated_at`` is newer: the file's text replaces them, tags unite);
        ``conflict`` (the stored skill is newer and is kept). ``embedding`` None means no usable
        vector: ``name: description`` is embedded here.
        """
        repo = SkillRepository(session)
        out: builtins.list[tuple[str, uuid.UUID]] = []
        for row in rows:
            row.owner_id = owner_id
            text = skill_text(row.name, row.description)
            row.content_hash = content_hash(text)
            current = await repo.by_name(owner_id, row.name)
            if current is None:
                if await repo.id_taken(owner_id, row.id):
                    row.id = new_id()
                if row.embedding is None:
                    row.embedding = (await self.embedder.embed_documents([text]))[0]
                    row.embedding_model = self.embedder.model_id
                if not await repo.try_add(row):
                    raise SkillExists(row.name, str(owner_id))
                out.append(("added", row.id))
                continue
            if current.description == row.description and current.instructions == row.instructions:
                out.append(("duplicate", current.id))
                continue
            if row.updated_at <= current.updated_at:
                out.append(("conflict", current.id))
                continue
            if current.content_hash != row.content_hash or current.embedding_model != self.embedder.model_id:
                current.embedding = (
                    row.embedding if row.embedding is not None else (await self.embedder.embed_documents([text]))[0]
                )
                current.embedding_model = self.embedder.model_id
                current.content_hash = row.content_hash
            current.description = row.description
            current.instructions = row.instructions
            current.tags = sorted(set(current.tags or []) | set(row.tags or []))
            current.updated_at = row.updated_at
            await session.flush()
            out.append(("merged", current.id))
        return out
