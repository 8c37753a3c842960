"""REST routes for jobs and their ledger (admin scope).

Running a job spans many transactions of its own (one per group, progress in between), so
these routes hand the work to the process's :class:`JobControl` instead of a request session.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query

from jobs.ledger.schemas import JobOut, JobRunOut, RunRequest
from jobs.ledger.service import JobControl, JobLedgerService
from mosaic_memory.api.deps import Admin, SessionDep, StateDep
from mosaic_memory.api.docs import ERRORS, list_response
from mosaic_memory.container import AppState
from mosaic_memory.errors import ConfigurationError

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERRORS)
ledger = JobLedgerService()


def _control(state: AppState) -> JobControl:
    if state.jobs is None:
        raise ConfigurationError("jobs are not available in this process")
    return state.jobs


@router.get("", response_model=list[JobOut], responses={200: list_response(JobOut)})
async def list_jobs(state: StateDep, principal: Admin) -> list[JobOut]:
    """Registered jobs, their schedules and their latest run."""
    return await _control(state).list_jobs()


@router.get("/runs", response_model=list[JobRunOut], responses={200: list_response(JobRunOut)})
async def job_history(
    session: SessionDep,
    principal: Admin,
    job: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[JobRunOut]:
    """Runs, newest first, optionally of one job."""
    out = await ledger.history(session, job_id=job, limit=limit)
    await session.commit()
    return out


@router.get("/runs/{run_id}", response_model=JobRunOut)
async def get_run(run_id: uuid.UUID, session: SessionDep, principal: Admin) -> JobRunOut:
    """One run: status, progress (0 to 1, live while it runs), counts, errors, changes."""
    out = await ledger.get(session, run_id)
    await session.commit()
    return out


@router.post("/runs/{run_id}/rollback", response_model=JobRunOut)
async def rollback_run(run_id: uuid.UUID, state: StateDep, principal: Admin) -> JobRunOut:
    """Undo what a run created and put its logs back exactly as they were."""
    return await _control(state).rollback(run_id)


@router.post("/{job_id}/runs", response_model=JobRunOut)
async def run_job(
    job_id: str,
    state: StateDep,
    principal: Admin,
    body: Annotated[RunRequest | None, Body(openapi_examples={"dry run": {"value": {"dry_run": True}}})] = None,
) -> JobRunOut:
    """Run a job once now and answer with its ledger row (status ``skipped`` when another
    process holds the job's lock). ``dry_run`` records the diff without applying it."""
    return await _control(state).run(job_id, trigger="api", dry_run=bool(body and body.dry_run))
