"""Durability in the shape of a Jepsen set test (issue 12, item 1).

Concurrent clients add uniquely identified insights, preferences and log events to real
``mosaic-memory serve`` processes over HTTP while something is killed with SIGKILL at random
moments, again and again:

* ``test_service_killed``: one of four serve processes on the embedded PostgreSQL (local tier);
  it is started again at once while the others keep taking writes;
* ``test_postgres_killed``: the embedded PostgreSQL itself (the postmaster and every backend at
  once, as a crash of its machine would), started again on the same data directory under the
  four serve processes, which keep running;
* ``test_summarization_killed``: ``mosaic-memory jobs run summarize`` at random points of its run
  over a set of sessions that grows as the kills go on; then one run finishes the rest.

Afterwards every acknowledged write is present exactly once, no row is partial, and the HNSW
index and a sequential scan agree (``tests/reliability/checks.py``). ``MOSAIC_DURABILITY_CYCLES``
(default 50) is the number of kills of the first two tests; the summarization test kills a fifth
as often (each of its cycles starts a job process and lets it work). ``-s`` prints one line per
test. Figures: docs/reliability.md.

A restart is a fork of a process that has already imported the service
(``tests/reliability/forkserver.py``), which then runs the CLI's own ``serve``: 1 s instead of a
cold start's 7 s, so the cycles fit the CI budget.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from embeddings import content_hash
from mosaic_memory.config import Settings
from mosaic_memory.db import create_engine_for, run_migrations
from mosaic_memory.logs.spec import log_text
from mosaic_memory.tiers import Database, start_embedded
from tests.conftest import ADMIN_KEY, auth, scratch_dir
from tests.jobs.topics import CI, FONT, REPLICA, TRIP
from tests.reliability.checks import Findings, check_index, check_writes
from tests.reliability.harness import (
    Fleet,
    ForkServer,
    Ledger,
    Phases,
    Writers,
    crash_postgres,
    fleet_of,
    pid_alive,
    process_env,
    reap_orphans,
    run_for,
    sigkill_and_wait,
)

pytestmark = pytest.mark.slow

CYCLES = int(os.environ.get("MOSAIC_DURABILITY_CYCLES", "50"))
SEED = int(os.environ.get("MOSAIC_DURABILITY_SEED", str(random.randrange(1_000_000))))
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
WRITERS = 4
SERVES = 4  # two may be restarting while two take the writes


@dataclass
class Cluster:
    """An embedded PostgreSQL of this module's own (it kills it), and the fork server."""

    data_dir: Path
    database: Database
    engine: AsyncEngine
    forkserver: ForkServer

    def serve_env(self, **extra: str) -> dict[str, str]:
        return process_env(
            MOSAIC_DATA_DIR=str(self.data_dir),
            MOSAIC_TIER="local",
            MOSAIC_ADMIN_KEY=ADMIN_KEY,
            MOSAIC_JOBS__ENABLED="false",
            MOSAIC_LOGS__EMBED_MAX_DELAY_S="1",
            **extra,
        )

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.database.url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return list(cur.fetchall()) if cur.description else []


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[Cluster]:
    path = scratch_dir("mosaic-durability-")
    forkserver = ForkServer()  # its imports run while the server starts and migrates
    reap_orphans(True)  # before the server starts, so that its processes become ours to reap
    database = None
    engine = None
    try:
        database = await asyncio.to_thread(start_embedded, Settings(data_dir=path, tier="local"))
        await run_migrations(database.url)
        engine = create_engine_for(database.url, pool_size=2)
        yield Cluster(path, database, engine, forkserver)
    finally:
        if engine is not None:
            await engine.dispose()
        forkserver.close()
        if database is not None:
            database.close()
        reap_orphans(False)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def fleet(cluster: Cluster) -> Iterator[Fleet]:
    """``SERVES`` serve processes on the module's database (local tier, background embedders on),
    shared by the first two tests: the first kills and restarts them, the second keeps them."""
    with fleet_of(cluster.forkserver, cluster.serve_env(), cluster.data_dir, size=SERVES) as started:
        yield started


def new_user(url: str, cluster: Cluster) -> tuple[dict[str, str], uuid.UUID]:
    name = f"durable-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{url}/v1/admin/users", json={"name": name}, headers=auth(ADMIN_KEY), timeout=30)
    assert r.status_code == 201, r.text
    rows = cluster.sql("SELECT id FROM owners WHERE kind = 'user' AND name = %s", name)
    owner = rows[0][0]
    assert isinstance(owner, uuid.UUID)
    return auth(r.json()["api_key"]), owner


def unembedded(cluster: Cluster, owner: uuid.UUID) -> int:
    rows = cluster.sql("SELECT count(*) FROM agent_logs WHERE owner_id = %s AND embedding IS NULL", owner)
    return int(str(rows[0][0]))


def wait_for_embedder(cluster: Cluster, owner: uuid.UUID) -> None:
    """Until the background embedders have caught up with every pending log event; those still
    pending after two minutes are reported as partial rows by the checks."""
    run_for(120, lambda: unembedded(cluster, owner) == 0, poll=0.5)


async def verify(cluster: Cluster, owner: uuid.UUID, ledger: Ledger) -> Findings:
    assert ledger.acknowledged > 0, ledger.statuses
    findings = await check_writes(cluster.engine, owner, ledger, MODEL)
    await check_index(cluster.engine, owner, findings, seed=SEED)
    return findings


def kill_service_cycles(fleet: Fleet, rng: random.Random, cycles: int) -> None:
    """Kill a serve that is taking writes at a random moment and start it again at once; the
    next kill waits until two serves are ready, so the victim has served and the writers always
    have somewhere to go. Restarts overlap the writes and the next cycles."""
    for _ in range(cycles):
        while len(fleet.ready()) < 2:
            assert not fleet.failures, fleet.failures[0]
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.3))
        victim = rng.choice(fleet.ready())
        fleet.kill(victim)
        fleet.start(victim)


async def test_service_killed(cluster: Cluster, fleet: Fleet) -> None:
    ledger = Ledger()
    phases = Phases()
    kills_before = fleet.kills

    def drive() -> uuid.UUID:
        headers, owner = new_user(fleet.slots[0].url, cluster)
        with Writers(fleet, headers, ledger, count=WRITERS, seed=SEED) as writers:
            kill_service_cycles(fleet, random.Random(SEED), CYCLES)
        assert not writers.errors, writers.errors[:3]
        phases.mark("kills")
        fleet.wait_ready()
        wait_for_embedder(cluster, owner)
        phases.mark("catch-up")
        assert not fleet.failures, fleet.failures[0]
        return owner

    owner = await asyncio.to_thread(drive)
    findings = await verify(cluster, owner, ledger)
    phases.mark("checks")
    starts, cpu = sorted(fleet.start_seconds), sorted(fleet.start_cpu)
    print(
        f"\n[durability] service SIGKILL: {fleet.kills - kills_before} kills of {SERVES} serve processes, median start "
        f"{starts[len(starts) // 2]:.1f} s ({cpu[len(cpu) // 2]:.2f} CPU s), {ledger.acknowledged} writes acknowledged "
        f"({ledger.statuses.most_common()}); {findings.line()}; {phases}, seed {SEED}"
    )
    assert fleet.kills - kills_before == CYCLES
    assert not findings.failures(), findings.failures()


def kill_postgres_cycles(cluster: Cluster, fleet: Fleet, rng: random.Random, cycles: int) -> list[int]:
    """Crash the embedded PostgreSQL (``crash_postgres``), start it again on the same data
    directory (crash recovery from the WAL), and go on; returns how many processes each kill hit."""
    server = cluster.database.server
    killed = []
    for _ in range(cycles):
        time.sleep(rng.uniform(0.05, 0.3))
        pid = server.get_pid()
        assert pid is not None, "the embedded PostgreSQL is not running"
        killed.append(crash_postgres(pid))
        with server._lock:  # the library's own start, as test_limits.py's restart does
            server.ensure_postgres_running()
        assert not fleet.failures, fleet.failures[0]
    return killed


async def test_postgres_killed(cluster: Cluster, fleet: Fleet) -> None:
    ledger = Ledger()
    phases = Phases()
    assert cluster.sql("SHOW recovery_init_sync_method")[0][0] == "syncfs"  # the embedded default

    def drive() -> tuple[uuid.UUID, list[int]]:
        fleet.wait_ready()
        headers, owner = new_user(fleet.slots[0].url, cluster)
        serves = [s.pid for s in fleet.slots]
        phases.mark("start")
        with Writers(fleet, headers, ledger, count=WRITERS, seed=SEED) as writers:
            killed = kill_postgres_cycles(cluster, fleet, random.Random(SEED), CYCLES)
            phases.mark("kills")
            # The service answers again without a restart of its own: writes go on succeeding.
            before = len(ledger.logs_acked) + len(ledger.insights)
            assert run_for(60, lambda: len(ledger.logs_acked) + len(ledger.insights) > before + 20), ledger.statuses
        assert not writers.errors, writers.errors[:3]
        assert [s.pid for s in fleet.slots] == serves and all(map(pid_alive, serves))
        phases.mark("writes after")
        wait_for_embedder(cluster, owner)
        phases.mark("catch-up")
        return owner, killed

    owner, killed = await asyncio.to_thread(drive)
    findings = await verify(cluster, owner, ledger)
    phases.mark("checks")
    print(
        f"\n[durability] PostgreSQL SIGKILL: {len(killed)} kills ({sum(killed)} processes: postmaster and "
        f"backends) under {SERVES} serve processes, {ledger.acknowledged} writes acknowledged "
        f"({ledger.statuses.most_common()}); {findings.line()}; {phases}, seed {SEED}"
    )
    assert len(killed) == CYCLES
    assert not findings.failures(), findings.failures()


# Summarization ------------------------------------------------------------------------------------

SUMMARY_KILLS = max(3, CYCLES // 5)
PLACES = (
    "Lima", "Oslo", "Quito", "Hanoi", "Accra", "Perth", "Riga", "Lyon", "Cusco", "Nairobi", "Porto",
    "Minsk", "Doha", "Turin", "Kyoto", "Bergen", "Dakar", "Tartu", "Sucre", "Haifa", "Split", "Aarhus",
    "Cork", "Basel",
)  # fmt: skip


def sessions(batch: int) -> list[tuple[str, list[str]]]:
    """Four sessions on distinct topics, worded for ``batch``'s place, so batches resemble each
    other (their facts may merge into earlier insights) without being identical."""
    place = PLACES[batch % len(PLACES)]
    return [
        (f"sum-{batch}-{n}", [f"{line} (office in {place})" for line in lines])
        for n, lines in enumerate((REPLICA, FONT, TRIP, CI))
    ]


@dataclass
class SummaryDb:
    """The summarization test's own database on the module's server (the job summarizes every
    owner's logs, so the other tests' logs stay out of its way), and a job process's environment."""

    url: str
    env: dict[str, str]
    logs: Path
    batches: int = 0

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return list(cur.fetchall()) if cur.description else []

    def add_sessions(self, owner: uuid.UUID) -> None:
        """Four more sessions, stored as a client's write leaves them: no vectors yet (the job
        embeds what the background embedder has not reached)."""
        when = datetime.now(UTC) - timedelta(hours=1)
        rows = [
            (
                owner,
                uuid.uuid4(),
                sid,
                "durability",
                line,
                content_hash(log_text(line)),
                when + n * timedelta(seconds=1),
            )
            for sid, lines in sessions(self.batches)
            for n, line in enumerate(lines)
        ]
        self.batches += 1
        with psycopg.connect(self.url, autocommit=True) as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO agent_logs (owner_id, id, session_id, agent_id, content, content_hash, occurred_at, "
                "created_at, metadata) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '{}')",
                [(*r, r[-1]) for r in rows],
            )

    def pending_sessions(self) -> int:
        rows = self.sql("SELECT count(DISTINCT session_id) FROM agent_logs WHERE summarized_at IS NULL")
        return int(str(rows[0][0]))

    def runs(self) -> dict[uuid.UUID, str]:
        return {uuid.UUID(str(r[0])): str(r[1]) for r in self.sql("SELECT id, status FROM job_runs")}

    def duration(self, run: uuid.UUID) -> float:
        rows = self.sql("SELECT extract(epoch FROM finished_at - started_at) FROM job_runs WHERE id = %s", run)
        return float(str(rows[0][0]))

    def groups_of(self, run: uuid.UUID) -> int:
        rows = self.sql("SELECT count(DISTINCT session_id) FROM agent_logs WHERE summarized_by_run = %s", run)
        return int(str(rows[0][0]))


def summarize(cluster: Cluster, db: SummaryDb, name: str) -> tuple[int, uuid.UUID | None]:
    """``mosaic-memory jobs run summarize`` in a process of its own; returns its pid once its run
    is in the ledger (its model loaded: what follows is the run itself), or with None if the
    process ended first."""
    before = set(db.runs())
    pid = cluster.forkserver.spawn(["jobs", "run", "summarize", "--json"], db.env, db.logs / f"{name}.log")
    new: list[uuid.UUID] = []

    def started() -> bool:
        new[:] = [r for r in db.runs() if r not in before]
        return bool(new) or not pid_alive(pid)

    assert run_for(120, started, poll=0.01), f"no run in the ledger:\n{(db.logs / f'{name}.log').read_text()}"
    return pid, (new[0] if new else None)


def summary_checks(db: SummaryDb, owner: uuid.UUID) -> dict[str, object]:
    """Every log consumed and linked to exactly one insight of the run that consumed it; no
    insight twice; every insight whole and citing at least one log."""

    def one(query: str) -> object:
        return db.sql(query, owner)[0][0]

    return {
        "logs not consumed": one("SELECT count(*) FROM agent_logs WHERE owner_id = %s AND summarized_at IS NULL"),
        "consumed logs without their run": one(
            "SELECT count(*) FROM agent_logs WHERE owner_id = %s AND summarized_at IS NOT NULL "
            "AND summarized_by_run IS NULL"
        ),
        "consumed logs linked to no insight": one(
            "SELECT count(*) FROM agent_logs l WHERE owner_id = %s AND summarized_at IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM insight_sources s WHERE s.owner_id = l.owner_id AND s.log_id = l.id)"
        ),
        "logs linked more than once": one(
            "SELECT count(*) FROM (SELECT log_id FROM insight_sources WHERE owner_id = %s "
            "GROUP BY log_id HAVING count(*) > 1) x"
        ),
        "links from a run other than the log's": one(
            "SELECT count(*) FROM insight_sources s JOIN agent_logs l ON l.owner_id = s.owner_id AND l.id = s.log_id "
            "WHERE s.owner_id = %s AND s.run_id IS DISTINCT FROM l.summarized_by_run"
        ),
        "links to a missing insight": one(
            "SELECT count(*) FROM insight_sources s WHERE owner_id = %s AND NOT EXISTS "
            "(SELECT 1 FROM insights i WHERE i.owner_id = s.owner_id AND i.id = s.insight_id)"
        ),
        "duplicate insights": one(
            "SELECT count(*) FROM (SELECT content_hash FROM insights WHERE owner_id = %s "
            "GROUP BY content_hash HAVING count(*) > 1) x"
        ),
        "insights citing no log": one(
            "SELECT count(*) FROM insights i WHERE owner_id = %s AND NOT EXISTS "
            "(SELECT 1 FROM insight_sources s WHERE s.owner_id = i.owner_id AND s.insight_id = i.id)"
        ),
        "insights without a vector": one(
            "SELECT count(*) FROM insights WHERE owner_id = %s AND (embedding IS NULL OR embedding_model IS NULL)"
        ),
    }


async def test_summarization_killed(cluster: Cluster) -> None:
    name = f"durability_summary_{uuid.uuid4().hex[:8]}"
    cluster.sql(f'CREATE DATABASE "{name}"')
    url = cluster.database.url.replace("postgres:@/postgres?", f"postgres:@/{name}?")
    assert url != cluster.database.url, "unexpected URL form of the embedded server"
    logs = scratch_dir("mosaic-durability-summary-")
    env = process_env(MOSAIC_TIER="standalone", MOSAIC_DATABASE_URL=url, MOSAIC_DATA_DIR=str(logs))
    db = SummaryDb(url, env, logs)
    rng = random.Random(SEED)
    started = time.monotonic()
    killed_after: list[int] = []  # per killed run: how many groups it had committed
    killed_runs: list[uuid.UUID] = []
    finished_first = 0

    def drive() -> tuple[uuid.UUID, str]:
        nonlocal finished_first
        owner = uuid.uuid4()
        db.sql("INSERT INTO owners (id, kind, name) VALUES (%s, 'user', %s)", owner, f"durable-{owner.hex[:8]}")
        window = 1.5  # the kill lands within this many seconds of the run's start
        for _ in range(3 * SUMMARY_KILLS):
            if len(killed_after) == SUMMARY_KILLS:
                break
            while db.pending_sessions() < 4:
                db.add_sessions(owner)
            pid, run = summarize(cluster, db, f"killed-{len(killed_after) + finished_first}")
            time.sleep(rng.uniform(0.0, window))  # a random point of the run itself
            if run is not None and pid_alive(pid):
                sigkill_and_wait([pid])
                killed_after.append(db.groups_of(run))
                killed_runs.append(run)
            else:
                # It finished first: aim within the length of a run from now on.
                finished_first += 1
                assert run_for(60, lambda: not pid_alive(pid)), "a finished run's process did not end"  # noqa: B023
                window = min(window, 0.9 * db.duration(run)) if run is not None else window
        # The rerun, not killed, completes what the killed ones left (a dead run's advisory lock
        # is released as soon as PostgreSQL sees its connection close; a run that still finds it
        # held records "skipped", and is tried again).
        for attempt in range(20):
            pid, run = summarize(cluster, db, f"rerun-{attempt}")
            assert run is not None
            assert run_for(300, lambda: not pid_alive(pid), poll=0.05), "the rerun did not end"  # noqa: B023
            status = db.runs()[run]
            if status != "skipped":
                return owner, status
            time.sleep(0.5)
        raise AssertionError("every rerun was skipped")

    try:
        await run_migrations(url)
        owner, status = await asyncio.to_thread(drive)
        checks = await asyncio.to_thread(summary_checks, db, owner)
        states = db.runs()
        engine = create_engine_for(url, pool_size=1)
        try:
            findings = Findings()
            await check_index(engine, owner, findings, seed=SEED)
        finally:
            await engine.dispose()
        consumed = db.sql("SELECT count(*) FROM agent_logs WHERE owner_id = %s", owner)[0][0]
        insights = db.sql("SELECT count(*) FROM insights WHERE owner_id = %s", owner)[0][0]
        print(
            f"\n[durability] summarization SIGKILL: {len(killed_after)} runs killed at random points, "
            f"{sum(states[r] != 'abandoned' for r in killed_runs)} of them after their run had ended "
            f"(groups each had committed: {killed_after}), {finished_first} finished before their kill; "
            f"rerun {status}; {consumed} logs "
            f"consumed into {insights} insights; runs {sorted(states.values())}; "
            f"{', '.join(f'{k} {v}' for k, v in checks.items())}; index misses {len(findings.index_misses)}, "
            f"top-k mismatches {len(findings.topk_mismatches)}; {time.monotonic() - started:.1f} s, seed {SEED}"
        )
        assert status == "succeeded"
        assert len(killed_after) == SUMMARY_KILLS, "runs ended before their kill"
        assert "running" not in states.values(), states
        assert all(v == 0 for v in checks.values()), checks
        assert not findings.failures(), findings.failures()
    finally:
        cluster.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(logs, ignore_errors=True)
