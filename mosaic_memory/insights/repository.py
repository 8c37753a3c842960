"""SQL for insights. Every method takes the owner scope."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy import Select, Table, Text, and_, any_, bindparam, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlalchemy.sql.elements import TextClause

from embeddings import content_hash
from mosaic_memory.common.owner_ids import OwnerIds
from mosaic_memory.common.pgvector_binary import to_vector_recv
from mosaic_memory.common.repository import owned_by
from mosaic_memory.common.vectors import (
    ScanPlan,
    ScanPolicy,
    by_distance_sql,
    scan_plans,
    vector_dimensions,
    vector_literal,
)
from mosaic_memory.errors import Conflict, InvalidInput
from mosaic_memory.models import Insight, InsightSource, new_id

_BULK_COLUMNS = "owner_id, id, content, content_hash, embedding, embedding_model, source_type"


class _BinaryVectorDumper(Dumper):
    """pgvector's binary wire format straight from numpy (COPY names the type: this one has its oid)."""

    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return to_vector_recv(obj)


# The import's near-duplicate lookup leaves out rows of the file's own origin (``metadata.origin``).
ORIGIN_FILTER = " AND coalesce({alias}metadata->>'origin', '') <> :origin"

# What an insert sends, (attribute, column): every column but those PostgreSQL computes (search_tsv).
_COLUMNS = tuple(
    (attr.key, attr.columns[0].key) for attr in Insight.__mapper__.column_attrs if attr.columns[0].computed is None
)
_INSERT = insert(cast(Table, Insight.__table__))

# Merge targets: their callers read and edit the other columns, never the vector, which travels as
# ~3.5 kB of text and is parsed in Python (~0.1 ms a row), nor the search vector.
_WITHOUT_VECTOR = (defer(Insight.embedding), defer(Insight.search_tsv))


@cache
def _by_hashes() -> Select[Insight]:
    """:meth:`InsightRepository.by_hashes`'s statement, built once (every write asks it first;
    building and keying it was a third of its Python), the hashes one ``text[]``: one statement
    text for any count."""
    return select(Insight).where(
        Insight.owner_id == bindparam("owner"), Insight.content_hash == any_(bindparam("hashes", type_=ARRAY(Text)))
    )


_WORK_MEM = text("SELECT set_config('work_mem', '64MB', true)")


@cache
def _nearest_statement(plan: ScanPlan, *, shared: bool, origin: bool) -> TextClause:
    """One round trip for the whole batch: unnest the vectors, one LATERAL nearest each. Built
    once per (plan, one scope copy shared by the batch, origin filter), so SQLAlchemy neither
    parses the text for its parameters nor keys it again on every write."""
    scope = f"""
        FROM insights i
        WHERE i.owner_id = :owner AND i.superseded_by IS NULL AND i.valid_to IS NULL
          AND i.embedding IS NOT NULL{ORIGIN_FILTER.format(alias="i.") if origin else ""}"""
    if shared:
        # A stored vector (1.5 kB) sits out of line in the TOAST table, and every distance
        # fetched it again: a batch of 100 against 5,000 rows fetched 500,000 of them (~0.5 s).
        # The scope is read once instead, each vector copied in line (subvector of its whole
        # length: the same floats), and every vector of the batch sorts that copy.
        sql = f"""
            WITH scope AS MATERIALIZED (
                SELECT i.id, subvector(i.embedding, 1, vector_dims(i.embedding)) AS embedding{scope}
            )
            SELECT v.ord, n.id, 1 - n.distance AS sim
            FROM unnest(CAST(:vecs AS vector[])) WITH ORDINALITY AS v(vec, ord)
            CROSS JOIN LATERAL (
                SELECT s.id, s.embedding <=> v.vec AS distance FROM scope s
                ORDER BY distance
                LIMIT 1
            ) n
            """
    else:
        sql = f"""
            SELECT v.ord, n.id, 1 - n.distance AS sim
            FROM unnest(CAST(:vecs AS vector[])) WITH ORDINALITY AS v(vec, ord)
            CROSS JOIN LATERAL (
                -- ordered by the selected column: each distance computed (and vector read) once
                SELECT i.id, {by_distance_sql("i.embedding <=> v.vec", plan)} AS distance{scope}
                ORDER BY distance
                LIMIT 1
            ) n
            """
    return text(sql).bindparams(bindparam("vecs"), bindparam("owner"))


class InsightRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, owner_ids: Sequence[uuid.UUID], insight_id: uuid.UUID) -> Insight | None:
        stmt = select(Insight).where(owned_by(Insight.owner_id, owner_ids), Insight.id == insight_id)
        return await self.session.scalar(stmt)

    async def get_for_update(self, owner_ids: Sequence[uuid.UUID], insight_id: uuid.UUID) -> Insight | None:
        stmt = select(Insight).where(owned_by(Insight.owner_id, owner_ids), Insight.id == insight_id).with_for_update()
        return await self.session.scalar(stmt)

    async def many_for_update(self, owner_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Insight]:
        """The owner's rows among ``ids``, locked, without their vectors, in one round trip (the
        merge targets of a batch); locked in id order, so concurrent batches that share targets take
        their locks in one order.
        The ids travel as one ``uuid[]`` (``OwnerIds``' literal): one statement text for any count."""
        if not ids:
            return {}
        stmt = (
            select(Insight)
            .where(
                Insight.owner_id == owner_id, Insight.id == any_(bindparam(None, sorted(set(ids)), type_=OwnerIds()))
            )
            .order_by(Insight.id)
            .with_for_update()
            .options(*_WITHOUT_VECTOR)
        )
        return {row.id: row for row in await self.session.scalars(stmt)}

    async def by_hashes(self, owner_id: uuid.UUID, hashes: Sequence[str]) -> dict[str, Insight]:
        if not hashes:
            return {}
        rows = await self.session.scalars(_by_hashes(), {"owner": owner_id, "hashes": sorted(set(hashes))})
        return {row.content_hash: row for row in rows}

    async def add_all(self, rows: Sequence[Insight]) -> None:
        """Insert ``rows`` in one round trip (a Core executemany, which psycopg pipelines); they
        stay out of the session.

        Not ``session.add_all`` and a flush: the unit of work cost ~0.3 ms of Python per row of a
        batch (0.43 against 0.09 ms here) and ~470 Python calls of a single write, to track rows
        that nothing edits afterwards: a later edit in the same transaction (a merge into one, a
        supersede) loads the row again. Columns a row leaves unset take their defaults.

        One executemany per set of columns the rows set (one for the service's rows, built alike):
        an executemany takes its columns from its first row, and would drop another row's value
        of a column the first left unset.
        """
        if not rows:
            return
        conn = await self.session.connection()  # Core: the ORM's bulk insert adds only Python
        alike: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            values = {col: row.__dict__[attr] for attr, col in _COLUMNS if attr in row.__dict__}
            alike.setdefault(tuple(values), []).append(values)
        for group in alike.values():
            await conn.execute(_INSERT, group)

    async def bulk_load(
        self,
        owner_id: uuid.UUID,
        contents: Sequence[str],
        vectors: np.ndarray,
        *,
        embedding_model: str,
        source_type: str = "import",
    ) -> int:
        """Insert rows that come with their embeddings through one binary ``COPY``; returns the count.

        The import path: no embedding, no near-duplicate merge. Other columns take their defaults.
        Raises InvalidInput when the vectors do not match the contents or the column's dimension,
        and Conflict when a content is already stored for this owner (or repeats in ``contents``);
        after a Conflict the transaction is aborted and must be rolled back.
        """
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(contents):
            raise InvalidInput(
                f"bulk load needs one vector per content: {len(contents)} contents, shape {matrix.shape}"
            )
        if not contents:
            return 0
        conn = await self.session.connection()
        dims = await vector_dimensions(conn, "insights")
        if dims > 0 and matrix.shape[1] != dims:
            raise InvalidInput(f"the insights table stores {dims}-dimension vectors, got {matrix.shape[1]}")
        vector_oid = await conn.scalar(text("SELECT 'vector'::regtype::oid"))
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None  # a checked-out connection always has its psycopg connection
        try:
            async with raw.cursor() as cur:
                # Registered on this cursor only: the pooled connection's adapters stay as they were.
                dumper = type("VectorDumper", (_BinaryVectorDumper,), {"oid": vector_oid})
                cur.adapters.register_dumper(np.ndarray, dumper)
                async with cur.copy(f"COPY insights ({_BULK_COLUMNS}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                    copy.set_types(["uuid", "uuid", "text", "varchar", vector_oid, "varchar", "varchar"])
                    for content, vec in zip(contents, matrix, strict=True):
                        await copy.write_row(
                            (owner_id, new_id(), content, content_hash(content), vec, embedding_model, source_type)
                        )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(
                f"bulk load: a content is already stored for owner {owner_id} ({exc.diag.message_detail})"
            ) from None
        return len(contents)

    async def delete(self, owner_ids: Sequence[uuid.UUID], insight_id: uuid.UUID) -> bool:
        stmt = delete(Insight).where(owned_by(Insight.owner_id, owner_ids), Insight.id == insight_id)
        result: Any = await self.session.execute(stmt)
        return bool(result.rowcount)

    async def superseded_by(self, owner_ids: Sequence[uuid.UUID], insight_id: uuid.UUID) -> Sequence[Insight]:
        """The insights ``insight_id`` replaced, oldest first."""
        stmt = (
            select(Insight)
            .where(owned_by(Insight.owner_id, owner_ids), Insight.superseded_by == insight_id)
            .order_by(Insight.created_at, Insight.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def recent(
        self,
        owner_ids: Sequence[uuid.UUID],
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None = None,
        tag: str | None = None,
        category: str | None = None,
        include_history: bool = True,
    ) -> Sequence[Insight]:
        stmt = select(Insight).where(owned_by(Insight.owner_id, owner_ids))
        if after is not None:
            created, row_id = after
            stmt = stmt.where(
                or_(Insight.created_at < created, and_(Insight.created_at == created, Insight.id < row_id))
            )
        if tag is not None:
            stmt = stmt.where(Insight.tags.contains([tag]))
        if category is not None:
            stmt = stmt.where(Insight.category == category)
        if not include_history:
            stmt = stmt.where(Insight.superseded_by.is_(None), Insight.valid_to.is_(None))
        stmt = stmt.order_by(Insight.created_at.desc(), Insight.id.desc()).limit(limit)
        return (await self.session.scalars(stmt)).all()

    async def nearest_plan(
        self, owner_id: uuid.UUID, *, scan: ScanPolicy, ef_search: int, exclude_origin: str | None = None
    ) -> ScanPlan:
        """The plan of :meth:`nearest_current` for the owner's scope (``common/vectors.scan_plans``,
        search's rule: exact scan or HNSW by the owner's share of the table, a large scope's plan
        remembered for 30 s, and the iterative-HNSW settings when it walks HNSW).

        ``exclude_origin`` as in :meth:`nearest_current`: the count leaves those rows out too, or a re-import (every
        row of the scope excluded) would send each vector through the whole HNSW index.
        """
        narrow = (ORIGIN_FILTER.format(alias=""), {"origin": exclude_origin}) if exclude_origin is not None else None
        (plan,) = await scan_plans(self.session, [Insight], [owner_id], scan, narrow=narrow, iterative_hnsw=ef_search)
        return plan

    async def nearest_current(
        self, owner_id: uuid.UUID, vectors: np.ndarray, plan: ScanPlan, *, exclude_origin: str | None = None
    ) -> list[tuple[uuid.UUID, float] | None]:
        """For each vector, the owner's most similar current insight and its cosine similarity.

        ``plan`` comes from :meth:`nearest_plan` (same ``exclude_origin``); an exact scan runs
        for any vector HNSW found nothing for. ``exclude_origin`` leaves out rows whose
        ``metadata.origin`` is that instance (import: rows of one export file are never merged
        with each other).
        """
        if len(vectors) == 0 or plan == "empty":
            return [None] * len(vectors)
        found = await self._nearest_current(owner_id, vectors, plan, exclude_origin)
        missing = [i for i in range(len(vectors)) if i not in found]
        if plan == "hnsw" and missing:
            again = await self._nearest_current(owner_id, vectors[missing], "exact", exclude_origin)
            found.update({missing[j]: hit for j, hit in again.items()})
        return [found.get(i) for i in range(len(vectors))]

    async def _nearest_current(
        self, owner_id: uuid.UUID, vectors: np.ndarray, plan: ScanPlan, exclude_origin: str | None
    ) -> dict[int, tuple[uuid.UUID, float]]:
        params: dict[str, Any] = {"vecs": [vector_literal(v) for v in vectors], "owner": owner_id}
        if exclude_origin is not None:
            params["origin"] = exclude_origin
        shared = plan == "exact" and len(vectors) > 1
        # Core, on the session's connection: column rows, which the ORM's execution layer only slows.
        conn = await self.session.connection()
        if shared:
            # The scope's copy below is kept in memory for this transaction (PostgreSQL's 4 MB
            # default spilled 5,000 rows to a temporary file and read it back per vector: 460
            # against 216 ms); 64 MB holds the largest exact scope by default (20,000 rows of 384
            # floats, ~32 MB).
            await conn.execute(_WORK_MEM)
        stmt = _nearest_statement(plan, shared=shared, origin=exclude_origin is not None)
        rows = await conn.execute(stmt, params)
        return {int(r.ord) - 1: (r.id, float(r.sim)) for r in rows}

    async def bump_access(self, keys: Sequence[tuple[uuid.UUID, uuid.UUID]], when: datetime) -> None:
        """Count a recall: ``keys`` are ``(owner_id, id)`` pairs the caller was allowed to see."""
        if not keys:
            return
        pairs = func.row(Insight.owner_id, Insight.id)
        stmt = (
            update(Insight)
            .where(pairs.in_([func.row(o, i) for o, i in keys]))
            .values(access_count=Insight.access_count + 1, last_accessed_at=when)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def add_access(self, counts: dict[tuple[uuid.UUID, uuid.UUID], tuple[int, datetime]]) -> None:
        """Add recalls in one statement: ``(owner_id, id) -> (count, latest time)``; keys in order
        so concurrent writers lock rows in the same order."""
        if not counts:
            return
        keys = sorted(counts)
        await self.session.execute(
            text(
                "UPDATE insights AS i SET access_count = i.access_count + v.n, "
                "last_accessed_at = greatest(coalesce(i.last_accessed_at, v.t), v.t) "
                "FROM unnest(CAST(:owners AS uuid[]), CAST(:ids AS uuid[]), CAST(:ns AS int[]), "
                "CAST(:ts AS timestamptz[])) AS v(owner_id, id, n, t) "
                "WHERE i.owner_id = v.owner_id AND i.id = v.id"
            ),
            {
                "owners": [o for o, _ in keys],
                "ids": [i for _, i in keys],
                "ns": [counts[k][0] for k in keys],
                "ts": [counts[k][1] for k in keys],
            },
        )

    async def sources(self, owner_ids: Sequence[uuid.UUID], insight_id: uuid.UUID) -> Sequence[uuid.UUID]:
        stmt = select(InsightSource.log_id).where(
            owned_by(InsightSource.owner_id, owner_ids), InsightSource.insight_id == insight_id
        )
        return (await self.session.scalars(stmt)).all()

    # import (portability) -------------------------------------------------------------------
    async def existing_ids(self, owner_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of ``ids`` the owner already has (an imported id that collides gets a new one)."""
        if not ids:
            return set()
        stmt = select(Insight.id).where(Insight.owner_id == owner_id, Insight.id.in_(set(ids)))
        return set((await self.session.scalars(stmt)).all())

    async def add_sources(self, owner_id: uuid.UUID, links: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
        """Link ``(insight_id, log_id)`` pairs of one owner; links already there are left as they are."""
        if not links:
            return
        stmt = (
            pg_insert(InsightSource)
            .values([{"owner_id": owner_id, "insight_id": i, "log_id": g} for i, g in set(links)])
            .on_conflict_do_nothing()
        )
        await self.session.execute(stmt)

    async def relink_superseded(
        self, owner_id: uuid.UUID, among: Sequence[uuid.UUID], old: uuid.UUID, new: uuid.UUID
    ) -> None:
        """Point ``superseded_by`` of the rows ``among`` from ``old`` to ``new`` (an imported successor
        that was kept under another id)."""
        if not among:
            return
        stmt = (
            update(Insight)
            .where(Insight.owner_id == owner_id, Insight.id.in_(list(among)), Insight.superseded_by == old)
            .values(superseded_by=new)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)
