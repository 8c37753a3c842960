"""``migrate-tier``: copy every table of this instance's database onto another PostgreSQL.

Guarantees:

- **the source is only read**: one ``REPEATABLE READ READ ONLY`` transaction, so the copy and its
  verification see one consistent snapshot even while a service keeps writing;
- **re-runnable**: rows move in key-ordered batches, each one transaction on the target that
  upserts (``INSERT ... ON CONFLICT DO UPDATE``) and deletes target rows of its key range the
  snapshot does not hold; a run killed at any point leaves whole batches, and the next run ends
  with the target equal to the source, nothing lost or doubled;
- **one run at a time**: a session advisory lock on both sides (released by the server when the
  process dies, even under ``kill -9``);
- **never onto another instance's data**: the target's ``instance_meta['instance_id']`` must be
  this instance's, or the target must hold no rows;
- **verified**: row counts and per-table checksums (vectors included) equal on both sides;
- identity sequences are set past the copied values, so the target's next insert fits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mosaic_memory.db import head_revision, run_migrations
from mosaic_memory.errors import MigrationRefused, StorageTierError, TierMigrationFailed
from mosaic_memory.tiermove.catalog import (
    SESSION_SETTINGS,
    TableChecksum,
    TableInfo,
    checksums,
    column_type,
    read_tables,
    table_names,
)
from mosaic_memory.tiers import libpq_url, redact_database_url, with_database

__all__ = ["LOCK_KEY", "MigrationPlan", "MigrationReport", "ProgressCallback", "TablePlan", "migrate_tier"]

LOCK_KEY = 72786004  # the session advisory lock of a migrate-tier run (migrations use 72786001)
ProgressCallback = Callable[[str, int, int], None]
"""Called with (table, rows copied so far, rows in the table) after each batch."""


@dataclass
class TablePlan:
    name: str
    source_rows: int
    target_rows: int | None  # None: the target has no such table yet


@dataclass
class MigrationPlan:
    """What a run does (or, with ``dry_run``, would do)."""

    source: str  # redacted
    target: str  # redacted
    instance_id: str
    create_database: bool = False
    migrate_schema: bool = False
    resume: bool = False  # the target already holds part of this instance's data
    tables: list[TablePlan] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(t.source_rows for t in self.tables)


@dataclass
class MigrationReport:
    plan: MigrationPlan
    dry_run: bool
    verified: dict[str, TableChecksum] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)


class _Scrub:
    """Removes the URLs' passwords from any message that might quote them."""

    def __init__(self, *urls: str) -> None:
        self.secrets = [p for p in (make_url(libpq_url(u)).password for u in urls) if p]

    def __call__(self, message: str) -> str:
        for secret in self.secrets:
            message = message.replace(secret, "***")
        return message


class _NoSuchDatabase(Exception):
    """The server answered, but the database the URL names does not exist (yet)."""


async def _connect(url: str, scrub: _Scrub, what: str) -> AsyncConnection[Any]:
    try:
        conn = await AsyncConnection.connect(libpq_url(url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        text = str(exc).strip()
        if "database" in text and "does not exist" in text:
            raise _NoSuchDatabase() from None
        reason = scrub(text.splitlines()[0] if text else type(exc).__name__)
        raise StorageTierError(f"cannot connect to the {what} database {redact_database_url(url)}: {reason}") from None
    for stmt in SESSION_SETTINGS:
        await conn.execute(stmt)
    return conn


async def _create_database(url: str, scrub: _Scrub) -> None:
    name = make_url(libpq_url(url)).database
    assert name
    conn = await _connect(with_database(url, "postgres"), scrub, "target server's maintenance")
    try:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateDatabase:
        pass  # a concurrent or earlier run made it
    finally:
        await conn.close()


async def _value_if_table(conn: AsyncConnection[Any], table: str, query: str) -> str | None:
    """The first column of ``query``'s first row, or None when ``table`` or the row is missing."""
    if table not in await _all_tables(conn):
        return None
    cur = await conn.execute(query)
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def _revision(conn: AsyncConnection[Any]) -> str | None:
    return await _value_if_table(conn, "alembic_version", "SELECT version_num FROM alembic_version")


async def _all_tables(conn: AsyncConnection[Any]) -> set[str]:
    cur = await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(r[0]) for r in await cur.fetchall()}


async def _instance_id(conn: AsyncConnection[Any]) -> str | None:
    return await _value_if_table(conn, "instance_meta", "SELECT value FROM instance_meta WHERE key = 'instance_id'")


async def _holds_rows(conn: AsyncConnection[Any]) -> list[str]:
    """Tables of the target that hold any row (``instance_meta`` aside: a fresh schema has one)."""
    held = []
    for name in await table_names(conn):
        if name == "instance_meta":
            continue
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(name))
        cur = await conn.execute(query)
        row = await cur.fetchone()
        if row and row[0]:
            held.append(name)
    return held


async def _try_lock(conn: AsyncConnection[Any]) -> bool:
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def _dimensions(conn: AsyncConnection[Any]) -> int:
    kind = await column_type(conn, "insights", "embedding") or "vector(384)"
    digits = "".join(ch for ch in kind if ch.isdigit())
    return int(digits) if digits else 384


async def _count(conn: AsyncConnection[Any], table: str) -> int:
    cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


def _key_tuple(table: TableInfo, prefix: str | None = None) -> sql.Composable:
    return sql.SQL("({})").format(sql.SQL(", ").join(table.ordered_key(prefix)))


def _placeholders(n: int) -> sql.Composable:
    return sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * n))


async def _copy_table(
    src: AsyncConnection[Any],
    tgt: AsyncConnection[Any],
    table: TableInfo,
    *,
    batch: int,
    total: int,
    on_progress: ProgressCallback | None,
) -> int:
    """Copy one table in key order, ``batch`` rows per target transaction; the rows copied."""
    stage = sql.Identifier(f"_mm_stage_{table.name}")
    await tgt.execute(
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT {cols} FROM {t} WITH NO DATA").format(
            stage=stage, cols=table.cols(), t=table.ident()
        )
    )
    order = sql.SQL(", ").join(table.ordered_key())
    order_desc = sql.SQL(", ").join(sql.SQL("{} DESC").format(k) for k in table.ordered_key())
    nkeys = len(table.key)
    key_cols = sql.SQL(", ").join(sql.Identifier(k) for k in table.key)
    same_key = sql.SQL(" AND ").join(sql.SQL("s.{k} = t.{k}").format(k=sql.Identifier(k)) for k in table.key)
    updatable = [c for c in table.columns if c not in table.key and c not in table.identity]
    conflict: sql.Composable
    if updatable:
        conflict = sql.SQL("DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new})").format(
            sets=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in updatable),
            old=sql.SQL(", ").join(sql.Identifier(table.name, c) for c in updatable),
            new=sql.SQL(", ").join(sql.Identifier("excluded", c) for c in updatable),
        )
    else:
        conflict = sql.SQL("DO NOTHING")
    upsert = sql.SQL(
        "INSERT INTO {t} ({cols}) {override} SELECT {cols} FROM {stage} ON CONFLICT ({keys}) {conflict}"
    ).format(
        t=table.ident(),
        cols=table.cols(),
        override=sql.SQL("OVERRIDING SYSTEM VALUE") if table.identity else sql.SQL(""),
        stage=stage,
        keys=key_cols,
        conflict=conflict,
    )
    last: tuple[Any, ...] | None = None
    done = 0
    while True:
        async with tgt.transaction():
            await tgt.execute(sql.SQL("TRUNCATE {}").format(stage))
            where: sql.Composable = sql.SQL("")
            params: tuple[Any, ...] = ()
            if last is not None:
                where = sql.SQL("WHERE {k} > {p}").format(k=_key_tuple(table), p=_placeholders(nkeys))
                params = last
            out_sql = sql.SQL("COPY (SELECT {cols} FROM {t} {where} ORDER BY {order} LIMIT {n}) TO STDOUT").format(
                cols=table.cols(), t=table.ident(), where=where, order=order, n=sql.Literal(batch)
            )
            in_sql = sql.SQL("COPY {stage} ({cols}) FROM STDIN").format(stage=stage, cols=table.cols())
            async with src.cursor().copy(out_sql, params or None) as out, tgt.cursor().copy(in_sql) as inp:
                async for block in out:
                    await inp.write(block)
            cur = await tgt.execute(sql.SQL("SELECT count(*) FROM {}").format(stage))
            counted = await cur.fetchone()
            n = int(counted[0]) if counted else 0
            # Target rows in this batch's key range that the snapshot does not hold (deleted on
            # the source since an interrupted earlier run) go, so the target ends equal.
            lower = (
                sql.SQL("TRUE")
                if last is None
                else sql.SQL("{k} > {p}").format(k=_key_tuple(table, "t"), p=_placeholders(nkeys))
            )
            if n == 0:
                await tgt.execute(
                    sql.SQL("DELETE FROM {t} AS t WHERE {lower}").format(t=table.ident(), lower=lower), last or None
                )
                break
            cur = await tgt.execute(
                sql.SQL("SELECT {keys} FROM {stage} ORDER BY {desc} LIMIT 1").format(
                    keys=key_cols, stage=stage, desc=order_desc
                )
            )
            top = await cur.fetchone()
            assert top is not None
            new_last = tuple(top)
            final = n < batch
            upper = (
                sql.SQL("TRUE")
                if final
                else sql.SQL("{k} <= {p}").format(k=_key_tuple(table, "t"), p=_placeholders(nkeys))
            )
            await tgt.execute(
                sql.SQL(
                    "DELETE FROM {t} AS t WHERE {lower} AND {upper} "
                    "AND NOT EXISTS (SELECT 1 FROM {stage} AS s WHERE {same})"
                ).format(t=table.ident(), lower=lower, upper=upper, stage=stage, same=same_key),
                (last or ()) + (() if final else new_last) or None,
            )
            await tgt.execute(upsert)
        done += n
        last = new_last
        if on_progress is not None:
            on_progress(table.name, done, total)
        if final:
            break
    if on_progress is not None:
        on_progress(table.name, done, total)
    return done


# HNSW indexes of tables still to fill are dropped for the copy and built again at its end: one
# insert into an HNSW graph costs milliseconds, a build over the same rows a fraction of that
# (4,000 log rows: 9.3 s inserted into the index, 0.13 s without it plus 1.2 s to build it).
# Their definitions wait in a schema of their own on the target, written in the transaction that
# drops them, so a run killed in between rebuilds them on the next run.
ASIDE = sql.Identifier("mosaic_migrate_tier")


async def _set_aside_vector_indexes(tgt: AsyncConnection[Any], tables: list[str]) -> None:
    async with tgt.transaction():
        await tgt.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ASIDE))
        await tgt.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.dropped_indexes (name text PRIMARY KEY, definition text NOT NULL)"
            ).format(ASIDE)
        )
        if not tables:
            return
        cur = await tgt.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s) "
            "AND indexdef ~* 'USING hnsw'",
            (tables,),
        )
        for name, definition in await cur.fetchall():
            await tgt.execute(
                sql.SQL("INSERT INTO {}.dropped_indexes VALUES (%s, %s) ON CONFLICT (name) DO NOTHING").format(ASIDE),
                (name, definition),
            )
            await tgt.execute(sql.SQL("DROP INDEX public.{}").format(sql.Identifier(name)))


async def _rebuild_vector_indexes(tgt: AsyncConnection[Any]) -> None:
    cur = await tgt.execute(sql.SQL("SELECT name, definition FROM {}.dropped_indexes ORDER BY name").format(ASIDE))
    for name, definition in await cur.fetchall():
        exists = await tgt.execute("SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND indexname = %s", (name,))
        if await exists.fetchone() is None:
            await tgt.execute(sql.SQL(definition))  # pg_indexes' own text of the index we dropped
    await tgt.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(ASIDE))


async def _fix_sequences(src: AsyncConnection[Any], tgt: AsyncConnection[Any]) -> dict[str, int]:
    """Set every column sequence of the target past both the copied values and the source's
    own position; returns sequence → the value its next call continues after."""
    query = (
        "SELECT c.relname, a.attname, pg_get_serial_sequence('public.' || quote_ident(c.relname), a.attname) "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped "
        "AND pg_get_serial_sequence('public.' || quote_ident(c.relname), a.attname) IS NOT NULL"
    )
    cur = await tgt.execute(query)
    fixed: dict[str, int] = {}
    for table, column, sequence in await cur.fetchall():
        cur = await tgt.execute(
            sql.SQL("SELECT coalesce(max({c}), 0) FROM {t}").format(c=sql.Identifier(column), t=sql.Identifier(table))
        )
        row = await cur.fetchone()
        value = int(row[0]) if row else 0
        src_cur = await src.execute(
            "SELECT pg_get_serial_sequence('public.' || quote_ident(%s::text), %s)", (table, column)
        )
        src_seq = await src_cur.fetchone()
        if src_seq and src_seq[0]:
            seq_cur = await src.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(src_seq[0])))
            state = await seq_cur.fetchone()
            if state is not None:
                value = max(value, int(state[0]) if state[1] else int(state[0]) - 1)
        if value >= 1:
            await tgt.execute("SELECT setval(%s, %s, true)", (sequence, value))
        else:
            await tgt.execute("SELECT setval(%s, 1, false)", (sequence,))
        fixed[str(sequence)] = value
    return fixed


async def migrate_tier(
    source_url: str,
    target_url: str,
    *,
    batch: int = 1000,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
) -> MigrationReport:
    """Copy every table of ``source_url`` to ``target_url`` (see the module docstring).

    Raises MigrationRefused (nothing changed: another instance's data on the target, another
    schema revision, a concurrent run), StorageTierError (a side unreachable),
    TierMigrationFailed (the copy does not verify equal)."""
    if batch < 1:
        raise MigrationRefused("--batch must be at least 1")
    scrub = _Scrub(source_url, target_url)
    head = head_revision()
    src = await _connect(source_url, scrub, "source")
    try:
        revision = await _revision(src)
        if revision != head:
            raise MigrationRefused(
                f"the source database is at schema revision {revision or 'none'}, this version expects {head}: "
                f"run 'mosaic-memory db upgrade' first"
            )
        instance_id = await _instance_id(src)
        if not instance_id:
            raise MigrationRefused("the source database has no instance id; run 'mosaic-memory db upgrade' first")
        plan = MigrationPlan(
            source=redact_database_url(source_url), target=redact_database_url(target_url), instance_id=instance_id
        )
        if not make_url(libpq_url(target_url)).database:
            raise MigrationRefused(f"the target URL {plan.target} names no database (.../DBNAME)")
        try:
            tgt = await _connect(target_url, scrub, "target")
        except _NoSuchDatabase:
            plan.create_database = True
            if dry_run:
                plan.migrate_schema = True
                await _plan_tables(src, None, plan)
                return MigrationReport(plan=plan, dry_run=True)
            await _create_database(target_url, scrub)  # through the server's 'postgres' database
            tgt = await _connect(target_url, scrub, "target")
        try:
            return await _with_target(src, tgt, plan, scrub, target_url, batch, dry_run, on_progress)
        finally:
            await tgt.close()
    except psycopg.Error as exc:
        # Server messages name tables and values, not URLs; scrub anyway, in case one quotes a URL.
        raise StorageTierError(scrub(f"migrate-tier stopped: {type(exc).__name__}: {exc}".strip())) from None
    finally:
        await src.close()


async def _plan_tables(src: AsyncConnection[Any], tgt: AsyncConnection[Any] | None, plan: MigrationPlan) -> None:
    existing = await table_names(tgt) if tgt is not None else []
    for table in await read_tables(src):
        target_rows = await _count(tgt, table.name) if tgt is not None and table.name in existing else None
        plan.tables.append(TablePlan(table.name, await _count(src, table.name), target_rows))


async def _with_target(
    src: AsyncConnection[Any],
    tgt: AsyncConnection[Any],
    plan: MigrationPlan,
    scrub: _Scrub,
    target_url: str,
    batch: int,
    dry_run: bool,
    on_progress: ProgressCallback | None,
) -> MigrationReport:
    head = head_revision()
    revision = await _revision(tgt)
    if revision is None:
        foreign = await table_names(tgt)
        if foreign:
            raise MigrationRefused(
                f"the target database already holds tables mosaic-memory did not create ({', '.join(foreign[:5])}); "
                f"use an empty database"
            )
        plan.migrate_schema = True
    elif revision != head:
        raise MigrationRefused(
            f"the target database is at schema revision {revision}, this version expects {head}: "
            f"upgrade it (MOSAIC_DATABASE_URL=<target> mosaic-memory db upgrade) or use an empty database"
        )
    if not plan.migrate_schema:
        target_id = await _instance_id(tgt)
        held = await _holds_rows(tgt)
        if target_id != plan.instance_id and held:
            raise MigrationRefused(
                f"the target database already holds another instance's data (instance {str(target_id)[:8]}…, "
                f"rows in {', '.join(held[:4])}); this instance is {plan.instance_id[:8]}…. "
                f"Use an empty database, or consolidate with 'mosaic-memory export'/'import' instead"
            )
        plan.resume = target_id == plan.instance_id and bool(held)
    if dry_run:
        await src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            await _plan_tables(src, None if plan.migrate_schema else tgt, plan)
        finally:
            await src.execute("ROLLBACK")
        return MigrationReport(plan=plan, dry_run=True)

    if not await _try_lock(src):
        raise MigrationRefused("another migrate-tier run holds this instance's database; wait for it to finish")
    if not await _try_lock(tgt):
        raise MigrationRefused(
            "another migrate-tier run holds the target database (or the target is this instance's own database)"
        )
    if plan.migrate_schema:
        try:
            await run_migrations(target_url, dimensions=await _dimensions(src))
        except DBAPIError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            if "vector" in reason:
                reason += " (install pgvector for this PostgreSQL, or ask its administrator to)"
            raise StorageTierError(f"creating the schema on the target failed: {scrub(reason)}") from None
        # A concurrent first run is excluded by the lock; re-check what the fresh schema holds.
        if await _holds_rows(tgt):
            raise MigrationRefused("the target database filled up while its schema was created; start again")
    # Claim the target for this instance before the first row goes, so a re-run after a kill
    # recognises its own partial copy and any other instance's run is refused.
    await tgt.execute(
        "INSERT INTO instance_meta (key, value, updated_at) VALUES ('instance_id', %s::jsonb, now()) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        (json.dumps(plan.instance_id),),
    )

    await src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        tables = await read_tables(src)
        target_tables = {t.name: t for t in await read_tables(tgt)}
        for table in tables:
            other = target_tables.get(table.name)
            if other is None or set(other.columns) != set(table.columns) or other.key != table.key:
                raise MigrationRefused(
                    f"table {table.name} differs between the source and the target schema; both must be at {head}"
                )
        await _plan_tables(src, tgt, plan)
        rows = {t.name: t.source_rows for t in plan.tables}
        await _set_aside_vector_indexes(tgt, [t.name for t in plan.tables if (t.target_rows or 0) < t.source_rows])
        for table in tables:
            await _copy_table(src, tgt, table, batch=batch, total=rows[table.name], on_progress=on_progress)
        await _rebuild_vector_indexes(tgt)
        report = MigrationReport(plan=plan, dry_run=False)
        report.sequences = await _fix_sequences(src, tgt)
        source_sums = await checksums(src, tables)
        target_sums = await checksums(tgt, tables)
    finally:
        await src.execute("ROLLBACK")  # read only: nothing to keep
    differ = [name for name, value in source_sums.items() if target_sums.get(name) != value]
    if differ:
        detail = ", ".join(f"{n} ({source_sums[n].rows} rows here, {target_sums[n].rows} there)" for n in differ[:5])
        raise TierMigrationFailed(
            f"the copy does not verify: {detail}. The source is untouched; run migrate-tier again"
        )
    report.verified = source_sums
    await tgt.execute("ANALYZE")  # fresh planner statistics: search picks its plans from them
    return report
