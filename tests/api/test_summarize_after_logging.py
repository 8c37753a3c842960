"""Honest runs: summarization right after logging consumes the logs or says it left them.

While the background embedder works on a batch it holds the batch's rows (``FOR UPDATE``) until
it commits. These tests hold the just-posted rows the same way, from a transaction of their own,
so the run meets exactly what it meets a second after ``POST /v1/logs``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.container import AppState
from mosaic_memory.models import AgentLog
from tests.conftest import UserFactory
from tests.jobs.conftest import log_rows, owner_id, runner_for

EVENTS = [
    "User wants the staging cluster shut down every night at 22:00 to save money",
    "ok",
    "Decided to keep the metrics retention at 15 days",
    "Running tests…",
    "The integration suite passed on the second attempt after the cache was cleared",
    "User prefers short commit messages in the imperative mood",
    "done",
]


@asynccontextmanager
async def held_like_the_embedder(state: AppState, owner: uuid.UUID) -> AsyncIterator[AsyncSession]:
    """Lock the owner's logs as the embedder does mid-batch, with their vectors not yet written;
    commit (the embedder finishing its batch) on leaving."""
    async with state.sessionmaker() as session, session.begin():
        await session.execute(select(AgentLog.id).where(AgentLog.owner_id == owner).with_for_update())
        await session.execute(
            update(AgentLog).where(AgentLog.owner_id == owner).values(embedding=None, embedding_model=None)
        )
        yield session


async def post_events(http: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    r = await http.post(
        "/v1/logs", json={"events": [{"session_id": "fresh", "content": c} for c in EVENTS]}, headers=headers
    )
    assert r.status_code == 201, r.text
    ids: list[str] = [str(i) for i in r.json()["ids"]]
    return ids


async def waiting_on_a_lock(state: AppState) -> bool:
    """Whether some backend waits for a row lock on agent_logs (the run, behind the embedder)."""
    for _ in range(600):
        async with state.sessionmaker() as session:
            n = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query ILIKE '%agent_logs%FOR UPDATE%'"
                )
            )
        if n:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_run_right_after_logging_waits_for_the_embedder_and_consumes_every_log(
    http: httpx.AsyncClient, make_user: UserFactory, admin_headers: dict[str, str], state: AppState
) -> None:
    await runner_for(state).run("summarize", trigger="test")  # nothing else pending
    name, h = await make_user()
    owner = await owner_id(state, name)
    ids = await post_events(http, h)

    async with held_like_the_embedder(state, owner):
        run_task = asyncio.create_task(http.post("/v1/jobs/summarize/runs", json={}, headers=admin_headers))
        assert await waiting_on_a_lock(state), "the run never waited for the logs the embedder holds"
    r = await run_task
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["status"] == "succeeded", run
    assert run["counts"]["logs_consumed"] == len(EVENTS) and run["counts"]["skipped_pending"] == 0
    assert run["counts"]["insights_created"] >= 4  # one per fact; the acknowledgements make none

    logs = await log_rows(state, owner)
    assert sorted(str(i) for i in logs) == sorted(ids)
    assert all(row["summarized_by_run"] == uuid.UUID(run["id"]) for row in logs.values())
    async with state.sessionmaker() as session:
        # the run embedded what the embedder had not yet written, and kept those vectors
        missing = await session.scalar(
            select(AgentLog.id).where(AgentLog.owner_id == owner, AgentLog.embedding.is_(None)).limit(1)
        )
    assert missing is None


async def test_logs_held_past_the_wait_are_reported_as_skipped_pending_and_taken_next_time(
    http: httpx.AsyncClient, make_user: UserFactory, admin_headers: dict[str, str], state: AppState
) -> None:
    await runner_for(state).run("summarize", trigger="test")
    name, h = await make_user()
    owner = await owner_id(state, name)
    await post_events(http, h)

    impatient = runner_for(state, pending_wait_seconds=0.2)
    async with held_like_the_embedder(state, owner):
        run = await impatient.run("summarize", trigger="test")
    assert run.status == "partial", run
    assert run.counts["skipped_pending"] == len(EVENTS) and run.counts["logs_consumed"] == 0
    assert run.message and "skipped_pending" in run.message
    (error,) = [e for e in run.errors if e.get("owner_id") == str(owner)]
    assert error["error"] == "LogsPending" and error["session_id"] == "fresh"
    assert all(row["summarized_at"] is None for row in (await log_rows(state, owner)).values())
    shown = (await http.get(f"/v1/jobs/runs/{run.id}", headers=admin_headers)).json()
    assert shown["status"] == "partial" and shown["counts"]["skipped_pending"] == len(EVENTS)

    later = await impatient.run("summarize", trigger="test")
    assert later.status == "succeeded", later
    assert later.counts["logs_consumed"] == len(EVENTS) and later.counts["skipped_pending"] == 0
    assert all(row["summarized_by_run"] == later.id for row in (await log_rows(state, owner)).values())
