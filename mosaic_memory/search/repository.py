"""Search SQL over every embedded kind, always scoped to the caller's owners.

Semantic search picks its plan by the size of the scope: an exact scan (B-tree on the owner,
then a sort) below ``exact_scan_threshold`` rows, HNSW with pgvector's iterative scans above
it, and an exact scan again whenever HNSW comes back short, so a search for k returns k
whenever k rows match.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Select, Text, cast, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB, TSQUERY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from mosaic_memory.common.kinds import KindSpec
from mosaic_memory.common.schemas import Kind
from mosaic_memory.common.vectors import ScanPlan, ScanPolicy, by_distance, nearest_rows, plan_vector_search
from mosaic_memory.kinds import KIND_SPECS
from mosaic_memory.search.schemas import SearchFilters


@dataclass
class Row:
    kind: Kind
    id: uuid.UUID
    owner_id: uuid.UUID
    content: str
    tags: list[str]
    metadata: dict[str, Any]
    created_at: datetime
    importance: float
    score: float
    embedding: np.ndarray | None = None


class SearchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _where(
        self,
        spec: KindSpec,
        owner_ids: Sequence[uuid.UUID],
        filters: SearchFilters,
        *,
        now: datetime,
        include_history: bool,
    ) -> list[ColumnElement[bool]] | None:
        """The WHERE clauses, or None when a filter names a field this kind does not have."""
        model = spec.model
        clauses: list[ColumnElement[bool]] = [model.owner_id.in_(owner_ids)]

        def need(column: Any) -> bool:
            return column is not None

        if filters.tags:
            if not need(spec.tags):
                return None
            clauses.append(spec.tags.overlap(list(filters.tags)))
        if filters.tags_all:
            if not need(spec.tags):
                return None
            clauses.append(spec.tags.contains(list(filters.tags_all)))
        if filters.category is not None:
            if not need(spec.category):
                return None
            clauses.append(spec.category == filters.category)
        if filters.metadata is not None:
            if not need(spec.metadata):
                return None
            clauses.append(spec.metadata.op("@>")(cast(filters.metadata, JSONB)))
        if filters.agent_id is not None:
            if not need(spec.agent):
                return None
            clauses.append(spec.agent == filters.agent_id)
        if filters.session_id is not None:
            if not need(spec.session):
                return None
            clauses.append(spec.session == filters.session_id)
        if filters.created_after is not None:
            clauses.append(spec.created >= filters.created_after)
        if filters.created_before is not None:
            clauses.append(spec.created < filters.created_before)
        if spec.current is not None and not include_history:
            clauses += spec.current(now)
        return clauses

    def _columns(self, spec: KindSpec, with_embedding: bool) -> list[Any]:
        model = spec.model
        cols = [
            model.id.label("id"),
            model.owner_id.label("owner_id"),
            spec.text_sql.label("content"),
            (spec.tags if spec.tags is not None else literal(None)).label("tags"),
            (spec.metadata if spec.metadata is not None else literal(None)).label("metadata"),
            spec.created.label("created_at"),
            (spec.importance if spec.importance is not None else literal(0.5)).label("importance"),
        ]
        if with_embedding:
            cols.append(model.embedding.label("embedding"))
        return cols

    @staticmethod
    def _row(kind: Kind, r: Any, score: float) -> Row:
        emb = getattr(r, "embedding", None)
        return Row(
            kind=kind,
            id=r.id,
            owner_id=r.owner_id,
            content=r.content,
            tags=list(r.tags or []),
            metadata=dict(r.metadata or {}),
            created_at=r.created_at,
            importance=float(r.importance),
            score=score,
            embedding=None if emb is None else np.asarray(emb, dtype=np.float32),
        )

    async def semantic(
        self,
        kind: Kind,
        owner_ids: Sequence[uuid.UUID],
        vector: np.ndarray,
        filters: SearchFilters,
        *,
        limit: int,
        now: datetime,
        include_history: bool,
        scan: ScanPolicy,
        ef_search: int,
        with_embedding: bool = False,
    ) -> list[Row]:
        spec = KIND_SPECS[kind]
        where = self._where(spec, owner_ids, filters, now=now, include_history=include_history)
        if where is None:
            return []
        model = spec.model
        where.append(model.embedding.is_not(None))
        distance = model.embedding.cosine_distance(vector)
        plan = await plan_vector_search(self.session, model, owner_ids, scan, ef_search=max(ef_search, limit))
        columns = [*self._columns(spec, with_embedding), distance.label("distance")]

        def query(plan: ScanPlan) -> Select[Any]:
            return select(*columns).where(*where).order_by(by_distance(distance, plan)).limit(limit)

        rows = await nearest_rows(self.session, plan, query, limit=limit)
        return [self._row(kind, r, 1.0 - float(r.distance)) for r in rows]

    async def keyword(
        self,
        kind: Kind,
        owner_ids: Sequence[uuid.UUID],
        query: str,
        filters: SearchFilters,
        *,
        limit: int,
        now: datetime,
        include_history: bool,
        with_embedding: bool = False,
        candidate_cap: int = 1_000,
    ) -> list[Row]:
        """Rows matching the words, best first: every word first, then any of them.

        Ranking is the cost (``ts_rank_cd`` reads each matching row), so each pass ranks at most
        ``candidate_cap`` matches: a question sharing a common word with most rows stays cheap.
        Rows that match every word come before rows that match only some, across kinds too: their
        score is ``0.5 + rank / 2``, the others' ``rank / 2`` (rank in 0..1).
        """
        spec = KIND_SPECS[kind]
        where = self._where(spec, owner_ids, filters, now=now, include_history=include_history)
        if where is None:
            return []
        rows: list[Row] = []
        passes = keyword_tsqueries(query)
        for number, tsquery in enumerate(passes):
            seen = {r.id for r in rows}
            found = await self._ranked(spec, kind, where, tsquery, limit, candidate_cap, with_embedding)
            floor = 0.5 if number == 0 and len(passes) > 1 else 0.0
            scale = 0.5 if len(passes) > 1 else 1.0
            for row in found:
                if row.id not in seen:
                    row.score = floor + scale * row.score
                    rows.append(row)
            if len(rows) >= limit:
                break
        return rows[:limit]

    async def _ranked(
        self,
        spec: KindSpec,
        kind: Kind,
        where: list[ColumnElement[bool]],
        tsquery: Any,
        limit: int,
        cap: int,
        with_embedding: bool,
    ) -> list[Row]:
        model = spec.model
        matches = (
            select(*self._columns(spec, with_embedding), model.search_tsv.label("tsv"))
            .where(*where, model.search_tsv.op("@@")(tsquery))
            .limit(cap)
            .subquery()
        )
        # Normalisation 32 maps the rank into 0..1 (rank / (rank + 1)).
        rank = func.ts_rank_cd(matches.c.tsv, tsquery, 32)
        stmt = select(matches, rank.label("rank")).order_by(rank.desc(), matches.c.id).limit(limit)
        return [self._row(kind, r, float(r.rank)) for r in (await self.session.execute(stmt)).all()]


def keyword_tsqueries(query: str) -> list[Any]:
    """The full-text queries to try in turn: web-search syntax as written, then any of the words.

    A plain question ("what colour scheme does she prefer?") rarely has every word in one row,
    so after the all-words pass comes an any-word pass, ranked by cover density so rows matching
    more of the words still come first. A query with operators (quotes, ``-``, ``or``) means
    exactly what it says and gets no second pass.
    """
    web = func.websearch_to_tsquery("english", query)
    if any(ch in query for ch in '"-') or " or " in query.lower():
        return [web]
    # Cast, not to_tsquery(): the lexemes are already stemmed, and stemming them again would
    # turn 'databas' into something no document contains.
    return [web, cast(func.replace(cast(web, Text), " & ", " | "), TSQUERY)]


__all__ = ["KIND_SPECS", "KindSpec", "Row", "SearchRepository", "keyword_tsqueries"]
