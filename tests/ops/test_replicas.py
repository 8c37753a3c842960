"""Two real service processes on one PostgreSQL (the embedded server started by the test, reached
as a standalone URL): a write through one is read through the other, a scheduled job runs once
per fire, and the background log embedder never embeds a row twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from mosaic_memory.db import run_migrations
from tests.conftest import ADMIN_KEY, auth, free_port, scratch_dir, wait_until_up
from tests.ops.conftest import ROOT, Server, scalar

# Every time a row gets a vector, the database itself records it: a row embedded twice shows up twice.
AUDIT_SQL = [
    "CREATE TABLE test_embed_audit (owner_id uuid, id uuid, at timestamptz DEFAULT clock_timestamp())",
    "CREATE FUNCTION test_embed_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO test_embed_audit (owner_id, id) VALUES (NEW.owner_id, NEW.id); RETURN NEW; END $$",
    "CREATE TRIGGER test_embed_audit AFTER INSERT OR UPDATE OF embedding ON agent_logs FOR EACH ROW "
    "WHEN (NEW.embedding IS NOT NULL) EXECUTE FUNCTION test_embed_audit()",
]


@dataclass
class Replica:
    url: str
    proc: subprocess.Popen[str]
    data_dir: Path


@dataclass
class Pair:
    a: Replica
    b: Replica
    database_url: str
    started: float  # epoch seconds once both were ready


def _start(database_url: str) -> Replica:
    data_dir = scratch_dir("mosaic-replica-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env.update(
        MOSAIC_DATABASE_URL=database_url,
        MOSAIC_DATA_DIR=str(data_dir),
        MOSAIC_ADMIN_KEY=ADMIN_KEY,
        MOSAIC_CONFIG_FILE="",
        MOSAIC_JOBS__MAINTENANCE_CRON="*/2 * * * * *",  # expire-decay every 2 seconds on both
        MOSAIC_LOGS__EMBED_INLINE_BUDGET_MS="0",  # every log write leaves its rows to the embedders
        MOSAIC_LOGS__EMBED_BATCH_SIZE="8",
        MOSAIC_LOGS__EMBED_MAX_DELAY_S="0.3",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mosaic_memory", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Replica(f"http://127.0.0.1:{port}", proc, data_dir)


def _wait_ready(replica: Replica) -> None:
    def output() -> str:
        return replica.proc.stderr.read() if replica.proc.stderr and replica.proc.poll() is not None else ""

    wait_until_up(replica.url, replica.proc, output, deadline=time.monotonic() + 180)


@pytest.fixture(scope="module")
async def pair(target_server: Server) -> AsyncIterator[Pair]:
    url = target_server.create("mosaic_replicas")
    await run_migrations(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in AUDIT_SQL:
            conn.execute(stmt)
    a, b = _start(url), _start(url)
    try:
        _wait_ready(a)
        _wait_ready(b)
        yield Pair(a, b, url, time.time())
    finally:
        for replica in (a, b):
            if replica.proc.poll() is None:
                replica.proc.send_signal(signal.SIGTERM)
                replica.proc.wait(60)
            shutil.rmtree(replica.data_dir, ignore_errors=True)


def _user(pair: Pair, name: str) -> dict[str, str]:
    r = httpx.post(f"{pair.a.url}/v1/admin/users", json={"name": name}, headers=auth(ADMIN_KEY), timeout=30)
    assert r.status_code == 201, r.text
    return auth(r.json()["api_key"])


def test_written_through_one_read_through_the_other(pair: Pair) -> None:
    headers = _user(pair, "replica-reader")  # created through A, authenticated by B below
    r = httpx.post(
        f"{pair.a.url}/v1/insights", json={"content": "Backups run at four every morning"}, headers=headers, timeout=60
    )
    assert r.status_code == 201, r.text
    insight_id = r.json()["id"]
    got = httpx.get(f"{pair.b.url}/v1/insights/{insight_id}", headers=headers, timeout=30)
    assert got.status_code == 200 and got.json()["content"] == "Backups run at four every morning"
    found = httpx.post(
        f"{pair.b.url}/v1/search", json={"query": "when do backups happen?", "k": 3}, headers=headers, timeout=60
    )
    assert found.status_code == 200, found.text
    assert found.json()["hits"][0]["id"] == insight_id


def test_background_embedding_is_not_done_twice(pair: Pair) -> None:
    headers = _user(pair, "replica-logger")
    per_replica = 150
    for replica, tag in ((pair.a, "a"), (pair.b, "b")):
        events = [
            {"session_id": f"s-{tag}", "content": f"replica {tag} event {i}: step {i % 13}"} for i in range(per_replica)
        ]
        r = httpx.post(f"{replica.url}/v1/logs", json={"events": events}, headers=headers, timeout=60)
        assert r.status_code in (200, 201, 202), r.text
    owner = scalar(pair.database_url, "SELECT id FROM owners WHERE name = 'replica-logger'")
    deadline = time.monotonic() + 300
    pending = -1
    while time.monotonic() < deadline:
        pending = scalar(
            pair.database_url, "SELECT count(*) FROM agent_logs WHERE owner_id = %s AND embedding IS NULL", (owner,)
        )
        if pending == 0:
            break
        time.sleep(0.5)
    assert pending == 0, "the replicas did not embed the backlog"
    with psycopg.connect(pair.database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT id) FROM test_embed_audit WHERE owner_id = %s", (owner,)
        ).fetchone()
    assert row is not None
    assert row == (2 * per_replica, 2 * per_replica), f"{row[0]} embeddings written for {row[1]} rows"


def test_scheduled_job_runs_once_per_fire(pair: Pair) -> None:
    # Wait for a few fires of expire-decay (every 2 s on both replicas) after both were up.
    deadline = time.monotonic() + 120
    fires = 0
    while time.monotonic() < deadline and fires < 4:
        fires = scalar(
            pair.database_url,
            "SELECT count(DISTINCT scheduled_for) FROM job_runs WHERE job_id = 'expire-decay' "
            "AND trigger = 'schedule' AND status <> 'running' AND scheduled_for > to_timestamp(%s)",
            (pair.started,),
        )
        time.sleep(0.5)
    assert fires >= 4, "the scheduled job did not fire"
    with psycopg.connect(pair.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT scheduled_for, count(*), array_agg(status) FROM job_runs WHERE job_id = 'expire-decay' "
            "AND trigger = 'schedule' AND scheduled_for > to_timestamp(%s) GROUP BY scheduled_for",
            (pair.started,),
        ).fetchall()
        skipped = conn.execute(
            "SELECT count(*) FROM job_runs WHERE job_id = 'expire-decay' AND status = 'skipped'"
        ).fetchone()
    assert all(count == 1 for _, count, _ in rows), f"a fire ran more than once: {rows}"
    assert {s for _, _, statuses in rows for s in statuses} <= {"succeeded", "running"}, rows
    assert skipped == (0,), "a replica recorded a skipped run for a fire the other one ran"
