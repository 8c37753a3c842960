"""The scheduled backup: one ``pg_dump`` snapshot into ``backup.dir``, then the oldest scheduled
backups beyond ``backup.keep`` deleted. Off unless ``MOSAIC_BACKUP__CRON`` is set; runnable on
demand (``mosaic-memory jobs run backup``) like every job."""

from __future__ import annotations

from jobs.registry import JobContext
from mosaic_memory.backups import backup_name, dump, prune_backups

__all__ = ["backup"]


async def backup(ctx: JobContext) -> str | None:
    cfg = ctx.settings.backup
    directory = ctx.settings.backup_dir
    out = directory / backup_name(ctx.now)
    if ctx.dry_run:
        doomed = prune_backups(directory, cfg.keep + 1, dry_run=True)  # +1: the one this run would add
        ctx.report.add(written=0, deleted=0, would_delete=len(doomed))
        return f"would write {out} and delete {len(doomed)} old backup(s)"
    url = ctx.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    written = await dump(url, out)
    deleted = prune_backups(directory, cfg.keep)
    ctx.report.add(written=1, bytes=written.size, deleted=len(deleted))
    await ctx.report.set_changes("backup", {"path": str(out), "bytes": written.size})
    if deleted:
        await ctx.report.set_changes("deleted", [str(p) for p in deleted])
    await ctx.report.progress(1, 1)
    return f"wrote {out} ({written.size} bytes); deleted {len(deleted)} old backup(s)"
