"""SQL for the job ledger (``job_runs``).

The ledger is an operational, instance-wide table with no owner column: it is read and written
only by jobs and by admin-scoped routes and commands.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.models import JobRun, new_id


class JobRunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, run: JobRun) -> JobRun:
        self.session.add(run)
        await self.session.flush()
        return run

    async def claim_fire(self, job_id: str, scheduled_for: datetime, when: datetime) -> uuid.UUID | None:
        """Insert the running row of ``job_id``'s fire at ``scheduled_for``; its id, or None when
        another process already claimed that fire (the unique ``(job_id, scheduled_for)``)."""
        stmt = (
            insert(JobRun)
            .values(
                id=new_id(),
                job_id=job_id,
                trigger="schedule",
                status="running",
                dry_run=False,
                started_at=when,
                scheduled_for=scheduled_for,
                progress=0.0,
                counts={},
                errors=[],
                changes={},
            )
            .on_conflict_do_nothing(
                index_elements=["job_id", "scheduled_for"], index_where=JobRun.scheduled_for.is_not(None)
            )
            .returning(JobRun.id)
        )
        claimed: uuid.UUID | None = await self.session.scalar(stmt)
        return claimed

    async def get(self, run_id: uuid.UUID) -> JobRun | None:
        return await self.session.get(JobRun, run_id, populate_existing=True)

    async def recent(self, *, job_id: str | None = None, limit: int = 50) -> Sequence[JobRun]:
        stmt = select(JobRun)
        if job_id is not None:
            stmt = stmt.where(JobRun.job_id == job_id)
        stmt = stmt.order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
        return (await self.session.scalars(stmt)).all()

    async def latest(
        self, job_id: str, *, statuses: Sequence[str] | None = None, dry_run: bool = False
    ) -> JobRun | None:
        stmt = select(JobRun).where(JobRun.job_id == job_id, JobRun.dry_run.is_(dry_run))
        if statuses is not None:
            stmt = stmt.where(JobRun.status.in_(statuses))
        stmt = stmt.order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1)
        return await self.session.scalar(stmt)

    async def set_progress(
        self, run_id: uuid.UUID, *, progress: float, counts: dict[str, Any], errors: list[Any]
    ) -> None:
        stmt = (
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(progress=progress, counts=counts, errors=errors)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def append_change(self, run_id: uuid.UUID, key: str, item: Any) -> None:
        """Append ``item`` to the list ``changes[key]`` without rewriting the rest in Python."""
        await self.session.execute(
            text(
                "UPDATE job_runs SET changes = jsonb_set(changes, ARRAY[CAST(:key AS text)], "
                "coalesce(changes -> CAST(:key AS text), '[]'::jsonb) || jsonb_build_array(CAST(:item AS jsonb))) "
                "WHERE id = :id"
            ),
            {"key": key, "item": json.dumps(item, default=str), "id": run_id},
        )

    async def set_changes(self, run_id: uuid.UUID, key: str, value: Any) -> None:
        await self.session.execute(
            text(
                "UPDATE job_runs SET changes = jsonb_set(changes, ARRAY[CAST(:key AS text)], CAST(:value AS jsonb)) "
                "WHERE id = :id"
            ),
            {"key": key, "value": json.dumps(value, default=str), "id": run_id},
        )

    async def finish(
        self,
        run_id: uuid.UUID,
        *,
        status: str,
        finished_at: datetime,
        progress: float,
        counts: dict[str, Any],
        errors: list[Any],
        message: str | None,
    ) -> None:
        stmt = (
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(
                status=status,
                finished_at=finished_at,
                progress=progress,
                counts=counts,
                errors=errors,
                message=message,
            )
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def mark_rolled_back(self, run_id: uuid.UUID, when: datetime) -> None:
        stmt = (
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(status="rolled_back", rolled_back_at=when)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def abandon_running(self, job_id: str, *, except_id: uuid.UUID, when: datetime) -> list[uuid.UUID]:
        """Close runs of ``job_id`` still marked running: the caller holds the job's lock, so they died."""
        stmt = (
            update(JobRun)
            .where(JobRun.job_id == job_id, JobRun.status == "running", JobRun.id != except_id)
            .values(status="abandoned", finished_at=when, message="the process running it stopped before finishing")
            .returning(JobRun.id)
            .execution_options(synchronize_session=False)
        )
        return list((await self.session.scalars(stmt)).all())


class AdvisoryLockRepository:
    """Session-level advisory locks on a dedicated connection: held until released or the connection dies."""

    NAMESPACE = 72786002

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def try_lock(self, key: int) -> bool:
        got = await self.connection.scalar(
            text("SELECT pg_try_advisory_lock(:ns, :key)"), {"ns": self.NAMESPACE, "key": key}
        )
        await self.connection.commit()  # the lock outlives the transaction; do not sit idle in one
        return bool(got)

    async def unlock(self, key: int) -> None:
        await self.connection.scalar(text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": self.NAMESPACE, "key": key})
        await self.connection.commit()
