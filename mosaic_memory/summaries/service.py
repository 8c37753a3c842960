"""Summarization of agent logs into insights, one group per transaction, and its rollback.

The caller (the ``summarize`` job) owns the transactions: one per group, so an interruption
leaves every group either fully done or untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from embeddings import Embedder
from mosaic_memory.common.schemas import Source
from mosaic_memory.config import Settings
from mosaic_memory.errors import OwnerNotFound
from mosaic_memory.insights.schemas import InsightCreate
from mosaic_memory.insights.service import InsightService
from mosaic_memory.insights.spec import insight_text
from mosaic_memory.logs.service import LogService
from mosaic_memory.logs.spec import log_text
from mosaic_memory.models import AgentLog, Insight, utc_now
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.summaries.repository import MERGE_FIELDS, SUPERSEDE_FIELDS, GroupKey, SummaryRepository
from mosaic_memory.summaries.summarizers import ContradictionJudge, LogLine, Summarizer, SummaryGroup

__all__ = ["GroupKey", "GroupResult", "SummarizationService"]

SUMMARY_TAG = "summary"


@dataclass
class GroupResult:
    key: GroupKey
    logs: int = 0
    texts: list[str] = field(default_factory=list)
    created: list[uuid.UUID] = field(default_factory=list)
    merged: list[uuid.UUID] = field(default_factory=list)
    deduplicated: list[uuid.UUID] = field(default_factory=list)
    superseded: list[uuid.UUID] = field(default_factory=list)
    # What the run's ledger records for this group (rollback reads it back); the job stores it.
    change: dict[str, Any] = field(default_factory=dict)
    # Logs of the group another transaction held past the wait: left unsummarized for the next run.
    skipped_pending: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            **self.key.to_json(),
            "logs": self.logs,
            "skipped_pending": self.skipped_pending,
            "insights": self.texts,
            "created": [str(i) for i in self.created],
            "merged": [str(i) for i in self.merged],
            "deduplicated": [str(i) for i in self.deduplicated],
            "superseded": [str(i) for i in self.superseded],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _snapshot(row: Insight) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in MERGE_FIELDS:
        value = getattr(row, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    out["tags"] = list(row.tags or [])
    return out


def _unsnapshot(data: dict[str, Any]) -> dict[str, Any]:
    fields = {name: data[name] for name in (*MERGE_FIELDS, *SUPERSEDE_FIELDS) if name in data}
    for name in ("updated_at", "valid_to"):
        if fields.get(name):
            fields[name] = datetime.fromisoformat(fields[name])
    if fields.get("superseded_by"):
        fields["superseded_by"] = uuid.UUID(fields["superseded_by"])
    return fields


class SummarizationService:
    """Turns groups of unsummarized logs into insights through :class:`InsightService` (so
    identical text dedups and near-duplicates merge), links each insight to its logs, and marks
    the logs summarized (hot → warm).

    Guarantees: a log is consumed by at most one run (rows are locked, already-summarized rows
    skipped); everything a group changes, and the prior state needed to undo it, is written in
    the caller's transaction. Raises SummarizerUnavailable, SummarizerBudgetExhausted, OwnerNotFound.
    """

    def __init__(
        self,
        *,
        embedder: Embedder,
        insights: InsightService,
        logs: LogService,
        owners: OwnerService,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.embedder = embedder
        self.insights = insights
        self.logs = logs
        self.owners = owners
        self.settings = settings
        self.clock = clock

    @property
    def tz(self) -> str:
        return self.settings.jobs.timezone

    async def pending(self, session: AsyncSession, *, cutoff: datetime) -> list[tuple[GroupKey, int]]:
        return await SummaryRepository(session).pending_groups(cutoff=cutoff, tz=self.tz)

    async def _vectors(self, session: AsyncSession, logs: Sequence[AgentLog]) -> np.ndarray:
        """Stored vectors where they come from the configured model; the rest embedded now. Logs
        still without a vector (the background embedder had not reached them) keep the new one,
        so it is not computed twice; vectors of another model are left to re-embedding."""
        model = self.embedder.model_id
        dims = self.embedder.dimensions
        out = np.zeros((len(logs), dims), dtype=np.float32)
        missing = []
        for i, log in enumerate(logs):
            if log.embedding is not None and log.embedding_model == model and len(log.embedding) == dims:
                out[i] = np.asarray(log.embedding, dtype=np.float32)
            else:
                missing.append(i)
        if missing:
            out[missing] = await self.embedder.embed_documents([log_text(logs[i].content) for i in missing])
            fill = [
                (logs[i].owner_id, logs[i].id, out[i])
                for i in missing
                if logs[i].embedding is None and logs[i].tier != "cold"
            ]
            await self.logs.store_embeddings(session, fill, model)
        return out

    async def _principal(self, session: AsyncSession, owner_id: uuid.UUID) -> Principal:
        ref = await self.owners.owner_by_id(session, owner_id)
        if ref is None:
            raise OwnerNotFound(str(owner_id))
        return Principal(user=ref, key_id=None, scopes=frozenset({"read", "write"}))

    async def _contradictions(
        self, session: AsyncSession, owner_id: uuid.UUID, summarizer: Summarizer, items: list[InsightCreate]
    ) -> list[dict[str, Any]]:
        """Point ``supersedes`` of each new fact that contradicts a related stored insight at it;
        returns the prior state of those insights. Only summarizers that can judge do this."""
        if not items or not isinstance(summarizer, ContradictionJudge):
            return []
        threshold = self.settings.policy.insights.dedup_threshold or 1.0
        low = self.settings.jobs.contradiction_min_similarity
        vectors = await self.embedder.embed_documents([insight_text(item.content) for item in items])
        nearest = await self.insights.nearest_current(session, owner_id, vectors)
        priors: list[dict[str, Any]] = []
        taken: set[uuid.UUID] = set()
        for item, near in zip(items, nearest, strict=True):
            if near is None or near[0] in taken or not low <= near[1] < threshold:
                continue
            old = await self.insights.row(session, owner_id, near[0])
            if old is None or old.pinned or not await summarizer.contradicts(item.content, old.content):
                continue
            taken.add(old.id)
            item.supersedes = old.id
            prior = {name: getattr(old, name) for name in SUPERSEDE_FIELDS}
            priors.append({"id": str(old.id), "prior": {k: _jsonable(v) for k, v in prior.items()}})
        return priors

    async def summarize_group(
        self,
        session: AsyncSession,
        key: GroupKey,
        *,
        summarizer: Summarizer,
        run_id: uuid.UUID,
        now: datetime,
        cutoff: datetime,
    ) -> GroupResult:
        """Summarize one group in ``session``'s transaction; ``result.change`` is what the caller
        must record in the run's ``changes["groups"]`` in the same transaction (rollback needs it)."""
        repo = SummaryRepository(session)
        result = GroupResult(key)
        logs, result.skipped_pending = await repo.lock_group(
            key, cutoff=cutoff, tz=self.tz, wait_s=self.settings.jobs.pending_wait_seconds
        )
        if not logs:
            return result
        result.logs = len(logs)
        group = SummaryGroup(
            session_id=key.session_id,
            day=key.day,
            lines=[LogLine(log.id, log.content, log.agent_id, log.level, log.occurred_at) for log in logs],
            vectors=await self._vectors(session, logs),
        )
        summaries = await summarizer.summarize(group)
        texts = [s.text for s in summaries]
        result.texts = texts
        principal = await self._principal(session, key.owner_id)
        metadata: dict[str, Any] = {"summarizer": summarizer.name}
        if key.session_id is not None:
            metadata["session_id"] = key.session_id
        if key.day is not None:
            metadata["day"] = key.day.isoformat()
        items = [
            InsightCreate(
                content=t,
                tags=[SUMMARY_TAG],
                category=SUMMARY_TAG,
                # log_count: the logs this insight cites; group_logs: the logs its run consumed with it
                metadata={**metadata, "log_count": len(s.sources), "group_logs": len(logs)},
                source=Source(type="job", ref=f"summarize:{run_id}"),
            )
            for t, s in zip(texts, summaries, strict=True)
        ]
        superseded = await self._contradictions(session, key.owner_id, summarizer, items)
        result.superseded = [uuid.UUID(p["id"]) for p in superseded]
        priors: list[dict[str, Any]] = []

        def remember_prior(row: Insight) -> None:
            priors.append({"id": str(row.id), "prior": _snapshot(row)})

        log_ids = [log.id for log in logs]
        if items:
            out = await self.insights.create_many(session, principal, items, before_merge=remember_prior)
            # Each insight cites exactly the lines its summary came from (several summaries may
            # land on one insight through dedup or merge: it cites all of theirs).
            cited: dict[uuid.UUID, dict[uuid.UUID, None]] = {}
            for item, summary in zip(out.items, summaries, strict=True):
                target = result.merged if item.merged else result.deduplicated if item.deduplicated else result.created
                if item.id not in target:
                    target.append(item.id)
                cited.setdefault(item.id, {}).update(
                    dict.fromkeys(log_ids[i] for i in summary.sources if 0 <= i < len(log_ids))
                )
            await repo.set_created_by_run(key.owner_id, result.created, run_id)
            for insight_id, sources in cited.items():
                await repo.link_sources(key.owner_id, insight_id, list(sources), run_id)
        # Logs not in the default (hot, never moved) state are restored one by one on rollback.
        log_prior = [
            [str(log.id), log.tier, log.tier_changed_at.isoformat() if log.tier_changed_at else None]
            for log in logs
            if log.tier != "hot" or log.tier_changed_at is not None
        ]
        await repo.mark_summarized(key.owner_id, log_ids, run_id, now)
        # Compact (no texts): this list is appended once per group and rewritten each time.
        change = {k: v for k, v in result.to_json().items() if k != "insights"}
        change.update(merged_prior=priors, superseded_prior=superseded, log_prior=log_prior)
        result.change = change
        return result

    async def rollback(self, session: AsyncSession, run_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, int]:
        """Undo what ``run_id`` did: merged insights get their prior fields back, insights it created
        are deleted, its source links removed, and its logs return to their prior state."""
        repo = SummaryRepository(session)
        groups: list[dict[str, Any]] = list(changes.get("groups") or [])
        owner_ids = sorted({uuid.UUID(g["owner_id"]) for g in groups})
        counts = {"insights_restored": 0, "insights_deleted": 0, "sources_deleted": 0, "logs_restored": 0}
        if not owner_ids:
            return counts
        # Later snapshots first, so an insight merged twice ends at its earliest prior state.
        for g in reversed(groups):
            owner_id = uuid.UUID(g["owner_id"])
            for merged in reversed(g.get("merged_prior") or []):
                await repo.restore_insight(owner_id, uuid.UUID(merged["id"]), _unsnapshot(merged["prior"]))
                counts["insights_restored"] += 1
        for g in reversed(groups):
            owner_id = uuid.UUID(g["owner_id"])
            for old in g.get("superseded_prior") or []:
                await repo.restore_insight(owner_id, uuid.UUID(old["id"]), _unsnapshot(old["prior"]))
                counts["insights_restored"] += 1
        counts["sources_deleted"] = await repo.delete_sources(owner_ids, run_id)
        counts["insights_deleted"] = await repo.delete_created(owner_ids, run_id)
        counts["logs_restored"] = await repo.restore_logs(owner_ids, run_id)
        for g in groups:
            owner_id = uuid.UUID(g["owner_id"])
            for log_id, tier, changed in g.get("log_prior") or []:
                when = datetime.fromisoformat(changed) if changed else None
                await repo.restore_log_tier(owner_id, uuid.UUID(log_id), tier, when)
        return counts
