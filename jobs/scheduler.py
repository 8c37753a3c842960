"""APScheduler inside the service process. The only module that imports apscheduler."""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from jobs.registry import JobRegistry
from jobs.runner import JobRunner

__all__ = ["JobScheduler"]

log = logging.getLogger("mosaic_memory.jobs")


class JobScheduler:
    """Schedules every registered job that has a trigger, under its stable id (re-adding an id
    replaces it). Overlapping fires of one job coalesce; across processes the runner's advisory
    lock makes one of them run it."""

    def __init__(self, registry: JobRegistry, runner: JobRunner, *, timezone: str) -> None:
        self.registry = registry
        self.runner = runner
        self.timezone = timezone
        self._scheduler = AsyncIOScheduler(timezone=timezone)

    def add_all(self) -> None:
        for spec in self.registry.specs():
            if spec.trigger:
                self._scheduler.add_job(
                    self._fire,
                    CronTrigger.from_crontab(spec.trigger, timezone=self.timezone),
                    args=[spec.id],
                    id=spec.id,
                    name=spec.description,
                    replace_existing=True,
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=3600,
                )

    async def _fire(self, job_id: str) -> None:
        try:
            run = await self.runner.run(job_id, trigger="schedule")
            log.info("job %s: %s %s", job_id, run.status, run.counts)
        except Exception:  # never let one job's failure stop the scheduler
            log.exception("scheduled job %s could not run", job_id)

    def start(self) -> None:
        self.add_all()
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def scheduled(self) -> dict[str, datetime | None]:
        """Job id → next fire time (None while the scheduler is not started)."""
        return {job.id: getattr(job, "next_run_time", None) for job in self._scheduler.get_jobs()}
