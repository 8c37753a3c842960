"""Engine, sessions, the unit of work, and migrations.

The edge owns the transaction: ``async with unit_of_work(sessionmaker) as session`` commits
on success and rolls back on any error. Services and repositories never commit.
"""

from __future__ import annotations

import asyncio
import json
import select
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction

from mosaic_memory.common.owner_id_list import OwnerIdList
from mosaic_memory.errors import DatabaseUnavailable, MosaicError
from mosaic_memory.tiers import to_async_url, to_sync_url

__all__ = [
    "ROW_SECURITY_SQL",
    "SCOPED_ROLE",
    "RowSecurity",
    "alembic_config",
    "create_engine_for",
    "create_sessionmaker",
    "current_revision",
    "enter_owner_scope",
    "head_revision",
    "is_connection_error",
    "is_known_revision",
    "reading_alone",
    "row_security",
    "run_migrations",
    "text_match_indexable",
    "unit_of_work",
]


def create_engine_for(
    url: str, *, pool_size: int = 10, connect_timeout: float = 5.0, ping_after_idle: float = 30.0
) -> AsyncEngine:
    engine = create_async_engine(
        to_async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"connect_timeout": max(1, int(connect_timeout))},
        json_deserializer=json_loads,
    )
    ping_when_idle(engine, ping_after_idle)
    return engine


_JSON = json.JSONDecoder()


def json_loads(data: bytes | str) -> Any:
    """A ``json``/``jsonb`` value as PostgreSQL sends it, decoded.

    ``json.loads`` on bytes guesses their encoding and checks for trailing text first: 3.2 µs for
    a small object against 0.6 µs here, and a search decodes the metadata of every candidate row
    (40 a kind). PostgreSQL sends one valid value in the connection's encoding (UTF-8); ``json``
    (not ``jsonb``) keeps the text as written, so whitespace may lead it.
    """
    return _JSON.raw_decode((data.decode() if isinstance(data, bytes) else data).lstrip())[0]


def ping_when_idle(engine: AsyncEngine, seconds: float) -> None:
    """Check a pooled connection before use when the server spoke on it while it sat in the pool,
    or when it sat there ``seconds`` or more.

    A restarted database is noticed on the next checkout, not as a 500. ``pool_pre_ping`` did
    it with a ``SELECT 1`` round trip before every request's first statement, one of five round
    trips of a search (1-2 ms each on a loaded machine). An idle connection hears nothing from a
    live server; one whose server stopped, restarted or ended its backend has the server's last
    words or the end of the stream waiting on its socket, so a poll of the socket (no round trip)
    finds it, and only such a connection is pinged (and replaced). Pinging every reused connection
    had been kept because an idle-time rule alone let a connection used a moment before a restart
    fail a request after the restart's first 503 (the restart test of the whole suite,
    2026-12-07); the poll catches that connection. The ping after ``seconds`` of idleness is for
    what a poll cannot see: a peer gone without closing (a host that vanished, a firewall that
    dropped an idle flow).
    """
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _idle_since(dbapi_connection: object, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _ping(dbapi_connection: Any, record: Any, proxy: object) -> None:
        since = record.info.pop("idle_since", None)
        if since is None:
            return  # freshly connected
        if time.monotonic() - since < seconds and not _has_input(dbapi_connection.driver_connection):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool then connects afresh (or raises what connecting raises)
            raise DisconnectionError() from exc


def _has_input(connection: Any) -> bool:
    """Whether the server sent something to this idle psycopg connection (or closed it)."""
    try:
        fd = connection.pgconn.socket
    except Exception:  # psycopg raises once the connection is closed
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # Windows: select() takes sockets there


def create_sessionmaker(engine: AsyncEngine, *, row_security: bool = False) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``. ``row_security``: the database has the wall (:func:`row_security`),
    so a session given an owner scope (:func:`enter_owner_scope`) runs its transactions in it."""
    return async_sessionmaker(
        engine,
        expire_on_commit=False,
        autoflush=False,
        sync_session_class=_WalledSession,
        info={_WALL: row_security},
    )


# -- row-level security: the second wall under the repositories' owner filter ---------------------
#
# Migration 0008 puts RLS on every table of owner-scoped rows, with a policy for the NOLOGIN role
# SCOPED_ROLE: a row is visible and writable only when its owner is in the transaction's
# ``mosaic.owner_ids``. A session works on behalf of one principal once an edge calls
# enter_owner_scope(); from then on each of its transactions starts with ONE statement that takes
# the role and the owners, both transaction-local (a pooled connection never carries them into
# another request). A session never given a scope runs as the connecting role, which RLS does not
# restrict: that is the cross-owner work (jobs over all users, admin keys, federation serving a
# grant, authentication's key lookup, migrations), and its call sites say so.

SCOPED_ROLE = "mosaic_scoped"
_WALL = "mosaic.row_security"  # session info: this database has the wall
_OWNERS = "mosaic.owner_ids"  # session info: the scope, as the setting's text; absent: unscoped
_BEGUN = "mosaic.begun"  # session info: a transaction holds a connection (the scope was due)
_SCOPE = text("SELECT set_config('role', :role, true), set_config('mosaic.owner_ids', :owners, true)")


class _WalledSession(Session):
    """The sessions of :func:`create_sessionmaker`: they carry the scope's listeners."""


@event.listens_for(_WalledSession, "after_begin")
def _scope_transaction(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    if transaction.parent is not None:  # a savepoint: its transaction already has the scope
        return
    session.info[_BEGUN] = True
    owners = session.info.get(_OWNERS)
    if owners is not None and session.info.get(_WALL):
        connection.execute(_SCOPE, {"role": SCOPED_ROLE, "owners": owners})


@event.listens_for(_WalledSession, "after_transaction_end")
def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info[_BEGUN] = False


async def enter_owner_scope(session: AsyncSession, owner_ids: Sequence[uuid.UUID]) -> None:
    """Work on behalf of the principal of ``owner_ids`` from now on: with the wall up, this and
    every later transaction of ``session`` sees and writes only rows of those owners (at most one
    statement per transaction; none when the wall is absent)."""
    session.info[_OWNERS] = OwnerIdList.of(owner_ids).text
    if session.info.get(_WALL) and session.info.get(_BEGUN):
        # The transaction began before the principal was known (authentication ran in it).
        await session.execute(_SCOPE, {"role": SCOPED_ROLE, "owners": session.info[_OWNERS]})


@asynccontextmanager
async def reading_alone(session: AsyncSession) -> AsyncIterator[AsyncConnection]:
    """The session's connection for reads that need nothing of the transaction around them: when
    the transaction has sent nothing yet, each statement of the block is a transaction of its own.

    A request that only reads (a search) then costs its statements alone: no ``BEGIN`` round trip
    before the first (psycopg sends it on its own) and no ``COMMIT`` after the last (none is due).
    Nothing is lost under READ COMMITTED, where every statement takes a snapshot of its own anyway;
    under a stricter isolation the first statement fixes the transaction's snapshot, so the block
    runs inside the transaction there, as it does once anything was sent (a scope under the wall,
    a lock, a write, transaction-local settings). The block must leave nothing for later
    statements: no ``set_config(..., true)``, no writes, no locks.
    """
    conn = await session.connection()
    driver = conn.sync_connection.connection.driver_connection if conn.sync_connection is not None else None
    if (
        driver is None
        or driver.info.transaction_status != TransactionStatus.IDLE
        or driver.isolation_level not in (None, IsolationLevel.READ_COMMITTED)
        or (session.info.get(_WALL) and session.info.get(_OWNERS) is not None)  # the scope comes first
    ):
        yield conn
        return
    await driver.set_autocommit(True)
    try:
        yield conn
    finally:
        if not (driver.closed or driver.broken):  # a broken one is dropped by the pool, not reused
            try:
                await driver.set_autocommit(False)
            except Exception:  # in a state psycopg refuses the switch in: never hand it out in autocommit
                await conn.invalidate()


# Whether the wall stands for the connecting role: the role exists without BYPASSRLS, the
# connecting role may switch into it (PostgreSQL 16 split SET off membership), and the policies
# of migration 0008 are in place with RLS on.
ROW_SECURITY_SQL = f"""
SELECT r.rolname IS NOT NULL,
       coalesce(CASE WHEN current_setting('server_version_num')::int >= 160000
                     THEN pg_has_role(current_user, r.oid, 'SET')
                     ELSE pg_has_role(current_user, r.oid, 'MEMBER') END, false),
       coalesce(r.rolbypassrls, false),
       (SELECT count(*) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
         WHERE p.polname = 'mosaic_owner_scope' AND c.relrowsecurity
           AND c.relnamespace = current_schema()::regnamespace),
       (SELECT proleakproof FROM pg_proc WHERE oid = 'pg_catalog.ts_match_vq(tsvector, tsquery)'::regprocedure)
FROM (SELECT 1) AS one LEFT JOIN pg_roles r ON r.rolname = '{SCOPED_ROLE}'
"""


@dataclass(frozen=True)
class RowSecurity:
    """The answer of :data:`ROW_SECURITY_SQL`: ``up`` when the wall stands, else ``why`` not."""

    up: bool
    why: str
    tables: int

    @classmethod
    def of(cls, row: Sequence[Any]) -> RowSecurity:
        exists, member, bypass, tables = bool(row[0]), bool(row[1]), bool(row[2]), int(row[3])
        if not exists:
            return cls(False, f"the role {SCOPED_ROLE} does not exist (migration 0008 could not create it)", tables)
        if bypass:
            return cls(False, f"the role {SCOPED_ROLE} has BYPASSRLS", tables)
        if not member:
            return cls(False, f"the connecting role may not switch into {SCOPED_ROLE} (SET ROLE)", tables)
        if tables == 0:
            return cls(False, "no table has the owner policy of migration 0008", tables)
        match = (
            "keyword matches use their index"
            if len(row) < 5 or row[4]
            else "keyword search scans the caller's rows (ts_match_vq is not LEAKPROOF: docs/security.md)"
        )
        return cls(True, f"row-level security on {tables} owner-scoped tables (role {SCOPED_ROLE}); {match}", tables)


async def row_security(engine: AsyncEngine) -> RowSecurity:
    """Whether this database has the wall for the connecting role."""
    async with engine.connect() as conn:
        return RowSecurity.of((await conn.execute(text(ROW_SECURITY_SQL))).one())


# Full-text matches under the wall. PostgreSQL runs a policy's condition before every condition of
# the query whose function is not LEAKPROOF, and may not use an index for such a condition: with
# the text match (`search_tsv @@ query`, the function ts_match_vq) not leakproof, the GIN index
# was out of reach and a keyword search read every row of the caller's scope (1.9 s for a scope
# of 100,000 rows against 0.5 ms outside the wall; docs/reliability.md). ts_match_vq tests whether
# a row's lexemes satisfy the query and returns only that boolean; its errors concern the query
# (the caller's own words), never the row, so marking it LEAKPROOF opens no channel to rows of
# other owners. Only a superuser may mark it (the embedded tier connects as one); elsewhere a DBA
# runs the statement (docs/security.md), or keyword search under the wall scans the scope.
TEXT_MATCH = "pg_catalog.ts_match_vq(tsvector, tsquery)"
_TEXT_MATCH_STATE = text(
    "SELECT p.proleakproof, r.rolsuper FROM pg_proc p JOIN pg_roles r ON r.rolname = current_user "
    "WHERE p.oid = CAST(:f AS regprocedure)"
)


async def text_match_indexable(engine: AsyncEngine) -> bool:
    """Make the text match usable by the GIN index under the wall where this role may (see
    :data:`TEXT_MATCH`); whether it is. Per database, so a restored or new one gets it at start."""
    async with engine.begin() as conn:
        leakproof, superuser = (await conn.execute(_TEXT_MATCH_STATE, {"f": TEXT_MATCH})).one()
        if leakproof or not superuser:
            return bool(leakproof)
        # Several services starting at once on one database: one alters, the others then see it
        # done (two concurrent ALTERs of one function fail with "tuple concurrently updated").
        await conn.execute(text("SELECT pg_advisory_xact_lock(72786002)"))
        leakproof, _ = (await conn.execute(_TEXT_MATCH_STATE, {"f": TEXT_MATCH})).one()
        if not leakproof:
            await conn.execute(text(f"ALTER FUNCTION {TEXT_MATCH} LEAKPROOF"))
        return True


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
