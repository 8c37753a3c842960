"""Insights: learned facts, deduplicated on write, superseded rather than deleted."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from embeddings import Embedder, content_hash
from mosaic_memory.common.schemas import Page, Source, check_json_size, decode_cursor, encode_cursor, make_page
from mosaic_memory.common.secret_scan import SecretCheck
from mosaic_memory.common.vectors import ScanPlan
from mosaic_memory.config import Settings
from mosaic_memory.errors import Conflict, ContentTooLarge, InsightNotFound, InvalidInput
from mosaic_memory.insights.repository import InsightRepository
from mosaic_memory.insights.schemas import InsightBatchOut, InsightCreate, InsightOut, InsightUpdate
from mosaic_memory.insights.spec import insight_text
from mosaic_memory.models import Insight, new_id, utc_now
from mosaic_memory.owners.schemas import OwnerRef, Principal
from mosaic_memory.owners.service import OwnerService

__all__ = ["InsightService", "insight_out"]


def insight_out(row: Insight, owner: OwnerRef, *, merged: bool = False, deduplicated: bool = False) -> InsightOut:
    return InsightOut(
        id=row.id,
        owner=owner.label,
        content=row.content,
        category=row.category,
        tags=list(row.tags or []),
        metadata=dict(row.metadata_ or {}),
        importance=row.importance,
        confidence=row.confidence,
        pinned=row.pinned,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        superseded_by=row.superseded_by,
        expires_at=row.expires_at,
        access_count=row.access_count,
        last_accessed_at=row.last_accessed_at,
        source=Source.model_validate({"type": row.source_type, "ref": row.source_ref}),
        embedding_model=row.embedding_model,
        created_at=row.created_at,
        updated_at=row.updated_at,
        merged=merged,
        deduplicated=deduplicated,
    )


class InsightService:
    """Stores and edits insights for a principal's owners.

    Guarantees: identical content for one owner is stored once (the existing id comes back);
    content whose embedding is at least ``policy.insights.dedup_threshold`` similar to a current
    insight of the same owner is merged into it; nothing is embedded twice for the same text;
    credentials in content and metadata are redacted before anything else sees them (or the
    write is refused, by ``secrets.mode``), and counted in ``secrets_redacted``.
    Raises InvalidInput, ContentTooLarge, InsightNotFound, OwnerNotFound, Conflict, SecretDetected.
    """

    def __init__(self, *, embedder: Embedder, settings: Settings, clock: Callable[[], datetime] = utc_now) -> None:
        self.embedder = embedder
        self.settings = settings
        self.clock = clock

    @property
    def dedup_threshold(self) -> float | None:
        return self.settings.policy.insights.dedup_threshold

    def _check_size(self, data: InsightCreate | InsightUpdate) -> None:
        limit = self.settings.max_content_bytes
        if data.content is not None:
            size = len(data.content.encode())
            if size > limit:
                raise ContentTooLarge(size, limit)
        if data.metadata is not None:
            check_json_size(data.metadata, 64 * 1024, "metadata")

    async def create(self, session: AsyncSession, principal: Principal, data: InsightCreate) -> InsightOut:
        return (await self.create_many(session, principal, [data])).items[0]

    async def create_many(
        self,
        session: AsyncSession,
        principal: Principal,
        items: Sequence[InsightCreate],
        *,
        before_merge: Callable[[Insight], None] | None = None,
    ) -> InsightBatchOut:
        """``before_merge`` sees each existing row just before a near-duplicate is merged into it
        (jobs record its prior state there, to be able to roll the merge back)."""
        if len(items) > self.settings.max_batch_items:
            raise InvalidInput(f"a batch holds at most {self.settings.max_batch_items} items, got {len(items)}")
        for item in items:
            self._check_size(item)
        items, redacted = self._without_secrets(items)
        repo = InsightRepository(session)
        now = self.clock()
        owners = [OwnerService.resolve_owner(principal, item.owner) for item in items]
        results: list[InsightOut | None] = [None] * len(items)

        # 1. identical content: the existing row answers (within the batch too).
        hashes = [content_hash(insight_text(item.content)) for item in items]
        pending: dict[tuple[uuid.UUID, str], list[int]] = {}
        for owner in {o.id: o for o in owners}.values():
            existing = await repo.by_hashes(owner.id, [h for h, o in zip(hashes, owners, strict=True) if o == owner])
            for i, (h, o) in enumerate(zip(hashes, owners, strict=True)):
                if o.id == owner.id and h in existing:
                    results[i] = insight_out(existing[h], owner, deduplicated=True)
        for i, (h, o) in enumerate(zip(hashes, owners, strict=True)):
            if results[i] is None:
                pending.setdefault((o.id, h), []).append(i)
        if not pending:
            return self._batch_out(results, redacted)

        # 2. embed each distinct new text once, then plan each owner's near-duplicate lookup. The
        # plan needs no vector and could run while the model embeds, but on 2 cores the model's
        # threads and the count compete: measured, the count took 8.7 ms instead of 4 and a
        # write spent ~2.5 ms more CPU, for no gain in latency.
        firsts = [idx[0] for idx in pending.values()]
        threshold = self.dedup_threshold
        by_owner: dict[uuid.UUID, list[int]] = {}
        for pos, i in enumerate(firsts):
            by_owner.setdefault(owners[i].id, []).append(pos)
        vectors = await self.embedder.embed_documents([insight_text(items[i].content) for i in firsts])
        plans = {o: await self._nearest_plan(repo, o) for o in by_owner} if threshold is not None else {}

        # 3. near-duplicates merge into the closest current insight of the same owner.
        created: list[Insight] = []
        created_from: list[int] = []
        merged_rows: dict[int, Insight] = {}
        for owner_id, positions in by_owner.items():
            nearest: list[tuple[uuid.UUID, float] | None] = [None] * len(positions)
            stored: dict[uuid.UUID, Insight] = {}
            if threshold is not None:
                nearest = await repo.nearest_current(owner_id, vectors[positions], plans[owner_id])
                # Every stored merge target of the batch, locked in one round trip.
                wanted = [
                    near[0]
                    for near, pos in zip(nearest, positions, strict=True)
                    if near is not None and near[1] >= threshold and items[firsts[pos]].supersedes is None
                ]
                stored = await repo.many_for_update(owner_id, wanted)
            accepted: list[tuple[int, Insight]] = []  # (position, row) new in this batch
            for slot, pos in enumerate(positions):
                i = firsts[pos]
                item = items[i]
                if threshold is not None and item.supersedes is None:
                    target = self._near_duplicate(nearest[slot], stored, vectors, pos, accepted)
                    if target is not None:
                        if before_merge is not None:
                            before_merge(target)
                        self._merge(target, item, now)
                        merged_rows[i] = target
                        continue
                row = self._new_row(item, owner_id, hashes[i], vectors[pos], now)
                accepted.append((pos, row))
                created.append(row)
                created_from.append(i)
        await repo.add_all(created)
        for row, i in zip(created, created_from, strict=True):
            item = items[i]
            if item.supersedes is not None:
                await self._supersede(repo, principal, item.supersedes, row, now)
        await session.flush()

        by_key = {(row.owner_id, row.content_hash): row for row in created}
        for (owner_id, h), indices in pending.items():
            owner = principal.owner_by_id(owner_id)
            first = indices[0]
            if first in merged_rows:
                for i in indices:
                    results[i] = insight_out(merged_rows[first], owner, merged=True)
            else:
                row = by_key[(owner_id, h)]
                results[first] = insight_out(row, owner)
                for i in indices[1:]:
                    results[i] = insight_out(row, owner, deduplicated=True)
        return self._batch_out(results, redacted)

    async def nearest_current(
        self, session: AsyncSession, owner_id: uuid.UUID, vectors: np.ndarray
    ) -> list[tuple[uuid.UUID, float] | None]:
        """For each vector, the owner's most similar current insight and its cosine (the write
        path's near-duplicate plan); the summarizer's contradiction check asks this."""
        repo = InsightRepository(session)
        return await repo.nearest_current(owner_id, vectors, await self._nearest_plan(repo, owner_id))

    async def _nearest_plan(
        self, repo: InsightRepository, owner_id: uuid.UUID, *, exclude_origin: str | None = None
    ) -> ScanPlan:
        search = self.settings.search
        return await repo.nearest_plan(
            owner_id, scan=search.scan_policy(), ef_search=search.hnsw_ef_search, exclude_origin=exclude_origin
        )

    async def row(self, session: AsyncSession, owner_id: uuid.UUID, insight_id: uuid.UUID) -> Insight | None:
        """The stored insight (a job's view: no principal, the owner given by the caller)."""
        return await InsightRepository(session).get([owner_id], insight_id)

    def _without_secrets(self, items: Sequence[InsightCreate]) -> tuple[list[InsightCreate], list[int]]:
        """The items with credentials redacted from content and metadata, and how many per item.
        Raises SecretDetected (refuse mode) before anything is looked up or written."""
        check = SecretCheck(self.settings.secrets.mode)
        cleaned: list[InsightCreate] = []
        counts: list[int] = []
        for item in items:
            before = check.count
            content = check.text(item.content)
            metadata = check.json(item.metadata)
            counts.append(check.count - before)
            changed = counts[-1] > 0
            cleaned.append(item.model_copy(update={"content": content, "metadata": metadata}) if changed else item)
        return cleaned, counts

    @staticmethod
    def _batch_out(results: Sequence[InsightOut | None], redacted: Sequence[int]) -> InsightBatchOut:
        items: list[InsightOut] = []
        for result, count in zip(results, redacted, strict=True):
            if result is not None:
                result.secrets_redacted = count
                items.append(result)
        created = sum(1 for r in items if not r.merged and not r.deduplicated)
        return InsightBatchOut(
            items=items, created=created, merged=sum(1 for r in items if r.merged), secrets_redacted=sum(redacted)
        )

    def _near_duplicate(
        self,
        nearest: tuple[uuid.UUID, float] | None,
        stored: dict[uuid.UUID, Insight],
        vectors: np.ndarray,
        pos: int,
        accepted: list[tuple[int, Insight]],
    ) -> Insight | None:
        """The row to merge into: the closer of the stored nearest (``stored`` holds it, locked,
        unless it was deleted meanwhile) and the batch's own new rows, at the threshold or above."""
        threshold = self.dedup_threshold
        assert threshold is not None
        best: tuple[float, Insight] | None = None
        if nearest is not None and nearest[1] >= threshold and nearest[0] in stored:
            best = (nearest[1], stored[nearest[0]])
        if accepted:
            sims = vectors[[p for p, _ in accepted]] @ vectors[pos]
            j = int(np.argmax(sims))
            if sims[j] >= threshold and (best is None or sims[j] > best[0]):
                best = (float(sims[j]), accepted[j][1])
        return None if best is None else best[1]

    def _new_row(self, item: InsightCreate, owner_id: uuid.UUID, h: str, vector: Any, now: datetime) -> Insight:
        expires_at = item.expires_at
        if item.ttl_seconds is not None:
            expires_at = now + timedelta(seconds=item.ttl_seconds)
        return Insight(
            owner_id=owner_id,
            id=new_id(),
            content=item.content,
            content_hash=h,
            category=item.category,
            tags=sorted(set(item.tags)),
            metadata_=item.metadata,
            importance=item.importance,
            confidence=item.confidence,
            pinned=item.pinned,
            valid_from=now,
            expires_at=expires_at,
            access_count=0,
            source_type=item.source.type,
            source_ref=item.source.ref,
            embedding=vector,
            embedding_model=self.embedder.model_id,
            created_at=now,
            updated_at=now,
        )

    @staticmethod
    def _merge(target: Insight, item: InsightCreate, now: datetime) -> None:
        """Fold a near-duplicate into ``target``: tags unite, importance and confidence keep the max."""
        target.tags = sorted(set(target.tags or []) | set(item.tags))
        target.importance = max(target.importance, item.importance)
        target.confidence = max(target.confidence, item.confidence)
        target.pinned = target.pinned or item.pinned
        if item.metadata:
            target.metadata_ = {**(target.metadata_ or {}), **item.metadata}
        if item.category and not target.category:
            target.category = item.category
        target.updated_at = now

    async def _supersede(
        self, repo: InsightRepository, principal: Principal, old_id: uuid.UUID, new: Insight, now: datetime
    ) -> None:
        old = await repo.get_for_update([new.owner_id], old_id)
        if old is None:
            raise InsightNotFound(old_id)
        if old.superseded_by is not None:
            raise Conflict(f"insight {old_id} is already superseded by {old.superseded_by}")
        old.superseded_by = new.id
        old.valid_to = now
        old.updated_at = now

    async def get(self, session: AsyncSession, principal: Principal, insight_id: uuid.UUID) -> InsightOut:
        row = await InsightRepository(session).get(principal.owner_ids, insight_id)
        if row is None:
            raise InsightNotFound(insight_id)
        return insight_out(row, principal.owner_by_id(row.owner_id))

    async def replaced(self, session: AsyncSession, principal: Principal, insight_id: uuid.UUID) -> list[InsightOut]:
        """The insights this one superseded (its history), oldest first. Raises InsightNotFound."""
        await self.get(session, principal, insight_id)
        rows = await InsightRepository(session).superseded_by(principal.owner_ids, insight_id)
        return [insight_out(r, principal.owner_by_id(r.owner_id)) for r in rows]

    async def list_page(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        limit: int = 50,
        cursor: str | None = None,
        owner: str | None = None,
        tag: str | None = None,
        category: str | None = None,
        include_history: bool = True,
    ) -> Page[InsightOut]:
        owners = OwnerService.resolve_read_owners(principal, owner)
        after = decode_cursor(cursor) if cursor else None
        rows = await InsightRepository(session).recent(
            [o.id for o in owners],
            limit=limit + 1,
            after=after,
            tag=tag,
            category=category,
            include_history=include_history,
        )
        return make_page(
            rows,
            limit,
            item=lambda r: insight_out(r, principal.owner_by_id(r.owner_id)),
            cursor=lambda r: encode_cursor(r.created_at, r.id),
        )

    async def update(
        self, session: AsyncSession, principal: Principal, insight_id: uuid.UUID, data: InsightUpdate
    ) -> InsightOut:
        self._check_size(data)
        check = SecretCheck(self.settings.secrets.mode)
        content = check.optional(data.content)
        metadata = None if data.metadata is None else check.json(data.metadata)
        repo = InsightRepository(session)
        row = await repo.get_for_update(principal.owner_ids, insight_id)
        if row is None:
            raise InsightNotFound(insight_id)
        now = self.clock()
        fields = data.model_fields_set
        if "content" in fields and content is not None and content != row.content:
            h = content_hash(insight_text(content))
            clash = (await repo.by_hashes(row.owner_id, [h])).get(h)
            if clash is not None and clash.id != row.id:
                raise Conflict(f"insight {clash.id} already holds this content")
            row.content = content
            row.content_hash = h
            row.embedding = (await self.embedder.embed_documents([insight_text(content)]))[0]
            row.embedding_model = self.embedder.model_id
        if "tags" in fields and data.tags is not None:
            row.tags = sorted(set(data.tags))
        if "metadata" in fields and metadata is not None:
            row.metadata_ = metadata
        if "superseded_by" in fields and data.superseded_by is not None:
            if data.superseded_by == row.id or await repo.get([row.owner_id], data.superseded_by) is None:
                raise InvalidInput("superseded_by must name another insight of the same owner")
            row.superseded_by = data.superseded_by
            row.valid_to = row.valid_to or now
        for name in ("category", "importance", "confidence", "pinned", "expires_at", "valid_to"):
            if name in fields:
                value = getattr(data, name)
                if value is None and name in ("importance", "confidence", "pinned"):
                    raise InvalidInput(f"{name} cannot be null")
                setattr(row, name, value)
        row.updated_at = now
        await session.flush()
        out = insight_out(row, principal.owner_by_id(row.owner_id))
        out.secrets_redacted = check.count
        return out

    async def delete(self, session: AsyncSession, principal: Principal, insight_id: uuid.UUID) -> None:
        if not await InsightRepository(session).delete(principal.owner_ids, insight_id):
            raise InsightNotFound(insight_id)

    # import (portability) -------------------------------------------------------------------
    async def import_rows(
        self, session: AsyncSession, owner_id: uuid.UUID, rows: Sequence[Insight], *, origin: str
    ) -> list[tuple[str, uuid.UUID]]:
        """Store insights read from an export, keeping their ids, timestamps and history fields.

        ``rows`` are unsaved rows with every column of the export set; ``embedding`` is None
        where the file had no vector usable here (it is embedded now, one batched call).
        Returns, per row, ``(outcome, id kept)``: ``duplicate`` (same content already stored,
        or a merge of this very content already recorded on the kept row), ``merged`` (a
        current row near-duplicate, by this service's policy, of a current insight of the owner
        that does not come from ``origin``; tags unite, importance/confidence keep the max, and
        the merge is recorded in the kept row's ``metadata.merged_from``), or ``added`` (under
        its own id, or a new one when that id is taken). Rows of one origin never merge with
        each other: the exporting instance already applied its policy to them.
        """
        repo = InsightRepository(session)
        now = self.clock()
        out: list[tuple[str, uuid.UUID] | None] = [None] * len(rows)
        original_ids = [row.id for row in rows]
        for row in rows:
            row.owner_id = owner_id
            row.content_hash = content_hash(row.content)
        existing = await repo.by_hashes(owner_id, [row.content_hash for row in rows])
        first_of: dict[str, int] = {}
        repeats: dict[int, int] = {}
        fresh: list[int] = []
        for i, row in enumerate(rows):
            if row.content_hash in existing:
                out[i] = ("duplicate", existing[row.content_hash].id)
            elif row.content_hash in first_of:
                repeats[i] = first_of[row.content_hash]
            else:
                first_of[row.content_hash] = i
                fresh.append(i)
        taken = await repo.existing_ids(owner_id, [rows[i].id for i in fresh])
        for i in fresh:
            if rows[i].id in taken:
                rows[i].id = new_id()
        need = [i for i in fresh if rows[i].embedding is None]
        if need:
            vectors = await self.embedder.embed_documents([insight_text(rows[i].content) for i in need])
            for i, vector in zip(need, vectors, strict=True):
                rows[i].embedding = vector
                rows[i].embedding_model = self.embedder.model_id
        threshold = self.dedup_threshold
        current = [i for i in fresh if rows[i].superseded_by is None and rows[i].valid_to is None]
        if threshold is not None and current:
            matrix = np.asarray([rows[i].embedding for i in current], dtype=np.float32)
            plan = await self._nearest_plan(repo, owner_id, exclude_origin=origin)
            nearest = await repo.nearest_current(owner_id, matrix, plan, exclude_origin=origin)
            targets = await repo.many_for_update(
                owner_id, [near[0] for near in nearest if near is not None and near[1] >= threshold]
            )
            for i, near in zip(current, nearest, strict=True):
                if near is None or near[1] < threshold:
                    continue
                target = targets.get(near[0])
                if target is None:
                    continue
                row = rows[i]
                merged_from = list((target.metadata_ or {}).get("merged_from") or [])
                if any(isinstance(m, dict) and m.get("content_hash") == row.content_hash for m in merged_from):
                    out[i] = ("duplicate", target.id)
                    continue
                theirs = {k: v for k, v in (row.metadata_ or {}).items() if k not in ("origin", "merged_from")}
                item = InsightCreate.model_construct(
                    content=row.content,
                    tags=list(row.tags or []),
                    importance=row.importance,
                    confidence=row.confidence,
                    pinned=row.pinned,
                    metadata=theirs,
                    category=row.category,
                )
                self._merge(target, item, now)
                record = {"id": str(original_ids[i]), "origin": origin, "content_hash": row.content_hash}
                target.metadata_ = {**(target.metadata_ or {}), "merged_from": [*merged_from, record]}
                out[i] = ("merged", target.id)
        added = [i for i in fresh if out[i] is None]
        await repo.add_all([rows[i] for i in added])
        for i in added:
            out[i] = ("added", rows[i].id)
        for i, first in repeats.items():
            kept = out[first]
            assert kept is not None
            out[i] = ("duplicate", kept[1])
        return [o for o in out if o is not None]

    async def import_sources(
        self, session: AsyncSession, owner_id: uuid.UUID, links: Sequence[tuple[uuid.UUID, uuid.UUID]]
    ) -> None:
        """Link imported insights to their source logs, ``(insight_id, log_id)``; existing links stay."""
        await InsightRepository(session).add_sources(owner_id, links)

    async def import_relink(
        self, session: AsyncSession, owner_id: uuid.UUID, among: Sequence[uuid.UUID], old: uuid.UUID, new: uuid.UUID
    ) -> None:
        """After an import kept a successor under another id: the rows ``among`` follow it."""
        await InsightRepository(session).relink_superseded(owner_id, among, old, new)
