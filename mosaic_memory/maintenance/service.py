"""Policies applied by the maintenance jobs: expiry, decay, log tiers and retention.

Each method works inside the caller's transaction and returns what it changed, ready for the
ledger. Pinned insights are never touched.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.config import Settings
from mosaic_memory.maintenance.repository import MaintenanceRepository

__all__ = ["MaintenanceService"]


class MaintenanceService:
    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings

    async def expire_and_decay(self, session: AsyncSession, *, now: datetime, since: datetime | None) -> dict[str, Any]:
        """Expire insights past ``expires_at``; decay the importance of those nobody recalls."""
        repo = MaintenanceRepository(session)
        expired = await repo.expire_insights(now)
        decayed: list[tuple[Any, ...]] = []
        half_life = self.settings.policy.insights.decay_half_life_days
        if half_life:
            decayed = await repo.decay_importance(now, half_life_days=half_life, since=since)
        return {
            "counts": {"expired": len(expired), "decayed": len(decayed)},
            "changes": {
                "expired": [[str(o), str(i)] for o, i, _ in expired],
                "decayed": [[str(o), str(i), round(b, 6), round(a, 6)] for o, i, b, a in decayed],
            },
        }

    async def tier_logs(self, session: AsyncSession, *, now: datetime) -> dict[str, Any]:
        """Warm logs older than ``jobs.logs_cold_after_days`` become cold (kept, still searchable);
        cold logs older than ``policy.logs.retention_days`` are deleted, only when that is set."""
        repo = MaintenanceRepository(session)
        cooled: list[tuple[Any, ...]] = []
        deleted: list[tuple[Any, ...]] = []
        cold_after = self.settings.jobs.logs_cold_after_days
        if cold_after:
            cooled = await repo.cool_logs(now, now - timedelta(days=cold_after))
        retention = self.settings.policy.logs.retention_days
        if retention:
            deleted = await repo.delete_cold_logs(now - timedelta(days=retention))
        return {
            "counts": {"cooled": len(cooled), "deleted": len(deleted)},
            "changes": {
                "cooled": [[str(o), str(i)] for o, i in cooled],
                "deleted": [[str(o), str(i)] for o, i in deleted],
            },
        }
