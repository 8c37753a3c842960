"""SQL for instance-wide maintenance sweeps: insight expiry and decay, log tiers and retention.

These sweeps are the one place that spans owners by design: they apply the same policy to every
row, return ``(owner_id, id, ...)`` for each row they touch, and run only from jobs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Touched = list[tuple[Any, ...]]

CURRENT = "NOT pinned AND valid_to IS NULL AND superseded_by IS NULL"


class MaintenanceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def expire_insights(self, now: datetime) -> Touched:
        """Current, unpinned insights past ``expires_at`` end their validity at that moment."""
        rows = await self.session.execute(
            text(
                f"UPDATE insights SET valid_to = expires_at WHERE {CURRENT} AND expires_at <= :now "
                "RETURNING owner_id, id, expires_at"
            ),
            {"now": now},
        )
        return [tuple(r) for r in rows]

    async def decay_importance(self, now: datetime, *, half_life_days: float, since: datetime | None) -> Touched:
        """Halve importance every ``half_life_days`` without a recall: the decay covers the time since
        the later of the last access (or creation) and the previous decay run (``since``)."""
        rows = await self.session.execute(
            text(
                f"""
                WITH t AS (
                    SELECT owner_id, id, importance AS before,
                           greatest(coalesce(last_accessed_at, created_at), CAST(:since AS timestamptz)) AS ref
                    FROM insights
                    WHERE {CURRENT} AND importance > 0
                    FOR UPDATE
                )
                UPDATE insights i
                SET importance = t.before * power(0.5, extract(epoch FROM (:now - t.ref)) / :half_life)
                FROM t
                WHERE i.owner_id = t.owner_id AND i.id = t.id AND t.ref < :now
                RETURNING i.owner_id, i.id, t.before, i.importance
                """
            ),
            {"now": now, "since": since, "half_life": half_life_days * 86400.0},
        )
        return [tuple(r) for r in rows]

    async def cool_logs(self, now: datetime, older_than: datetime) -> Touched:
        rows = await self.session.execute(
            text(
                "UPDATE agent_logs SET tier = 'cold', tier_changed_at = :now "
                "WHERE tier = 'warm' AND occurred_at < :older_than RETURNING owner_id, id"
            ),
            {"now": now, "older_than": older_than},
        )
        return [tuple(r) for r in rows]

    async def delete_cold_logs(self, older_than: datetime) -> Touched:
        rows = await self.session.execute(
            text("DELETE FROM agent_logs WHERE tier = 'cold' AND occurred_at < :older_than RETURNING owner_id, id"),
            {"older_than": older_than},
        )
        return [tuple(r) for r in rows]
