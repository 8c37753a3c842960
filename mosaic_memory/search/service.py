"""One search call over one or several kinds: semantic, keyword, or hybrid rank fusion."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from embeddings import Embedder
from mosaic_memory.common.schemas import KINDS, Kind
from mosaic_memory.config import Settings
from mosaic_memory.insights.repository import InsightRepository
from mosaic_memory.models import utc_now
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.search.repository import Row, SearchRepository
from mosaic_memory.search.schemas import Hit, SearchRequest, SearchResponse

__all__ = ["SearchService", "fuse_rrf"]

Key = tuple[str, object]


def fuse_rrf(lists: Sequence[Sequence[Row]], k: int, weights: Sequence[float] | None = None) -> list[tuple[Row, float]]:
    """Weighted reciprocal-rank fusion, normalised so rank 1 in every list scores 1.0."""
    weights = weights or [1.0] * len(lists)
    scores: dict[Key, float] = {}
    rows: dict[Key, Row] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        for rank, row in enumerate(ranked, start=1):
            key = (row.kind, row.id)
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
            rows.setdefault(key, row)
    best = sum(weights) / (k + 1)
    fused = [(rows[key], score / best) for key, score in scores.items()]
    fused.sort(key=lambda pair: pair[1], reverse=True)
    return fused


class SearchService:
    """Searches the principal's owners (never anyone else's).

    Guarantees: every hit belongs to one of the caller's owners; ``k`` hits come back whenever
    ``k`` rows match; hits of insights count as a recall (``access_count``).
    """

    def __init__(self, *, embedder: Embedder, settings: Settings, clock: Callable[[], datetime] = utc_now) -> None:
        self.embedder = embedder
        self.settings = settings
        self.clock = clock

    async def search(self, session: AsyncSession, principal: Principal, req: SearchRequest) -> SearchResponse:
        owners = OwnerService.resolve_read_owners(principal, req.owner)
        owner_ids = [o.id for o in owners]
        kinds: Sequence[Kind] = req.kinds or KINDS
        now = self.clock()
        repo = SearchRepository(session)
        cfg = self.settings.search
        reranks = req.recency_weight > 0 or req.importance_weight > 0 or req.diversity > 0 or req.min_score
        n = req.k * cfg.candidate_multiplier if (req.mode == "hybrid" or reranks) else req.k
        want_vectors = req.diversity > 0

        semantic: list[Row] = []
        keyword: list[Row] = []
        if req.mode in ("semantic", "hybrid"):
            vector = await self.embedder.embed_query(req.query)
            for kind in dict.fromkeys(kinds):
                semantic += await repo.semantic(
                    kind,
                    owner_ids,
                    vector,
                    req.filters,
                    limit=n,
                    now=now,
                    include_history=req.include_history,
                    scan=cfg.scan_policy(),
                    ef_search=cfg.hnsw_ef_search,
                    with_embedding=want_vectors,
                )
            semantic.sort(key=lambda r: r.score, reverse=True)
            semantic = semantic[:n]
        if req.mode in ("keyword", "hybrid"):
            for kind in dict.fromkeys(kinds):
                keyword += await repo.keyword(
                    kind,
                    owner_ids,
                    req.query,
                    req.filters,
                    limit=n,
                    now=now,
                    include_history=req.include_history,
                    with_embedding=want_vectors,
                    candidate_cap=cfg.keyword_candidate_cap,
                )
            keyword.sort(key=lambda r: r.score, reverse=True)
            keyword = keyword[:n]

        if req.mode == "semantic":
            scored = [(r, r.score) for r in semantic]
        elif req.mode == "keyword":
            scored = [(r, r.score) for r in keyword]
        else:
            scored = fuse_rrf([semantic, keyword], cfg.rrf_k, [1.0, cfg.keyword_weight])
        components: dict[Key, dict[str, float]] = {}
        for name, ranked in (("semantic", semantic), ("keyword", keyword)):
            for r in ranked:
                components.setdefault((r.kind, r.id), {})[name] = round(r.score, 6)

        scored = self._weight(scored, req, now)
        if req.min_score is not None:
            scored = [(r, s) for r, s in scored if s >= req.min_score]
        if req.diversity > 0:
            scored = self._mmr(scored, req.k, req.diversity)
        scored = scored[: req.k]

        insight_keys = [(r.owner_id, r.id) for r, _ in scored if r.kind == "insights"]
        await InsightRepository(session).bump_access(insight_keys, now)
        hits = [
            Hit(
                id=r.id,
                kind=r.kind,
                content=r.content,
                score=round(max(0.0, min(1.0, s)), 6),
                scores=components.get((r.kind, r.id), {}),
                tags=r.tags,
                metadata=r.metadata,
                owner=principal.owner_by_id(r.owner_id).label,
                created_at=r.created_at,
            )
            for r, s in scored
        ]
        return SearchResponse(hits=hits, mode=req.mode)

    @staticmethod
    def _weight(scored: list[tuple[Row, float]], req: SearchRequest, now: datetime) -> list[tuple[Row, float]]:
        rw, iw = req.recency_weight, req.importance_weight
        if rw == 0 and iw == 0:
            return scored
        out = []
        for row, score in scored:
            age_days = max(0.0, (now - row.created_at).total_seconds() / 86400)
            recency = math.pow(0.5, age_days / req.recency_half_life_days)
            relevance_share = max(0.0, 1.0 - rw - iw)
            out.append((row, relevance_share * score + rw * recency + iw * row.importance))
        out.sort(key=lambda pair: pair[1], reverse=True)
        return out

    @staticmethod
    def _mmr(scored: list[tuple[Row, float]], k: int, diversity: float) -> list[tuple[Row, float]]:
        """Maximal marginal relevance: trade relevance for dissimilarity to what is already picked."""
        pool = [(r, s) for r, s in scored if r.embedding is not None]
        chosen: list[tuple[Row, float]] = []
        while pool and len(chosen) < k:
            best_i, best_value = 0, -math.inf
            for i, (row, score) in enumerate(pool):
                redundancy = max(
                    (float(np.dot(row.embedding, c.embedding)) for c, _ in chosen),  # type: ignore[arg-type]
                    default=0.0,
                )
                value = (1 - diversity) * score - diversity * redundancy
                if value > best_value:
                    best_i, best_value = i, value
            chosen.append(pool.pop(best_i))
        return chosen
