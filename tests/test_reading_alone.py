"""db.py ``reading_alone``: a read that is its transaction's first statement runs alone (no BEGIN
and no COMMIT on the wire); after anything else was sent, under a stricter isolation, or in an
owner scope under the wall, it runs inside the transaction."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from psycopg.pq import TransactionStatus
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from mosaic_memory.container import AppState
from mosaic_memory.db import enter_owner_scope, reading_alone


def _status(conn: AsyncConnection) -> TransactionStatus:
    assert conn.sync_connection is not None
    driver = conn.sync_connection.connection.driver_connection
    assert driver is not None
    return TransactionStatus(driver.info.transaction_status)


async def test_a_first_read_runs_alone_and_leaves_nothing_to_commit(state: AppState) -> None:
    async with state.sessionmaker() as session, session.begin():
        async with reading_alone(session) as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
        assert _status(conn) == TransactionStatus.IDLE  # nothing begun: the commit sends nothing
        await session.execute(text("SELECT 1"))  # the next statement begins the transaction
        assert _status(conn) == TransactionStatus.INTRANS


async def test_a_read_after_other_statements_stays_in_their_transaction(state: AppState) -> None:
    async with state.sessionmaker() as session, session.begin():
        await session.execute(text("SELECT set_config('mosaic.probe', 'kept', true)"))
        async with reading_alone(session) as conn:
            assert await conn.scalar(text("SELECT current_setting('mosaic.probe')")) == "kept"
            assert _status(conn) == TransactionStatus.INTRANS


async def test_a_stricter_isolation_keeps_the_read_in_the_transaction(state: AppState) -> None:
    async with state.sessionmaker() as session, session.begin():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        async with reading_alone(session) as conn:
            await conn.execute(text("SELECT 1"))
            assert _status(conn) == TransactionStatus.INTRANS  # the snapshot is the transaction's


async def test_an_owner_scope_under_the_wall_comes_before_the_read(state: AppState) -> None:
    owner = uuid.uuid4()
    async with state.sessionmaker() as session, session.begin():
        await enter_owner_scope(session, [owner])
        async with reading_alone(session) as conn:
            assert await conn.scalar(text("SELECT current_setting('mosaic.owner_ids', true)")) == str(owner)


async def test_a_read_cut_short_never_leaves_a_connection_in_autocommit(state: AppState) -> None:
    drivers: list[Any] = []

    async def slow_read() -> None:
        async with state.sessionmaker() as session, session.begin(), reading_alone(session) as conn:
            assert conn.sync_connection is not None
            drivers.append(conn.sync_connection.connection.driver_connection)
            await conn.execute(text("SELECT pg_sleep(5)"))

    task = asyncio.create_task(slow_read())
    while not drivers:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert drivers[0].closed or not drivers[0].autocommit
