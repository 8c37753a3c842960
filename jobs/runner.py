"""Runs a registered job once: advisory lock, ledger row, progress, outcome.

Two processes on one database run a job once, not twice: the run holds
``pg_try_advisory_lock`` on a dedicated connection for its whole duration; a process that
cannot take it records a run with status ``skipped`` ("skipped: locked") and returns at once.
The lock dies with the connection, so a killed process never leaves it behind.

A scheduled fire is claimed first (:meth:`JobRunner.run_scheduled`): every replica fires the same
schedule, and only the one whose ledger row for ``(job, fire time)`` is inserted runs it; the
others record nothing. The lock alone let a replica whose fire came after the other's run had
finished run the job a second time.
"""

from __future__ import annotations

import logging
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from embeddings import Embedder
from jobs.ledger.repository import AdvisoryLockRepository, JobRunRepository
from jobs.ledger.schemas import JobOut, JobRunOut
from jobs.ledger.service import JobLedgerService, ProgressCallback, run_out
from jobs.registry import JobContext, JobRegistry, JobSpec, RunReport
from mosaic_memory.config import Settings
from mosaic_memory.errors import Conflict, JobNotFound, JobRunNotFound
from mosaic_memory.insights.service import InsightService
from mosaic_memory.models import JobRun, new_id, utc_now
from mosaic_memory.observability.metrics import Metrics

__all__ = ["SKIPPED_LOCKED", "JobRunner", "lock_key"]

log = logging.getLogger("mosaic_memory.jobs")

SKIPPED_LOCKED = "skipped: locked (another process is running this job)"


def lock_key(job_id: str) -> int:
    """A stable signed 32-bit key per job id (the second half of the advisory lock's key)."""
    value = zlib.crc32(job_id.encode())
    return value - 2**32 if value >= 2**31 else value


class JobRunner:
    """Implements :class:`jobs.ledger.service.JobControl`.

    Raises JobNotFound for an unknown id, JobRunNotFound, and Conflict when a rollback is not
    possible. A failing job does not raise: its run is recorded with status ``failed``.
    """

    def __init__(
        self,
        *,
        registry: JobRegistry,
        settings: Settings,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        embedder: Embedder,
        insights: InsightService,
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.settings = settings
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.embedder = embedder
        self.insights = insights
        self.clock = clock

    def _spec(self, job_id: str) -> JobSpec:
        spec = self.registry.get(job_id)
        if spec is None:
            raise JobNotFound(job_id, self.registry.ids())
        return spec

    async def list_jobs(self) -> list[JobOut]:
        out = []
        async with self.sessionmaker() as session:
            repo = JobRunRepository(session)
            for spec in self.registry.specs():
                last = await repo.latest(spec.id)
                out.append(
                    JobOut(
                        id=spec.id,
                        description=spec.description,
                        schedule=spec.trigger,
                        timezone=self.settings.jobs.timezone,
                        supports_rollback=spec.rollback is not None,
                        last_run=run_out(last) if last else None,
                    )
                )
        return out

    def _context(self, run_id: uuid.UUID, now: datetime, dry_run: bool, report: RunReport) -> JobContext:
        return JobContext(
            settings=self.settings,
            sessionmaker=self.sessionmaker,
            engine=self.engine,
            embedder=self.embedder,
            insights=self.insights,
            run_id=run_id,
            now=now,
            dry_run=dry_run,
            report=report,
        )

    async def _get(self, run_id: uuid.UUID) -> JobRunOut:
        async with self.sessionmaker() as session:
            row = await JobRunRepository(session).get(run_id)
            if row is None:
                raise JobRunNotFound(run_id)
            return run_out(row)

    async def get_run(self, run_id: uuid.UUID) -> JobRunOut:
        """One run of the ledger, as it is now (progress included). Raises JobRunNotFound."""
        return await self._get(run_id)

    async def history(self, *, limit: int = 50) -> list[JobRunOut]:
        """The ledger, newest run first (for edges that hold no request session, e.g. the web UI)."""
        async with self.sessionmaker() as session:
            return await JobLedgerService().history(session, limit=limit)

    async def run(
        self,
        job_id: str,
        *,
        trigger: str,
        dry_run: bool = False,
        on_progress: ProgressCallback | None = None,
        now: datetime | None = None,
    ) -> JobRunOut:
        """Run ``job_id`` once and return its ledger row. ``now`` is the job's notion of the
        current time (default: the clock)."""
        spec = self._spec(job_id)
        now = now or self.clock()
        key = lock_key(job_id)
        async with self.engine.connect() as lock_conn:
            locks = AdvisoryLockRepository(lock_conn)
            if not await locks.try_lock(key):
                return await self._record_skipped(job_id, trigger, dry_run)
            try:
                return await self._run_locked(spec, trigger=trigger, dry_run=dry_run, on_progress=on_progress, now=now)
            finally:
                await locks.unlock(key)

    def _count(self, job_id: str, status: str, seconds: float | None = None) -> None:
        if self.metrics is None:
            return
        self.metrics.job_runs.labels(job_id, status).inc()
        if seconds is not None:
            self.metrics.job_duration.labels(job_id).observe(seconds)

    async def run_scheduled(self, job_id: str, scheduled_for: datetime) -> JobRunOut | None:
        """Run the fire of ``job_id`` at ``scheduled_for`` unless another process claimed it
        (then None). A claimed fire that finds the job running (a CLI or API run) is recorded
        as skipped."""
        spec = self._spec(job_id)
        async with self.sessionmaker() as session, session.begin():
            run_id = await JobRunRepository(session).claim_fire(job_id, scheduled_for, self.clock())
        if run_id is None:
            log.debug("job %s: the fire at %s runs in another process", job_id, scheduled_for.isoformat())
            return None
        key = lock_key(job_id)
        async with self.engine.connect() as lock_conn:
            locks = AdvisoryLockRepository(lock_conn)
            if not await locks.try_lock(key):
                when = self.clock()
                async with self.sessionmaker() as session, session.begin():
                    await JobRunRepository(session).finish(
                        run_id,
                        status="skipped",
                        finished_at=when,
                        progress=0.0,
                        counts={},
                        errors=[],
                        message=SKIPPED_LOCKED,
                    )
                return await self._get(run_id)
            try:
                return await self._run_locked(
                    spec, trigger="schedule", dry_run=False, on_progress=None, now=self.clock(), claimed=run_id
                )
            finally:
                await locks.unlock(key)

    async def _record_skipped(self, job_id: str, trigger: str, dry_run: bool) -> JobRunOut:
        self._count(job_id, "skipped")
        when = self.clock()
        async with self.sessionmaker() as session, session.begin():
            row = await JobRunRepository(session).add(
                JobRun(
                    job_id=job_id,
                    trigger=trigger,
                    status="skipped",
                    dry_run=dry_run,
                    started_at=when,
                    finished_at=when,
                    progress=0.0,
                    counts={},
                    errors=[],
                    changes={},
                    message=SKIPPED_LOCKED,
                )
            )
            return run_out(row)

    async def _run_locked(
        self,
        spec: JobSpec,
        *,
        trigger: str,
        dry_run: bool,
        on_progress: ProgressCallback | None,
        now: datetime,
        claimed: uuid.UUID | None = None,
    ) -> JobRunOut:
        """Run ``spec`` under its lock, in the ledger row ``claimed`` (a scheduled fire) or a new one."""
        run_id = claimed or new_id()
        started = self.clock()
        timer = time.perf_counter()  # the injected clock may stand still (tests); durations may not
        async with self.sessionmaker() as session, session.begin():
            repo = JobRunRepository(session)
            if claimed is None:
                await repo.add(
                    JobRun(
                        id=run_id,
                        job_id=spec.id,
                        trigger=trigger,
                        status="running",
                        dry_run=dry_run,
                        started_at=started,
                        progress=0.0,
                        counts={},
                        errors=[],
                        changes={},
                    )
                )
            # We hold the job's lock, so any other run still marked running died with its process.
            abandoned = await repo.abandon_running(spec.id, except_id=run_id, when=started)
        if abandoned:
            log.warning("job %s: marked %d earlier run(s) abandoned", spec.id, len(abandoned))
        report = RunReport(self.sessionmaker, run_id, on_progress)
        status, message = "succeeded", None
        try:
            message = await spec.function(self._context(run_id, now, dry_run, report))
            if report.errors:
                status = "partial"
        except Exception as exc:  # the ledger records every failure; the scheduler must keep going
            log.exception("job %s failed", spec.id)
            status, message = "failed", f"{type(exc).__name__}: {exc}"
            report.error({"error": type(exc).__name__, "detail": str(exc)})
        async with self.sessionmaker() as session, session.begin():
            await JobRunRepository(session).finish(
                run_id,
                status=status,
                finished_at=self.clock(),
                progress=1.0 if status != "failed" else report.fraction,
                counts=report.counts,
                errors=report.errors,
                message=message,
            )
        self._count(spec.id, status, time.perf_counter() - timer)
        if on_progress is not None:
            on_progress(1.0, status)
        return await self._get(run_id)

    async def rollback(self, run_id: uuid.UUID, *, on_progress: ProgressCallback | None = None) -> JobRunOut:
        """Undo a finished run in one transaction, under the job's lock. Raises JobRunNotFound, and
        Conflict for a dry run, a run already rolled back, a job without rollback, or a running job."""
        run = await self._get(run_id)
        spec = self._spec(run.job_id)
        if spec.rollback is None:
            raise Conflict(f"job {spec.id!r} cannot be rolled back")
        if run.dry_run:
            raise Conflict(f"run {run_id} was a dry run: it changed nothing")
        if run.status in ("rolled_back", "skipped", "running"):
            raise Conflict(f"run {run_id} is {run.status}; only a finished run can be rolled back")
        key = lock_key(spec.id)
        async with self.engine.connect() as lock_conn:
            locks = AdvisoryLockRepository(lock_conn)
            if not await locks.try_lock(key):
                raise Conflict(f"job {spec.id!r} is running; roll back once it has finished")
            try:
                report = RunReport(self.sessionmaker, run_id, on_progress)
                ctx = self._context(run_id, self.clock(), False, report)
                async with self.sessionmaker() as session, session.begin():
                    counts = await spec.rollback(ctx, session, run.changes)
                    repo = JobRunRepository(session)
                    await repo.set_changes(run_id, "rollback", counts)
                    await repo.mark_rolled_back(run_id, self.clock())
            finally:
                await locks.unlock(key)
        if on_progress is not None:
            on_progress(1.0, "rolled back")
        return await self._get(run_id)
