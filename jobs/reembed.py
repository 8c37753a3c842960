"""Re-embedding job: fill the shadow vectors in batches with progress, then switch atomically.

Resumable: every batch commits on its own, and rows already embedded for the configured model
(and unchanged since) are never embedded again.
"""

from __future__ import annotations

from jobs.registry import JobContext
from mosaic_memory.db import unit_of_work
from mosaic_memory.reembed.service import TABLES, ReembedService

__all__ = ["reembed"]


async def reembed(ctx: JobContext) -> str | None:
    service = ReembedService(embedder=ctx.embedder)
    batch = ctx.settings.jobs.reembed_batch_size
    async with ctx.sessionmaker() as session:
        status = await service.status(session)
    await ctx.report.set_changes("before", status)
    total = int(status["pending"])
    if status["matches"] and total == 0:
        await ctx.report.progress(1, 1)
        return f"every vector already comes from {service.model}"
    if ctx.dry_run:
        ctx.report.add(pending=total)
        await ctx.report.progress(1, 1)
        return f"would re-embed {total} rows with {service.model} and switch"
    done = 0
    ctx.report.add(embedded=0)
    await ctx.report.progress(0, total + 1, "embedding")
    for table in TABLES:
        after = None
        while True:
            async with unit_of_work(ctx.sessionmaker) as session:
                n, after = await service.fill_batch(session, table, after=after, limit=batch)
            if n == 0:
                break
            done += n
            ctx.report.add(embedded=n)
            await ctx.report.progress(min(done, total), total + 1, f"{table}")
    async with unit_of_work(ctx.sessionmaker) as session:
        moved = await service.switch(session, batch=batch)
    ctx.report.add(switched=sum(moved.values()))
    await ctx.report.set_changes("switched", {"to": service.model, "from": status["stored"], "rows": moved})
    await ctx.report.progress(1, 1, "switched")
    return f"switched to {service.model}"
