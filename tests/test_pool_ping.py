"""A pooled connection is checked before use only after it sat idle (db.py ``ping_when_idle``):
one round trip fewer per request, and a connection the database dropped is still replaced."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from mosaic_memory.container import AppState
from mosaic_memory.db import create_engine_for


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert isinstance(pid, int)
        return pid


async def _drop_from_the_server(state: AppState, pid: int) -> None:
    async with state.engine.connect() as conn:
        assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}) is True
        await conn.commit()
    # pg_terminate_backend only signals: wait until the backend is gone
    for _ in range(100):
        async with state.engine.connect() as conn:
            alive = await conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})
        if alive == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"backend {pid} did not end")


async def test_a_connection_dropped_while_idle_is_replaced_before_use(state: AppState) -> None:
    engine = create_engine_for(state.database.url, pool_size=1, ping_after_idle=0.0)
    try:
        pid = await _backend_pid(engine)
        await _drop_from_the_server(state, pid)
        assert await _backend_pid(engine) != pid  # no error: the ping found it dead, the pool reconnected
    finally:
        await engine.dispose()


async def test_a_connection_used_a_moment_ago_is_not_pinged(state: AppState) -> None:
    # The same drop with a long idle threshold: no ping, so the request itself meets the dead
    # connection (what pool_pre_ping spent a round trip per request to avoid), and the pool recovers.
    engine = create_engine_for(state.database.url, pool_size=1, ping_after_idle=3600.0)
    try:
        pid = await _backend_pid(engine)
        await _drop_from_the_server(state, pid)
        with pytest.raises(DBAPIError) as caught:
            await _backend_pid(engine)
        assert caught.value.connection_invalidated
        assert await _backend_pid(engine) != pid
    finally:
        await engine.dispose()
