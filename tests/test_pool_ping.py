"""A pooled connection is pinged before use only when the server spoke on it while it was idle, or
after a long idle (db.py ``ping_when_idle``): one round trip fewer per request, and a connection the
database dropped is still replaced before a request meets it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
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


async def test_a_connection_dropped_a_moment_ago_is_replaced_too(state: AppState) -> None:
    # A long idle threshold: no ping for idleness, but the server's goodbye waits on the socket,
    # so the checkout still finds the connection dead and the request never meets it.
    engine = create_engine_for(state.database.url, pool_size=1, ping_after_idle=3600.0)
    try:
        pid = await _backend_pid(engine)
        await _drop_from_the_server(state, pid)
        assert await _backend_pid(engine) != pid
    finally:
        await engine.dispose()


async def test_a_live_connection_used_a_moment_ago_costs_no_ping(
    state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine_for(state.database.url, pool_size=1, ping_after_idle=3600.0)
    dialect = engine.sync_engine.dialect
    pings: list[object] = []
    ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    try:
        pid = await _backend_pid(engine)
        assert await _backend_pid(engine) == pid
        assert pings == []
    finally:
        await engine.dispose()
