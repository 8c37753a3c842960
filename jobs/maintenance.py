"""Maintenance jobs: insight expiry and decay, log tiers and retention. Each runs in one
transaction (rolled back on a dry run) and records every row it changed in the ledger."""

from __future__ import annotations

from datetime import datetime

from jobs.ledger.repository import JobRunRepository
from jobs.registry import JobContext
from mosaic_memory.maintenance.service import MaintenanceService

__all__ = ["expire_and_decay", "tier_logs"]


async def _previous_as_of(ctx: JobContext, job_id: str) -> datetime | None:
    async with ctx.sessionmaker() as session:
        last = await JobRunRepository(session).latest(job_id, statuses=["succeeded"])
    if last is None or not (last.changes or {}).get("as_of"):
        return None
    return datetime.fromisoformat(last.changes["as_of"])


async def expire_and_decay(ctx: JobContext) -> str | None:
    # Decay covers the time since the previous run, so running it more often decays no faster.
    since = await _previous_as_of(ctx, "expire-decay")
    service = MaintenanceService(settings=ctx.settings)
    async with ctx.sessionmaker() as session:
        outcome = await service.expire_and_decay(session, now=ctx.now, since=since)
        if ctx.dry_run:
            await session.rollback()
        else:
            await session.commit()
    ctx.report.add(**outcome["counts"])
    await ctx.report.set_changes("as_of", ctx.now.isoformat())
    for key, value in outcome["changes"].items():
        await ctx.report.set_changes(key, value)
    await ctx.report.progress(1, 1)
    return None


async def tier_logs(ctx: JobContext) -> str | None:
    service = MaintenanceService(settings=ctx.settings)
    async with ctx.sessionmaker() as session:
        outcome = await service.tier_logs(session, now=ctx.now)
        if ctx.dry_run:
            await session.rollback()
        else:
            await session.commit()
    ctx.report.add(**outcome["counts"])
    for key, value in outcome["changes"].items():
        await ctx.report.set_changes(key, value)
    await ctx.report.progress(1, 1)
    return None
