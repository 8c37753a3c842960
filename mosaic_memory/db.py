"""Engine, sessions, the unit of work, and migrations.

The edge owns the transaction: ``async with unit_of_work(sessionmaker) as session`` commits
on success and rolls back on any error. Services and repositories never commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from mosaic_memory.errors import DatabaseUnavailable, MosaicError
from mosaic_memory.tiers import to_async_url, to_sync_url

__all__ = [
    "alembic_config",
    "create_engine_for",
    "create_sessionmaker",
    "current_revision",
    "head_revision",
    "is_connection_error",
    "is_known_revision",
    "run_migrations",
    "unit_of_work",
]


def create_engine_for(
    url: str, *, pool_size: int = 10, connect_timeout: float = 5.0, ping_after_idle: float = 1.0
) -> AsyncEngine:
    engine = create_async_engine(
        to_async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"connect_timeout": max(1, int(connect_timeout))},
    )
    ping_when_idle(engine, ping_after_idle)
    return engine


def ping_when_idle(engine: AsyncEngine, seconds: float) -> None:
    """Check a pooled connection before use when it sat idle for ``seconds`` or more.

    A restarted database is noticed on the next checkout, not as a 500. ``pool_pre_ping`` did
    it on every checkout: a ``SELECT 1`` round trip before every request's first statement, one
    of five round trips of a search (1-2 ms each on a loaded machine). A connection checked in
    less than ``seconds`` ago was just used; if the database went away since, that request fails
    with ``DatabaseUnavailable`` and SQLAlchemy drops the whole pool, as before.
    """
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _idle_since(dbapi_connection: object, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _ping(dbapi_connection: Any, record: Any, proxy: object) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < seconds:
            return  # freshly connected, or used a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool then connects afresh (or raises what connecting raises)
            raise DisconnectionError() from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@asynccontextmanager
async def unit_of_work(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block succeeds, rolled back when it raises."""
    try:
        async with sessionmaker() as session, session.begin():
            yield session
    except MosaicError:
        raise
    except (OSError, DBAPIError) as exc:
        if isinstance(exc, OSError) or is_connection_error(exc):
            raise DatabaseUnavailable() from exc
        raise


def alembic_config(sync_url: str | None = None, *, dimensions: int = 384) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("mosaic_memory") / "migrations"))
    if sync_url:
        cfg.set_main_option("sqlalchemy.url", sync_url.replace("%", "%%"))
    cfg.attributes["embedding_dimensions"] = dimensions
    return cfg


def _sync_engine(url: str) -> Engine:
    return create_engine(to_sync_url(url), pool_pre_ping=True)


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None
    return head


def is_known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this version's migrations (False: a newer version wrote it)."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for an unknown or malformed id
        return False


def _current_revision_sync(url: str) -> str | None:
    engine = _sync_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


async def current_revision(url: str) -> str | None:
    return await asyncio.to_thread(_current_revision_sync, url)


def _run_migrations_sync(url: str, revision: str, dimensions: int, direction: str) -> None:
    engine = _sync_engine(url)
    try:
        with engine.begin() as conn:
            # Serialise concurrent upgrades from several replicas starting at once.
            conn.execute(text("SELECT pg_advisory_xact_lock(72786001)"))
            cfg = alembic_config(dimensions=dimensions)
            cfg.attributes["connection"] = conn
            if direction == "up":
                command.upgrade(cfg, revision)
            else:
                command.downgrade(cfg, revision)
    finally:
        engine.dispose()


async def run_migrations(url: str, *, revision: str = "head", dimensions: int = 384, direction: str = "up") -> None:
    """Apply (or revert) migrations; safe to call from several processes at once."""
    await asyncio.to_thread(_run_migrations_sync, url, revision, dimensions, direction)
