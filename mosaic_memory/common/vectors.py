"""SQL helpers shared by the repositories of embedded kinds: the one way to search vectors in a scope.

A scoped nearest-neighbour query goes through three steps, the same for search and for the insight
write path's near-duplicate lookup: :func:`scan_plans` picks exact scan or HNSW for the scope
(pgvector's iterative scans are the connection's defaults, :func:`iterative_hnsw_by_default`, or
set for the transaction when a search asks for more); :func:`by_distance` (or
:func:`by_distance_sql` for hand-written SQL) writes the ORDER BY that makes the planner follow
that choice; :func:`nearest_rows` runs it (several scopes in one statement,
``common/repository.union_of_parts``) and falls back to an exact scan when HNSW comes back short,
so a search for k returns k whenever k rows match.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any, Literal

import numpy as np
import psycopg
from pgvector.sqlalchemy import Vector
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy import Dialect, Executable, bindparam, event, func, literal_column, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.sql.elements import BindParameter, ColumnElement, TextClause

from mosaic_memory.common.owner_id_list import OwnerIdList
from mosaic_memory.common.owner_ids import OwnerIds
from mosaic_memory.common.pgvector_binary import to_vector_recv
from mosaic_memory.common.scan_policy import ScanPolicy
from mosaic_memory.common.ttl_cache import TtlCache
from mosaic_memory.db import reading_alone

__all__ = [
    "EXACT_PLAN_SECONDS",
    "QUERY_VECTOR",
    "SCOPE_PLANS",
    "ScanPlan",
    "ScanPolicy",
    "StoredVector",
    "binary_vector",
    "by_distance",
    "by_distance_sql",
    "iterative_hnsw_by_default",
    "nearest_rows",
    "prefer_exact_scan",
    "query_vector",
    "query_vector_parameter",
    "scan_plan",
    "scan_plans",
    "use_iterative_hnsw",
    "vector_dimensions",
    "vector_literal",
]

ScanPlan = Literal["empty", "exact", "hnsw"]


def binary_vector(column: Any) -> Any:
    """``column`` selected in pgvector's binary form (``vector_send``); decode the bytes with
    ``common/pgvector_binary.py``'s ``from_vector_send`` (a hundred times cheaper than the text form)."""
    return func.vector_send(column)


def vector_literal(vector: Any) -> str:
    """pgvector's text form; used where vectors travel in an array parameter (a query vector
    alone travels in the binary form, :class:`_QueryVector`, except through another driver).

    Nine significant digits give every float32 back exactly (``FLT_DECIMAL_DIG``), and ``:.9g``
    costs a third of pgvector's own formatting (the shortest ``repr`` of each float through its
    ``Vector`` class): 0.2 against 0.6 ms for 384 floats.
    """
    return "[" + ",".join([f"{x:.9g}" for x in np.asarray(vector, dtype=np.float32).tolist()]) + "]"


class _VectorParameter(bytes):
    """A query vector in pgvector's binary form (``to_vector_recv``), sent as such by psycopg."""


class _VectorParameterDumper(Dumper):
    """Sends a :class:`_VectorParameter` as it is, in binary, its type left to the server: the
    statement says it (``embedding <=> $1``: a vector), so no cast and no lookup of the extension
    type's oid on each connection."""

    format = Format.BINARY
    oid = 0

    def dump(self, obj: Any) -> bytes:
        return bytes(obj)


# Every connection psycopg opens from here on copies the default adapters: our engines, and any
# engine a test or a tool builds. It concerns only _VectorParameter, which nothing else makes.
psycopg.adapters.register_dumper(_VectorParameter, _VectorParameterDumper)


def _vector_parameter(vector: Any) -> _VectorParameter:
    return _VectorParameter(to_vector_recv(vector))


class _QueryVector(Vector):
    """A vector parameter sent in pgvector's binary form (sent without a cast, as pgvector's own).

    Writing the text form (:func:`vector_literal`) cost ~0.1 ms of Python for 384 floats, once per
    statement: three times an HTTP search (one statement a kind); the binary form is one numpy
    copy, and the server reads it without parsing decimals. Other drivers get the text form.
    """

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        return _vector_parameter if dialect.driver == "psycopg" else vector_literal


class StoredVector(Vector):
    """The embedding columns' type: a vector written to a row goes in the binary form too.

    pgvector's own type writes the text form, ``str`` of each float: 0.47 ms of Python for 384
    floats per row written (a tenth of a single write's server Python and of a batch insert's),
    which PostgreSQL then parses back. Rows are read as pgvector reads them.
    """

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.driver != "psycopg":
            return super().bind_processor(dialect)

        def process(value: Any) -> _VectorParameter | None:
            return None if value is None else _vector_parameter(value)

        return process


def query_vector(vector: Any) -> BindParameter[Any]:
    """``vector`` as a bound parameter of a distance expression: ``embedding.cosine_distance(query_vector(q))``."""
    return bindparam(None, vector, type_=_QueryVector())


QUERY_VECTOR = "query_vector"


def query_vector_parameter() -> BindParameter[Any]:
    """:func:`query_vector` without its value: the parameter named :data:`QUERY_VECTOR`, given at
    each execution (``nearest_rows(..., vector=q)``). A distance expression built with it is built
    once and kept: building ``embedding <=> q`` anew cost ~250 Python calls a search (SQLAlchemy
    makes and hashes a custom operator each time), a tenth of the whole search."""
    return bindparam(QUERY_VECTOR, type_=_QueryVector())


async def scan_plan(
    session: AsyncSession,
    model: Any,
    owner_ids: Sequence[uuid.UUID],
    policy: ScanPolicy,
    *,
    narrow: tuple[str, dict[str, Any]] | None = None,
) -> ScanPlan:
    """Decide the plan in one round trip: the table's row estimate, then a capped count of the scope.

    The count is an index-only scan that stops at the cap, so deciding never costs more than
    reading ``cap + 1`` index entries; for a scope that is most of the table the cap is small.
    ``narrow`` is a further SQL condition the query will apply (with its parameters), counted
    too: HNSW over a scope whose rows that condition mostly rejects walks the whole index.
    """
    return (await scan_plans(session, [model], owner_ids, policy, narrow=narrow))[0]


# A scope's plan, remembered for a while (common/ttl_cache.py): an agent asks many questions of the
# same memory, and a writer adds to it. A scope past the exact-scan cap keeps its plan ("hnsw") for
# 30 s. A scope within the cap, an empty one included, is remembered as an exact scan for
# EXACT_PLAN_SECONDS: an exact scan reads every row the scope holds when it runs, so it is right
# whatever the scope has become (an empty scope's first row is found at once); only its cost can be
# off, for a scope that outgrew the cap meanwhile. Counting was a round trip on every search and
# every write: a kind the caller holds nothing of (skills, in many stores) was counted on every
# search, and a write to an owner of 1,700 rows spent 1.7 ms on its count. Keyed by table, the
# scope's text (``OwnerIdList.text``: one string to hash, not 100 ids), policy and further condition.
SCOPE_PLANS: TtlCache[ScanPlan] = TtlCache(30.0)
EXACT_PLAN_SECONDS = 10.0


async def scan_plans(
    session: AsyncSession,
    models: Sequence[Any],
    owner_ids: Sequence[uuid.UUID],
    policy: ScanPolicy,
    *,
    narrow: tuple[str, dict[str, Any]] | None = None,
    iterative_hnsw: int | None = None,
) -> list[ScanPlan]:
    """:func:`scan_plan` for several tables in one round trip (a search over every kind), none for
    a scope planned a short while ago (:data:`SCOPE_PLANS`: HNSW in the last 30 s, an exact scan,
    an empty scope's included, in the last 10): search and the write path's near-duplicate lookup
    plan here, by one rule.

    ``iterative_hnsw`` (an ``ef_search``): when any plan walks HNSW, :func:`use_iterative_hnsw`'s
    settings are applied for the transaction (no statement where the connection has them by
    default); they ride on the count when a remembered plan already walks HNSW.
    """
    if not models:
        return []
    owners = OwnerIdList.of(owner_ids)
    condition, extra = narrow if narrow is not None else ("", {})
    keys = [(m.__tablename__, owners.text, policy, condition, tuple(sorted(extra.items()))) for m in models]
    plans: list[ScanPlan | None] = [SCOPE_PLANS.get(key) for key in keys]
    missing = [i for i, plan in enumerate(plans) if plan is None]
    along = iterative_hnsw if missing and "hnsw" in plans else None
    if missing:
        counted = await _count_plans(session, [models[i] for i in missing], owners, policy, condition, extra, along)
        for i, plan in zip(missing, counted, strict=True):
            plans[i] = plan
            if plan == "hnsw":
                SCOPE_PLANS.put(keys[i], plan)
            else:  # empty or within the cap: an exact scan from now on, right whatever it holds
                SCOPE_PLANS.put(keys[i], "exact", seconds=EXACT_PLAN_SECONDS)
    if iterative_hnsw is not None and along is None and "hnsw" in plans:
        await use_iterative_hnsw(session, iterative_hnsw)
    return [plan or "empty" for plan in plans]


async def _count_plans(
    session: AsyncSession,
    models: Sequence[Any],
    owner_ids: OwnerIdList,
    policy: ScanPolicy,
    condition: str,
    extra: dict[str, Any],
    iterative_hnsw: int | None,
) -> list[ScanPlan]:
    """Each table's plan counted, in one round trip that also applies the iterative-scan
    settings for ``iterative_hnsw`` (unless the connection has them by default)."""
    params: dict[str, Any] = {
        **extra,
        "max_rows": policy.max_rows,
        "min_rows": min(policy.min_rows, policy.max_rows),
        "share": policy.share,
        "owners": owner_ids,
    }
    tables = tuple(model.__tablename__ for model in models)
    for i, table in enumerate(tables):
        params[f"table{i}"] = table
    conn = await session.connection()  # Core: no ORM execution layer for a text statement
    wanted = _hnsw_params(iterative_hnsw) if iterative_hnsw is not None else None
    settings = wanted is not None and not _has_hnsw_settings(conn, wanted)
    if settings and wanted is not None:
        params.update(wanted)
    key = (tables, condition, settings)
    if key not in _PLAN_STATEMENTS:
        _PLAN_STATEMENTS[key] = _plan_statement(tables, condition, settings)
    stmt = _PLAN_STATEMENTS[key]
    plans: list[ScanPlan] = ["empty"] * len(models)
    if settings:  # transaction-local settings: the count must run inside the transaction
        found = (await conn.execute(stmt, params)).all()
    else:
        async with reading_alone(session) as alone:
            found = (await alone.execute(stmt, params)).all()
    for i, rows, cap in found:
        if i >= 0:
            plans[int(i)] = "empty" if rows == 0 else "exact" if rows <= cap else "hnsw"
    return plans


# The plan counts' statements by (tables, further condition, with the iterative-scan settings):
# built once, so SQLAlchemy neither parses the text for its parameters nor keys it again.
_PLAN_STATEMENTS: dict[tuple[tuple[str, ...], str, bool], TextClause] = {}


def _plan_statement(tables: Sequence[str], condition: str, settings: bool) -> TextClause:
    caps, counts = [], []
    for i, table in enumerate(tables):
        caps.append(
            f"""cap{i} AS (
                SELECT CASE WHEN c.reltuples <= 0 THEN :max_rows
                            ELSE greatest(:min_rows, least(:max_rows, (:share * c.reltuples)::bigint)) END AS n
                FROM pg_class c WHERE c.oid = CAST(:table{i} AS regclass))"""
        )
        counts.append(
            f"""SELECT {i} AS i, count(*) AS rows, (SELECT n FROM cap{i}) AS cap
            FROM (SELECT 1 FROM {table} WHERE owner_id = ANY(:owners){condition}
                  LIMIT (SELECT n + 1 FROM cap{i})) AS scope{i}"""
        )
    if settings:
        # A row of its own (i = -1), so the settings are applied whatever the counts find.
        caps.append(f"hnsw_settings AS (SELECT {_HNSW_SETTINGS})")
        counts.append("SELECT -1 AS i, 0 AS rows, 0 AS cap FROM hnsw_settings")
    return text(f"WITH {', '.join(caps)} {' UNION ALL '.join(counts)}").bindparams(
        bindparam("owners", type_=OwnerIds())
    )


async def prefer_exact_scan(
    session: AsyncSession, model: Any, owner_ids: Sequence[uuid.UUID], policy: ScanPolicy
) -> bool:
    """True unless the scope is large enough, in rows and share of the table, for HNSW."""
    return await scan_plan(session, model, owner_ids, policy) != "hnsw"


_HNSW_SETTINGS_OF = (
    "set_config('hnsw.iterative_scan', 'relaxed_order', {local}), "
    "set_config('hnsw.ef_search', {ef}, {local}), set_config('hnsw.max_scan_tuples', {tuples}, {local})"
)
_HNSW_SETTINGS = _HNSW_SETTINGS_OF.format(ef=":ef", tuples=":tuples", local="true")


def _hnsw_params(ef_search: int, max_scan_tuples: int = 50_000) -> dict[str, str]:
    return {"ef": str(int(ef_search)), "tuples": str(int(max_scan_tuples))}


_CONNECTION_HNSW = "mosaic.hnsw"  # connection info: the iterative-scan settings it has by default


def _has_hnsw_settings(conn: AsyncConnection, wanted: dict[str, str]) -> bool:
    """Whether the connection's own defaults already walk HNSW as ``wanted`` asks (at least its
    ``ef_search``, the same tuple cap): then no statement needs to set anything."""
    own = conn.info.get(_CONNECTION_HNSW)
    return own is not None and int(own["ef"]) >= int(wanted["ef"]) and own["tuples"] == wanted["tuples"]


def iterative_hnsw_by_default(engine: AsyncEngine, ef_search: int) -> None:
    """Give every new connection of ``engine`` :func:`use_iterative_hnsw`'s settings for
    ``ef_search`` as its session defaults, so a search that asks no more sends no statement for them.

    Setting them per transaction was a round trip per search (``set_config(..., true)``, so that a
    pooled connection never carried them). As defaults they are safe because every HNSW query the
    service runs wants exactly them: search and the write path's near-duplicate lookup both plan
    through this module and re-sort ``relaxed_order``'s rows. A search that needs a larger
    ``ef_search`` (``k * candidate_multiplier`` past the default) still sets it for its own
    transaction only. One statement when the pool connects, none per request.
    """
    wanted = _hnsw_params(ef_search)

    @event.listens_for(engine.sync_engine, "connect")
    def _set_defaults(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:  # digits only (_hnsw_params), written as literals: this is the bare DBAPI cursor
            cursor.execute(
                "SELECT "
                + _HNSW_SETTINGS_OF.format(ef=f"'{wanted['ef']}'", tuples=f"'{wanted['tuples']}'", local="false")
            )
        finally:
            cursor.close()
        dbapi_connection.commit()
        record.info[_CONNECTION_HNSW] = wanted


async def use_iterative_hnsw(session: AsyncSession, ef_search: int, max_scan_tuples: int = 50_000) -> None:
    """Let HNSW keep scanning until enough rows pass the owner filter (pgvector >= 0.8).

    The three settings last until the end of the transaction (``set_config(..., true)`` is
    ``SET LOCAL``) and travel in one statement: one round trip per search instead of three; none
    where the connection has them as defaults (:func:`iterative_hnsw_by_default`).
    ``relaxed_order`` may return rows slightly out of order, so callers re-sort by distance.
    """
    conn = await session.connection()  # Core: no ORM execution layer for a text statement
    wanted = _hnsw_params(ef_search, max_scan_tuples)
    if not _has_hnsw_settings(conn, wanted):
        await conn.execute(text(f"SELECT {_HNSW_SETTINGS}"), wanted)


def by_distance(distance: ColumnElement[Any], plan: ScanPlan) -> ColumnElement[Any]:
    """The ORDER BY expression for ``plan``.

    For an exact plan the distance is written as ``distance + 0``: the planner cannot match that
    expression to the HNSW index, so it cannot walk the shared index and post-filter it by owner
    (which loses recall); it reads the scope through the B-tree on the owner and sorts instead.
    Select the expression itself (labelled) and order by its label: ordering by it beside a
    selected bare distance computes every distance twice, reading each vector twice.
    """
    return distance if plan == "hnsw" else distance + literal_column("0")


def by_distance_sql(distance: str, plan: ScanPlan) -> str:
    """:func:`by_distance` for SQL written as text (``distance`` is a SQL expression)."""
    return distance if plan == "hnsw" else f"({distance}) + 0"


_DISTANCE = attrgetter("distance")  # a sort key that is no Python call per row


async def nearest_rows(
    session: AsyncSession,
    plans: Sequence[ScanPlan],
    query: Callable[[Sequence[ScanPlan]], Executable],
    *,
    limit: int,
    vector: Any = None,
    params: Mapping[str, Any] | None = None,
) -> list[list[Any]]:
    """Each part's nearest rows, nearest first, for one statement over several scopes (parts: a
    search's kinds): ``query(plans)`` is ``common/repository.union_of_parts`` of one SELECT per
    part, each with a ``distance`` column, ordered by :func:`by_distance` for the part's plan and
    limited to ``limit``.

    A part planned ``"empty"`` is left out of the statement and gets no rows (no statement runs
    when every part is). HNSW with ``relaxed_order`` may return rows slightly out of order, so they
    are re-sorted here; a part HNSW came back short for (fewer than ``limit`` rows: the filter
    rejected too many of the rows it visited) is read again by an exact scan, every such part in
    one more statement (``query`` with the others ``"empty"``). ``vector`` is the value of the
    statement's :func:`query_vector_parameter`; ``params`` the values of its other parameters (of a
    statement built once and kept).

    One statement for every part: a search over the four kinds sent one per kind, each a round
    trip of its own and its own execution in SQLAlchemy and psycopg (a semantic search over HTTP
    went from 6 statements to 4 and from ~7,860 to ~7,380 Python calls at 100k rows, with the
    same hits). The statement runs on the session's connection (Core), not through
    ``session.execute``: these are column rows, and the ORM's execution layer only adds Python per
    statement. The re-sort is in Python: an outer ``ORDER BY distance`` over the limited subquery
    was planned away (PostgreSQL takes the inner ORDER BY as already satisfying it).
    """
    parts = list(plans)
    found: list[list[Any]] = [[] for _ in parts]
    if all(plan == "empty" for plan in parts):
        return found
    if vector is not None:
        params = {**(params or {}), QUERY_VECTOR: vector}
    async with reading_alone(session) as conn:
        for row in (await conn.execute(query(parts), params)).all():
            found[row.part].append(row)
        short = [i for i, plan in enumerate(parts) if plan == "hnsw" and len(found[i]) < limit]
        if short:
            again: list[ScanPlan] = ["exact" if i in short else "empty" for i in range(len(parts))]
            for i in short:
                found[i] = []
            for row in (await conn.execute(query(again), params)).all():
                found[row.part].append(row)
    return [sorted(rows, key=_DISTANCE) if plan == "hnsw" else rows for rows, plan in zip(found, parts, strict=True)]


async def vector_dimensions(conn: AsyncSession | AsyncConnection, table: str) -> int:
    """The dimension of ``table``'s ``embedding`` column as the schema declares it (-1 if untyped)."""
    value = await conn.scalar(
        text("SELECT atttypmod FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attname = 'embedding'"),
        {"t": table},
    )
    return int(value or -1)
