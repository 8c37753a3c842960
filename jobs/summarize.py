"""Nightly summarization: unsummarized logs → insights, one transaction per group.

A crash leaves whole groups done or untouched and the next run finishes the rest; a group
that fails is recorded in the ledger and skipped; a dry run applies each group in a
transaction that is rolled back and records the diff it would have applied.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from jobs.ledger.repository import JobRunRepository
from jobs.registry import JobContext
from mosaic_memory.db import unit_of_work
from mosaic_memory.errors import SummarizerBudgetExhausted
from mosaic_memory.logs.service import LogService
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.summaries.registry import build_summarizer
from mosaic_memory.summaries.service import GroupResult, SummarizationService

__all__ = ["rollback_summarize", "summarize"]


def _service(ctx: JobContext) -> SummarizationService:
    return SummarizationService(
        embedder=ctx.embedder,
        insights=ctx.insights,
        logs=LogService(embedder=ctx.embedder, settings=ctx.settings),
        owners=OwnerService(),
        settings=ctx.settings,
    )


async def summarize(ctx: JobContext) -> str | None:
    service = _service(ctx)
    summarizer = build_summarizer(ctx.settings)
    cutoff = ctx.now
    async with ctx.sessionmaker() as session:
        groups = await service.pending(session, cutoff=cutoff)
    total = len(groups)
    ctx.report.add(
        groups=0,
        logs_consumed=0,
        insights_created=0,
        insights_merged=0,
        insights_deduplicated=0,
        insights_superseded=0,
        skipped_pending=0,
    )
    await ctx.report.progress(0, total, f"{total} groups")
    diff: list[dict[str, Any]] = []
    stopped: str | None = None
    pause = ctx.settings.jobs.group_pause_seconds
    for done, (key, _size) in enumerate(groups, start=1):
        try:
            result = await _one_group(ctx, service, summarizer, key, cutoff)
        except SummarizerBudgetExhausted as exc:
            ctx.report.error({**key.to_json(), "error": exc.error, "detail": exc.detail})
            stopped = exc.detail
            break
        except Exception as exc:  # one failing group is recorded and skipped; the rest go on
            ctx.report.error({**key.to_json(), "error": type(exc).__name__, "detail": str(exc)[:500]})
        else:
            if result.skipped_pending:
                # Never a silent zero: logs another transaction held past the wait are named here,
                # which makes the run partial, and the next run takes them.
                ctx.report.add(skipped_pending=result.skipped_pending)
                ctx.report.error(
                    {
                        **key.to_json(),
                        "error": "LogsPending",
                        "detail": f"{result.skipped_pending} logs were held by another transaction (still "
                        f"being written or embedded) for over {ctx.settings.jobs.pending_wait_seconds:g} s; "
                        "they are left for the next run",
                    }
                )
            if result.logs:
                ctx.report.add(
                    groups=1,
                    logs_consumed=result.logs,
                    insights_created=len(result.created),
                    insights_merged=len(result.merged),
                    insights_deduplicated=len(result.deduplicated),
                    insights_superseded=len(result.superseded),
                )
                if ctx.dry_run:
                    diff.append(result.to_json())
        await ctx.report.progress(done, total)
        if pause and done < total:
            await asyncio.sleep(pause)
    if ctx.dry_run:
        await ctx.report.set_changes("diff", diff)
    skipped = int(ctx.report.counts.get("skipped_pending", 0))
    if skipped and stopped is None:
        return f"{skipped} logs still being written or embedded were left for the next run (skipped_pending)"
    return stopped


async def _one_group(
    ctx: JobContext, service: SummarizationService, summarizer: Any, key: Any, cutoff: Any
) -> GroupResult:
    kwargs = {"summarizer": summarizer, "run_id": ctx.run_id, "now": ctx.now, "cutoff": cutoff}
    if ctx.dry_run:
        async with ctx.sessionmaker() as session:
            try:
                return await service.summarize_group(session, key, **kwargs)
            finally:
                await session.rollback()
    async with unit_of_work(ctx.sessionmaker) as session:
        result = await service.summarize_group(session, key, **kwargs)
        if result.logs:
            # In the group's own transaction: the ledger holds a group's change iff it applied.
            await JobRunRepository(session).append_change(ctx.run_id, "groups", result.change)
        return result


async def rollback_summarize(ctx: JobContext, session: AsyncSession, changes: dict[str, Any]) -> dict[str, int]:
    return await _service(ctx).rollback(session, ctx.run_id, changes)
