"""SQL for log summarization: pending groups, locking a group, marking logs, source links, rollback.

Summarization is an instance-wide job: :meth:`pending_groups` lists groups across owners, and
every other query is scoped to the one owner (or the owners of one run) it works on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg.errors import LockNotAvailable
from sqlalchemy import Date, case, cast, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.common.repository import owned_by
from mosaic_memory.models import AgentLog, Insight, InsightSource


@dataclass(frozen=True)
class GroupKey:
    """One owner's logs of one session, or of one day (in the job's time zone) without a session."""

    owner_id: uuid.UUID
    session_id: str | None
    day: date | None

    def to_json(self) -> dict[str, Any]:
        return {
            "owner_id": str(self.owner_id),
            "session_id": self.session_id,
            "day": self.day.isoformat() if self.day else None,
        }


# Columns a merge may change; restoring them undoes the merge exactly.
MERGE_FIELDS = ("tags", "importance", "confidence", "pinned", "metadata_", "category", "updated_at")
# Columns superseding changes on the older insight.
SUPERSEDE_FIELDS = ("superseded_by", "valid_to", "updated_at")


class SummaryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def pending_groups(self, *, cutoff: datetime, tz: str) -> list[tuple[GroupKey, int]]:
        """Groups of unsummarized logs that occurred up to ``cutoff``, with their sizes."""
        rows = await self.session.execute(
            text(
                """
                SELECT owner_id, session_id,
                       CASE WHEN session_id IS NULL THEN (occurred_at AT TIME ZONE :tz)::date END AS day,
                       count(*) AS n
                FROM agent_logs
                WHERE summarized_at IS NULL AND occurred_at <= :cutoff
                GROUP BY 1, 2, 3
                ORDER BY 1, 2 NULLS LAST, 3
                """
            ),
            {"tz": tz, "cutoff": cutoff},
        )
        return [(GroupKey(r.owner_id, r.session_id, r.day), int(r.n)) for r in rows]

    def _group_filter(self, stmt: Any, key: GroupKey, *, cutoff: datetime, tz: str) -> Any:
        stmt = stmt.where(
            AgentLog.owner_id == key.owner_id,
            AgentLog.summarized_at.is_(None),
            AgentLog.occurred_at <= cutoff,
        )
        if key.session_id is not None:
            return stmt.where(AgentLog.session_id == key.session_id)
        return stmt.where(AgentLog.session_id.is_(None), cast(func.timezone(tz, AgentLog.occurred_at), Date) == key.day)

    async def lock_group(
        self, key: GroupKey, *, cutoff: datetime, tz: str, wait_s: float = 0.0
    ) -> tuple[Sequence[AgentLog], int]:
        """The group's unsummarized logs, oldest first, locked for this transaction, and how many
        of its logs were left because another transaction (the background embedder, a write
        still open) held them for longer than ``wait_s`` seconds.

        Waiting rather than skipping at once is what lets a run right after a write consume the
        logs being embedded; a row a concurrent run consumed meanwhile is re-checked after the wait
        and left out, so two runs never consume the same log."""
        stmt = self._group_filter(select(AgentLog), key, cutoff=cutoff, tz=tz)
        stmt = stmt.order_by(AgentLog.occurred_at, AgentLog.seq)
        if wait_s > 0:
            previous = await self.session.scalar(text("SHOW lock_timeout"))
            try:
                async with self.session.begin_nested():
                    await self.session.execute(
                        text("SELECT set_config('lock_timeout', :v, true)"), {"v": f"{int(wait_s * 1000)}ms"}
                    )
                    rows = (await self.session.scalars(stmt.with_for_update())).all()
            except DBAPIError as exc:
                if not isinstance(exc.orig, LockNotAvailable):
                    raise
                # The savepoint's rollback undid its lock_timeout too.
            else:
                await self.session.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": str(previous)})
                return rows, 0
        rows = (await self.session.scalars(stmt.with_for_update(skip_locked=True))).all()
        total = await self.session.scalar(self._group_filter(select(func.count()), key, cutoff=cutoff, tz=tz))
        return rows, max(0, int(total or 0) - len(rows))

    async def mark_summarized(
        self, owner_id: uuid.UUID, log_ids: Sequence[uuid.UUID], run_id: uuid.UUID, now: datetime
    ) -> None:
        """Mark the logs consumed by ``run_id``; hot ones move to warm."""
        # One statement: every row version written also costs an HNSW insert on the log's vector.
        hot = AgentLog.tier == "hot"
        await self.session.execute(
            update(AgentLog)
            .where(AgentLog.owner_id == owner_id, AgentLog.id.in_(log_ids))
            .values(
                summarized_at=now,
                summarized_by_run=run_id,
                tier=case((hot, "warm"), else_=AgentLog.tier),
                tier_changed_at=case((hot, now), else_=AgentLog.tier_changed_at),
            )
            .execution_options(synchronize_session=False)
        )

    async def link_sources(
        self, owner_id: uuid.UUID, insight_id: uuid.UUID, log_ids: Sequence[uuid.UUID], run_id: uuid.UUID
    ) -> None:
        if not log_ids:
            return
        stmt = insert(InsightSource).values(
            [{"owner_id": owner_id, "insight_id": insight_id, "log_id": i, "run_id": run_id} for i in log_ids]
        )
        await self.session.execute(stmt.on_conflict_do_nothing())

    async def set_created_by_run(
        self, owner_id: uuid.UUID, insight_ids: Sequence[uuid.UUID], run_id: uuid.UUID
    ) -> None:
        if not insight_ids:
            return
        await self.session.execute(
            update(Insight)
            .where(Insight.owner_id == owner_id, Insight.id.in_(insight_ids))
            .values(created_by_run=run_id)
            .execution_options(synchronize_session=False)
        )

    # rollback ---------------------------------------------------------------------------------
    async def restore_logs(self, owner_ids: Sequence[uuid.UUID], run_id: uuid.UUID) -> int:
        """Logs consumed by ``run_id`` go back to unsummarized and hot (exceptions follow separately)."""
        result: Any = await self.session.execute(
            update(AgentLog)
            .where(owned_by(AgentLog.owner_id, owner_ids), AgentLog.summarized_by_run == run_id)
            .values(summarized_at=None, summarized_by_run=None, tier="hot", tier_changed_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)

    async def restore_log_tier(
        self, owner_id: uuid.UUID, log_id: uuid.UUID, tier: str, tier_changed_at: datetime | None
    ) -> None:
        await self.session.execute(
            update(AgentLog)
            .where(AgentLog.owner_id == owner_id, AgentLog.id == log_id)
            .values(tier=tier, tier_changed_at=tier_changed_at)
            .execution_options(synchronize_session=False)
        )

    async def delete_sources(self, owner_ids: Sequence[uuid.UUID], run_id: uuid.UUID) -> int:
        result: Any = await self.session.execute(
            delete(InsightSource).where(owned_by(InsightSource.owner_id, owner_ids), InsightSource.run_id == run_id)
        )
        return int(result.rowcount or 0)

    async def restore_insight(self, owner_id: uuid.UUID, insight_id: uuid.UUID, fields: dict[str, Any]) -> None:
        await self.session.execute(
            update(Insight)
            .where(Insight.owner_id == owner_id, Insight.id == insight_id)
            .values(**fields)
            .execution_options(synchronize_session=False)
        )

    async def delete_created(self, owner_ids: Sequence[uuid.UUID], run_id: uuid.UUID) -> int:
        result: Any = await self.session.execute(
            delete(Insight).where(owned_by(Insight.owner_id, owner_ids), Insight.created_by_run == run_id)
        )
        return int(result.rowcount or 0)
