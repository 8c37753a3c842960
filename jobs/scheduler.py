"""APScheduler inside the service process. The only module that imports apscheduler."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from jobs.registry import JobRegistry
from jobs.runner import JobRunner

__all__ = ["JobScheduler"]

log = logging.getLogger("mosaic_memory.jobs")

MISFIRE_GRACE_S = 3600


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """A crontab expression (5 fields), or 6 with a leading seconds field (``*/5 * * * * *``)."""
    fields = expression.split()
    if len(fields) == 6:
        second, minute, hour, day, month, day_of_week = fields
        return CronTrigger(
            second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week, timezone=timezone
        )
    return CronTrigger.from_crontab(expression, timezone=timezone)


def due_fire_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The fire time a call at ``now`` belongs to: the latest one not after ``now`` within the
    misfire grace. Every replica computes the same value for the same fire, whatever its delay."""
    fire = trigger.get_next_fire_time(None, now - timedelta(seconds=MISFIRE_GRACE_S))
    due = None
    while fire is not None and fire <= now:
        due = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return due


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
                    cron_trigger(spec.trigger, self.timezone),
                    args=[spec.id],
                    id=spec.id,
                    name=spec.description,
                    replace_existing=True,
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=MISFIRE_GRACE_S,
                )

    async def _fire(self, job_id: str) -> None:
        try:
            job = self._scheduler.get_job(job_id)
            now = datetime.now(UTC)
            due = due_fire_time(job.trigger, now) if job is not None else None
            run = await self.runner.run_scheduled(job_id, due or now.replace(microsecond=0))
            if run is not None:
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
