"""Agent logs: append-only events, searchable by keyword at once and by meaning within a bounded delay."""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from embeddings import Embedder, EmbeddingError, content_hash
from mosaic_memory.common.schemas import Page, check_json_size, make_page
from mosaic_memory.common.secret_scan import SecretCheck
from mosaic_memory.config import Settings
from mosaic_memory.errors import Conflict, ContentTooLarge, InvalidInput, LogNotFound, PermissionDenied
from mosaic_memory.logs.repository import LogRepository
from mosaic_memory.logs.schemas import LogBatchIn, LogBatchOut, LogOut, LogSessionOut
from mosaic_memory.logs.spec import log_text
from mosaic_memory.models import AgentLog, new_id, utc_now
from mosaic_memory.owners.schemas import OwnerRef, Principal
from mosaic_memory.owners.service import OwnerService

__all__ = ["LogService", "decode_log_cursor", "encode_log_cursor", "log_out"]

log = logging.getLogger("mosaic_memory.logs")

METADATA_LIMIT = 64 * 1024


def log_out(row: AgentLog, owner: OwnerRef, *, embedded: bool) -> LogOut:
    return LogOut(
        id=row.id,
        owner=owner.label,
        session_id=row.session_id,
        agent_id=row.agent_id,
        level=row.level,
        content=row.content,
        metadata=dict(row.metadata_ or {}),
        occurred_at=row.occurred_at,
        created_at=row.created_at,
        tier=row.tier,
        embedded=embedded,
        summarized_at=row.summarized_at,
    )


def encode_log_cursor(occurred_at: datetime, seq: int) -> str:
    raw = json.dumps([occurred_at.isoformat(), seq]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_log_cursor(cursor: str) -> tuple[datetime, int]:
    """Raises InvalidInput for anything but a ``next_cursor`` this service produced."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        occurred, seq = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = datetime.fromisoformat(occurred)
        if not isinstance(seq, int) or isinstance(seq, bool) or when.tzinfo is None:
            raise ValueError(cursor)
        return when, seq
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidInput("cursor is malformed; pass the next_cursor of a previous page") from None


class LogService:
    """Appends and reads agent log events for a principal's owners.

    Guarantees: a call stores all of its events or none; events come back in
    ``(occurred_at, seq)`` order, ``seq`` being insertion order; every event is found by
    keyword as soon as the write commits; a write waits for the model at most
    ``logs.embed_inline_budget_ms`` (larger batches, a slow model or a failing provider leave
    rows pending for :meth:`embed_pending`, which the background embedder calls); credentials in
    content and metadata are redacted before the events are stored or embedded (or the call is
    refused, by ``secrets.mode``).
    Raises InvalidInput, ContentTooLarge, PermissionDenied, OwnerNotFound, LogNotFound, SecretDetected.
    """

    def __init__(self, *, embedder: Embedder, settings: Settings, clock: Callable[[], datetime] = utc_now) -> None:
        self.embedder = embedder
        self.settings = settings
        self.clock = clock
        # Set after a commit that left rows pending: wakes the background embedder at once.
        self.pending_event = asyncio.Event()
        self._measured_rate: float | None = None

    @property
    def texts_per_s(self) -> float:
        """The throughput the inline decision assumes: the configured figure, or less if measured so."""
        configured = self.settings.logs.embed_texts_per_s
        return configured if self._measured_rate is None else min(configured, self._measured_rate)

    @property
    def inline_max_events(self) -> int:
        """The largest batch a write embeds inline (``budget × texts_per_s``)."""
        return int(self.settings.logs.embed_inline_budget_ms / 1000 * self.texts_per_s)

    def record_throughput(self, texts: int, seconds: float) -> None:
        """Fold one embedding call into the measured rate (a moving average over recent calls).

        Calls of few texts are skipped: their fixed overhead would understate the model's rate.
        A host slower than configured (shared cores, a busy model) so shrinks the inline limit.
        """
        if texts < 16 or seconds <= 0:
            return
        rate = texts / seconds
        self._measured_rate = rate if self._measured_rate is None else 0.7 * self._measured_rate + 0.3 * rate

    async def _timed_embed(self, texts: Sequence[str]) -> Any:
        started = time.perf_counter()
        vectors = await self.embedder.embed_documents(texts)
        self.record_throughput(len(texts), time.perf_counter() - started)
        return vectors

    def notify_pending(self) -> None:
        """Call after committing a write that returned ``pending > 0``."""
        self.pending_event.set()

    def _validate(self, principal: Principal, batch: LogBatchIn) -> None:
        cfg = self.settings.logs
        if len(batch.events) > cfg.max_events_per_call:
            raise InvalidInput(f"a call holds at most {cfg.max_events_per_call} events, got {len(batch.events)}")
        limit = self.settings.max_content_bytes
        for i, event in enumerate(batch.events):
            size = len(event.content.encode())
            if size > limit:
                raise ContentTooLarge(size, limit)
            if event.metadata:
                check_json_size(event.metadata, METADATA_LIMIT, f"events[{i}].metadata")
            bound = principal.agent_id
            if bound is not None and event.agent_id is not None and event.agent_id != bound:
                raise PermissionDenied(
                    f"this key is bound to agent {bound!r} and cannot write events of agent {event.agent_id!r}"
                )

    async def append(self, session: AsyncSession, principal: Principal, batch: LogBatchIn) -> LogBatchOut:
        """Store every event of ``batch`` for one owner; embed inline only within the budget.

        Credentials in the content and metadata are redacted (or refused) first, per
        ``secrets.mode``. An event with a client-chosen ``id`` the owner already holds is a
        duplicate: not stored again, its id answered, counted in ``duplicates`` (so a client may
        re-send a batch whose answer it never saw). The same id with other content raises Conflict.
        """
        self._validate(principal, batch)
        check = SecretCheck(self.settings.secrets.mode)
        contents = [check.text(e.content) for e in batch.events]
        metadata = [check.json(e.metadata) for e in batch.events]
        owner = OwnerService.resolve_owner(principal, batch.owner)
        now = self.clock()
        repo = LogRepository(session)
        all_texts = [log_text(content) for content in contents]
        given = [e.id for e in batch.events if e.id is not None]
        stored = await repo.existing_ids(owner.id, given)
        ids: list[uuid.UUID] = []
        fresh: list[int] = []
        for i, event in enumerate(batch.events):
            if event.id is None:
                ids.append(new_id())
                fresh.append(i)
                continue
            known, digest = stored.get(event.id), content_hash(all_texts[i])
            if known is None:
                stored[event.id] = digest  # a repeat later in this batch is a duplicate
                fresh.append(i)
            elif known != digest:
                raise Conflict(f"log event {event.id} is already stored with other content")
            ids.append(event.id)
        texts = [all_texts[i] for i in fresh]
        vectors = await self._embed_within_budget(texts) if texts else []
        rows: list[dict[str, Any]] = []
        for n, i in enumerate(fresh):
            event = batch.events[i]
            rows.append(
                {
                    "owner_id": owner.id,
                    "id": ids[i],
                    "session_id": event.session_id,
                    "agent_id": event.agent_id or principal.agent_id,
                    "level": event.level,
                    "content": contents[i],
                    "content_hash": content_hash(texts[n]),
                    "metadata_": metadata[i],
                    "occurred_at": event.occurred_at or now,
                    "created_at": now,
                    "tier": "hot",
                    "embedding": None if vectors is None else vectors[n],
                    "embedding_model": None if vectors is None else self.embedder.model_id,
                }
            )
        if given:  # a concurrent call may have stored one of these ids since the check
            inserted = await repo.insert_new(rows)
            raced = [r for r in rows if r["id"] not in inserted]
            if raced:  # a duplicate when it stored the same content, a conflict otherwise
                now_stored = await repo.existing_ids(owner.id, [r["id"] for r in raced])
                for r in raced:
                    if now_stored.get(r["id"]) != r["content_hash"]:
                        raise Conflict(f"log event {r['id']} is already stored with other content")
            rows = [r for r in rows if r["id"] in inserted]
        else:
            await repo.insert_many(rows)
        return LogBatchOut(
            ids=ids,
            count=len(rows),
            pending=0 if vectors is not None else len(rows),
            duplicates=len(batch.events) - len(rows),
            secrets_redacted=check.count,
        )

    async def _embed_within_budget(self, texts: Sequence[str]) -> list[Any] | None:
        """Vectors for ``texts`` (input order) if the model can give them within the budget, else None."""
        cfg = self.settings.logs
        distinct = list(dict.fromkeys(texts))
        if len(distinct) > self.inline_max_events:
            return None
        started = time.perf_counter()
        try:
            found = await asyncio.wait_for(self._timed_embed(distinct), timeout=cfg.embed_inline_budget_ms / 1000)
        except TimeoutError:
            # The model is slower than assumed: count the overrun as a measurement, so the next
            # batches of this size go to the background embedder without waiting first.
            self.record_throughput(len(distinct), time.perf_counter() - started)
            log.info("inline embedding of %d log events overran the budget; deferred", len(distinct))
            return None
        except EmbeddingError as exc:
            # A failing provider must not lose logs: store them, embed later.
            log.warning("inline embedding failed (%s); %d log events deferred", exc, len(distinct))
            return None
        by_text = dict(zip(distinct, found, strict=True))
        return [by_text[t] for t in texts]

    async def embed_pending(
        self, session: AsyncSession, limit: int | None = None, *, owner_ids: Sequence[uuid.UUID] | None = None
    ) -> int:
        """Embed up to ``limit`` pending hot/warm events (oldest first); returns how many.

        Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so concurrent callers (replicas) split
        the backlog; the caller commits. Raises EmbeddingError when the provider fails (the
        rows stay pending).
        """
        repo = LogRepository(session)
        pending = await repo.claim_unembedded(limit or self.settings.logs.embed_batch_size, owner_ids)
        if not pending:
            return 0
        distinct = list(dict.fromkeys(log_text(content) for _, _, content in pending))
        vectors = dict(zip(distinct, await self._timed_embed(distinct), strict=True))
        await repo.set_embeddings([(o, i, vectors[log_text(c)]) for o, i, c in pending], self.embedder.model_id)
        return len(pending)

    async def sessions(
        self, session: AsyncSession, principal: Principal, *, owner: str | None = None, limit: int = 50
    ) -> builtins.list[LogSessionOut]:
        """The caller's agent sessions (events without a session count as one), latest activity first."""
        owners = OwnerService.resolve_read_owners(principal, owner)
        rows = await LogRepository(session).sessions([o.id for o in owners], limit=limit)
        return [
            LogSessionOut(
                owner=principal.owner_by_id(owner_id).label, session_id=sid, events=n, first_at=first, last_at=last
            )
            for owner_id, sid, n, first, last in rows
        ]

    async def pending_count(self, session: AsyncSession, principal: Principal) -> int:
        return await LogRepository(session).count_unembedded(principal.owner_ids)

    async def pending_total(self, session: AsyncSession) -> int:
        """Events of every owner still waiting for their vector: an operator's gauge (a count,
        no rows), never answered to a caller."""
        return await LogRepository(session).count_unembedded(None)

    async def get(self, session: AsyncSession, principal: Principal, log_id: uuid.UUID) -> LogOut:
        found = await LogRepository(session).get(principal.owner_ids, log_id)
        if found is None:
            raise LogNotFound(log_id)
        row, embedded = found
        return log_out(row, principal.owner_by_id(row.owner_id), embedded=embedded)

    async def list(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        limit: int = 100,
        cursor: str | None = None,
        owner: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        level: str | None = None,
        cited_by: uuid.UUID | None = None,
    ) -> Page[LogOut]:
        """Oldest first; ``next_cursor`` is set while more events match. ``cited_by``: only the
        events that insight was summarized from (its visibility is the caller's to check)."""
        owners = OwnerService.resolve_read_owners(principal, owner)
        after = decode_log_cursor(cursor) if cursor else None
        rows = await LogRepository(session).list(
            [o.id for o in owners],
            limit=limit + 1,
            after=after,
            session_id=session_id,
            agent_id=agent_id,
            level=level,
            cited_by=cited_by,
        )
        return make_page(
            rows,
            limit,
            item=lambda pair: log_out(pair[0], principal.owner_by_id(pair[0].owner_id), embedded=pair[1]),
            cursor=lambda pair: encode_log_cursor(pair[0].occurred_at, pair[0].seq),
        )

    # import (portability) -------------------------------------------------------------------
    async def store_embeddings(
        self, session: AsyncSession, items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]], model_id: str
    ) -> None:
        """Keep vectors computed elsewhere (the summarizer) for ``(owner_id, id, vector)`` logs."""
        await LogRepository(session).set_embeddings(items, model_id)

    async def import_rows(
        self, session: AsyncSession, owner_id: uuid.UUID, rows: Sequence[dict[str, Any]]
    ) -> builtins.list[tuple[str, uuid.UUID]]:
        """Append events read from an export, keeping ids, times, tier and summarized state.

        ``rows`` are attribute dicts (as :meth:`LogRepository.insert_many` takes) with
        ``embedding`` None where the file had no usable vector; those are embedded now unless
        cold (cold rows are keyword-only by design). Returns per row ``(outcome, id kept)``:
        ``duplicate`` when the same id with the same content, or the same event (time, session,
        agent, level, content hash), is already stored; else ``added`` (a new id when the
        original is taken by another event). ``seq`` is assigned anew in the given order.
        """
        repo = LogRepository(session)
        for row in rows:
            row["owner_id"] = owner_id
            row["content_hash"] = content_hash(row["content"])
        by_id = await repo.existing_ids(owner_id, [r["id"] for r in rows])
        events = await repo.same_events(owner_id, [r["occurred_at"] for r in rows])
        out: builtins.list[tuple[str, uuid.UUID]] = []
        fresh: builtins.list[dict[str, Any]] = []
        for row in rows:
            key = (row["occurred_at"], row["session_id"], row["agent_id"], row["level"], row["content_hash"])
            if by_id.get(row["id"]) == row["content_hash"]:
                out.append(("duplicate", row["id"]))
                continue
            if key in events:
                out.append(("duplicate", events[key]))
                continue
            if row["id"] in by_id:
                row["id"] = new_id()
            fresh.append(row)
            out.append(("added", row["id"]))
        need = [r for r in fresh if r.get("embedding") is None and r.get("tier") != "cold"]
        if need:
            distinct = list(dict.fromkeys(r["content"] for r in need))
            vectors = dict(zip(distinct, await self._timed_embed(distinct), strict=True))
            for r in need:
                r["embedding"] = vectors[r["content"]]
                r["embedding_model"] = self.embedder.model_id
        for r in fresh:
            if r.get("embedding") is None:
                r["embedding_model"] = None
        await repo.insert_many(fresh)
        return out
