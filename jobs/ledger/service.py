"""The job ledger: reading runs, and the control surface edges use to run jobs.

The edges (REST, CLI) never import the ``jobs`` package: the composition root hands them an
object satisfying :class:`JobControl`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from jobs.ledger.repository import JobRunRepository
from jobs.ledger.schemas import JobOut, JobRunOut
from mosaic_memory.errors import JobRunNotFound
from mosaic_memory.models import JobRun

__all__ = ["JobControl", "JobLedgerService", "ProgressCallback", "run_out"]

ProgressCallback = Callable[[float, str], None]


def run_out(row: JobRun) -> JobRunOut:
    return JobRunOut(
        id=row.id,
        job_id=row.job_id,
        trigger=row.trigger,
        status=row.status,
        dry_run=row.dry_run,
        started_at=row.started_at,
        finished_at=row.finished_at,
        progress=row.progress,
        counts=dict(row.counts or {}),
        errors=list(row.errors or []),
        changes=dict(row.changes or {}),
        rolled_back_at=row.rolled_back_at,
        message=row.message,
        scheduled_for=row.scheduled_for,
    )


class JobControl(Protocol):
    """What an edge may do with jobs. Raises JobNotFound, JobRunNotFound, Conflict."""

    async def list_jobs(self) -> list[JobOut]: ...

    async def run(
        self, job_id: str, *, trigger: str, dry_run: bool = False, on_progress: ProgressCallback | None = None
    ) -> JobRunOut: ...

    async def rollback(self, run_id: uuid.UUID, *, on_progress: ProgressCallback | None = None) -> JobRunOut: ...

    async def history(self, *, limit: int = 50) -> list[JobRunOut]: ...

    async def get_run(self, run_id: uuid.UUID) -> JobRunOut: ...


class JobLedgerService:
    """Reads the ledger. Raises JobRunNotFound."""

    async def get(self, session: AsyncSession, run_id: uuid.UUID) -> JobRunOut:
        row = await JobRunRepository(session).get(run_id)
        if row is None:
            raise JobRunNotFound(run_id)
        return run_out(row)

    async def history(self, session: AsyncSession, *, job_id: str | None = None, limit: int = 50) -> list[JobRunOut]:
        rows: Sequence[JobRun] = await JobRunRepository(session).recent(job_id=job_id, limit=limit)
        return [run_out(r) for r in rows]
