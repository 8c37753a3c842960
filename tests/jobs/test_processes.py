"""Real processes: two replicas run a job once, not twice; a run killed mid-way is finished by the next."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jobs import SKIPPED_LOCKED, JobRunner
from mosaic_memory.container import AppState
from mosaic_memory.models import JobRun
from tests.conftest import UserFactory, scratch_dir
from tests.jobs.conftest import insight_rows, log_rows, make_logs, owner_id, source_rows
from tests.jobs.topics import CI, FONT, REPLICA, TRIP

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def spawn(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.jobs.run_job_process", url, "summarize", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    if line.strip() != "ready":
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"worker did not start: {line!r} {err[-2000:]}")


async def result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = await asyncio.to_thread(proc.communicate, None, 300)
    assert proc.returncode == 0, err[-3000:]
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return data


async def seed_sessions(state: AppState, owner: uuid.UUID) -> None:
    for n, lines in enumerate([REPLICA, FONT, TRIP, CI]):
        await make_logs(state, owner, session_id=f"proc-{n}", contents=lines)


async def test_two_processes_run_a_job_once(make_user: UserFactory, state: AppState) -> None:
    name, _ = await make_user()
    owner = await owner_id(state, name)
    await seed_sessions(state, owner)
    barrier = scratch_dir("mosaic-barrier-") / "go"
    procs = [spawn(state.database.url, "--barrier", str(barrier), "--pause", "0.5") for _ in range(2)]
    try:
        for proc in procs:
            await wait_ready(proc)
        barrier.touch()
        runs = [await result(proc) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    statuses = sorted(r["status"] for r in runs)
    assert statuses == ["skipped", "succeeded"], runs
    done = next(r for r in runs if r["status"] == "succeeded")
    skipped = next(r for r in runs if r["status"] == "skipped")
    assert skipped["message"] == SKIPPED_LOCKED and skipped["counts"] == {}
    assert done["counts"]["logs_consumed"] >= sum(len(x) for x in (REPLICA, FONT, TRIP, CI))
    logs = await log_rows(state, owner)
    assert {row["summarized_by_run"] for row in logs.values()} == {uuid.UUID(done["id"])}
    insights = await insight_rows(state, owner)
    assert len(insights) >= 4  # one per fact, at least one per session
    assert {i for i, _ in await source_rows(state, owner)} == set(insights)


async def test_killed_run_is_finished_by_the_next_without_duplicates(
    make_user: UserFactory, state: AppState, runner: JobRunner
) -> None:
    name, _ = await make_user()
    owner = await owner_id(state, name)
    await seed_sessions(state, owner)
    proc = spawn(state.database.url, "--pause", "5")
    try:
        await wait_ready(proc)
        for _ in range(1200):  # until the first group of this owner has committed, and its progress too
            consumed = [r for r in (await log_rows(state, owner)).values() if r["summarized_by_run"]]
            if consumed:
                async with state.sessionmaker() as session:
                    ledger = await session.get(JobRun, consumed[0]["summarized_by_run"])
                    if ledger is not None and ledger.progress > 0:
                        break
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    at_kill = await log_rows(state, owner)
    killed_runs = {r["summarized_by_run"] for r in at_kill.values()} - {None}
    assert len(killed_runs) == 1
    killed = killed_runs.pop()
    done_sessions = {r["session_id"] for r in at_kill.values() if r["summarized_by_run"]}
    # whole groups only: a session is either fully consumed or untouched
    for row in at_kill.values():
        assert (row["summarized_by_run"] is not None) == (row["session_id"] in done_sessions)
    assert 1 <= len(done_sessions) < 4

    for _ in range(60):  # the dead backend releases the advisory lock within moments
        run = await runner.run("summarize", trigger="test")
        if run.status != "skipped":
            break
        await asyncio.sleep(0.5)
    assert run.status == "succeeded", run
    logs = await log_rows(state, owner)
    assert all(r["summarized_by_run"] in (killed, run.id) and r["summarized_at"] for r in logs.values())
    assert {r["session_id"] for r in logs.values() if r["summarized_by_run"] == killed} == done_sessions
    insights = await insight_rows(state, owner)
    sources = await source_rows(state, owner)
    assert {i for i, _ in sources} == set(insights)  # no insight twice, none without its logs
    assert sorted(log for _, log in sources) == sorted(logs)  # every log linked exactly once
    async with state.sessionmaker() as session:
        killed_row = await session.scalar(select(JobRun).where(JobRun.id == killed))
    assert killed_row is not None and killed_row.status == "abandoned"
    # its progress was written while it ran, group by group
    assert 0 < killed_row.progress < 1 and killed_row.counts["groups"] >= 1
