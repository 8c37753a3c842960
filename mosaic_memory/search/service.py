"""One search call over one or several kinds: semantic, keyword, or hybrid score fusion."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from embeddings import Embedder
from embeddings.rerank import Reranker
from mosaic_memory.common.owner_id_list import OwnerIdList
from mosaic_memory.common.schemas import KINDS, Kind
from mosaic_memory.common.vectors import ScanPlan
from mosaic_memory.config import Settings
from mosaic_memory.models import utc_now
from mosaic_memory.observability.metrics import Metrics, kinds_label
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.search.fusion import Calibration, fuse, fuse_rrf
from mosaic_memory.search.repository import Row, SearchRepository
from mosaic_memory.search.schemas import Hit, SearchRequest, SearchResponse
from mosaic_memory.search.vocabulary import VocabularyRefresher

__all__ = ["AccessSink", "SearchService", "calibration_of", "fuse_rrf"]

log = logging.getLogger("mosaic_memory.search")


class AccessSink(Protocol):
    """Where recalls of insights go: ``(owner_id, id)`` pairs and when (see ``insights/access.py``)."""

    def record(self, keys: Sequence[tuple[object, object]], when: datetime) -> None: ...


def calibration_of(settings: Settings) -> Calibration:
    cfg = settings.search
    return Calibration(
        cfg.calibration_semantic,
        cfg.calibration_keyword,
        cfg.calibration_hybrid,
        cfg.calibration_keyword_power,
        cfg.calibration_baseline_prior,
        cfg.calibration_keyword_gate,
        cfg.calibration_keyword_unsure,
    )


class SearchService:
    """Searches the principal's owners (never anyone else's).

    Guarantees: every hit belongs to one of the caller's owners; ``k`` hits come back whenever
    ``k`` rows match (unless a ``min_score`` is asked for or configured); ``score`` is a
    calibrated relevance in [0, 1], the same scale in every mode and for every query, with
    ``search.relevance_cut`` (0.5) between unrelated and relevant; ``scores`` keeps the raw
    signals (cosine, keyword coverage, reranker). Hits of insights count as a recall
    (``access_count``) through ``access`` (recorded later, off the search path; the service
    passes ``insights/access.py``; tools built without one count nothing), so a search never
    writes. A configured reranker that fails is logged and
    skipped: the search answers with the fused order. A large scope's keyword vocabulary found
    stale is used, and read again by ``vocabulary`` off the search path (``search/vocabulary.py``;
    without one, by the search itself once its answer is complete).
    """

    def __init__(
        self,
        *,
        embedder: Embedder,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
        access: AccessSink | None = None,
        reranker: Reranker | None = None,
        metrics: Metrics | None = None,
        vocabulary: VocabularyRefresher | None = None,
    ) -> None:
        self.embedder = embedder
        self.vocabulary = vocabulary
        self.metrics = metrics
        self.settings = settings
        self.clock = clock
        self.access = access
        self.reranker = reranker
        self.calibration = calibration_of(settings)

    async def search(self, session: AsyncSession, principal: Principal, req: SearchRequest) -> SearchResponse:
        """The caller's hits for ``req`` (timed in ``mosaic_search_duration_seconds`` by mode and kinds)."""
        started = time.perf_counter()
        response = await self._search(session, principal, req)
        if self.metrics is not None:
            self.metrics.search_duration.labels(req.mode, kinds_label(req.kinds, KINDS)).observe(
                time.perf_counter() - started
            )
        return response

    async def _search(self, session: AsyncSession, principal: Principal, req: SearchRequest) -> SearchResponse:
        owners = OwnerService.resolve_read_owners(principal, req.owner)
        # The principal's own list writes its text once for the wall's scope and every statement.
        owner_ids = principal.owner_ids if req.owner is None else OwnerIdList([o.id for o in owners])
        kinds: Sequence[Kind] = req.kinds or KINDS
        now = self.clock()
        repo = SearchRepository(session)
        cfg = self.settings.search
        min_score = req.min_score if req.min_score is not None else cfg.default_min_score
        # Always the wider candidate list: the semantic baseline (fusion.py) is its mean cosine, so
        # the same hit scores the same whatever k and mode.
        n = req.k * cfg.candidate_multiplier
        want_vectors = req.diversity > 0

        semantic: list[Row] = []
        keyword: list[Row] = []
        vector = None
        wants_semantic = req.mode in ("semantic", "hybrid")
        ef_search = max(cfg.hnsw_ef_search, n)
        unique = list(dict.fromkeys(kinds))
        present: list[Kind] = unique
        plans: dict[Kind, ScanPlan] = {}
        # The model runs off the event loop from here: meanwhile the plans' statement and the
        # keyword side of a hybrid search, which need no vector, read the database (the embedding
        # uses no session, so the session still serves one statement at a time). Started after
        # the plans, a semantic search waited for both one after the other.
        embedding = asyncio.ensure_future(self.embedder.embed_query(req.query)) if wants_semantic else None
        try:
            if wants_semantic:
                # One statement decides every kind's plan; a kind the caller owns nothing of is
                # skipped by both sides (its keyword side would cost statements of its own).
                plans = await repo.vector_plans(unique, owner_ids, cfg.scan_policy(), ef_search=ef_search)
                present = [kind for kind in unique if plans[kind] != "empty"]
            if req.mode == "keyword":
                keyword = await self._keyword(
                    repo, present, owner_ids, req, limit=n, now=now, with_embedding=want_vectors
                )
            elif embedding is not None and present:
                if req.mode == "hybrid":
                    # a row only the keyword side finds needs its vector for its cosine
                    keyword = await self._keyword(repo, present, owner_ids, req, limit=n, now=now, with_embedding=True)
                vector = await embedding
        finally:
            if embedding is not None:
                if not embedding.done():  # a failure, or nothing to search
                    embedding.cancel()
                elif not embedding.cancelled():
                    embedding.exception()  # a model failure nobody awaited (nothing to search) logs no warning
        if vector is not None:
            semantic = await repo.semantic(
                present,
                owner_ids,
                vector,
                req.filters,
                limit=n,
                now=now,
                include_history=req.include_history,
                scan=cfg.scan_policy(),
                ef_search=ef_search,
                with_embedding=want_vectors,
                plans=plans,
            )
            semantic.sort(key=lambda r: r.score, reverse=True)
            semantic = semantic[:n]

        fused = fuse(req.mode, semantic, keyword, self.calibration, vector, candidates=n)
        # keyed by the ids' integers, as fusion keys its rows: a UUID hashes through a Python call
        components: dict[tuple[str, int], dict[str, float]] = {(f.row.kind, f.row.id.int): f.signals for f in fused}
        scored = [(f.row, f.score) for f in fused]
        if self.reranker is not None and scored:
            scored = await self._rerank(req.query, scored, components)

        scored = self._weight(scored, req, now)
        if min_score is not None:
            scored = [(r, s) for r, s in scored if s >= min_score]
        if req.diversity > 0:
            scored = self._mmr(scored, req.k, req.diversity)
        scored = scored[: req.k]

        # The labels of the hits' owners alone, keyed by the ids' integers: a user in 100 teams
        # cost 100 UUID hashes and 100 labels a search (Python calls each), for at most k hits.
        hit_owners = {r.owner_id.int for r, _ in scored}
        labels = {o.id.int: o.label for o in owners if o.id.int in hit_owners}
        insight_keys = [(r.owner_id, r.id) for r, _ in scored if r.kind == "insights"]
        if insight_keys and self.access is not None:
            self.access.record(insight_keys, now)
        hits = [
            Hit(
                id=r.id,
                kind=r.kind,
                content=r.content,
                score=round(max(0.0, min(1.0, s)), 6),
                scores=components.get((r.kind, r.id.int), {}),
                tags=r.tags,
                metadata=r.metadata,
                owner=labels[r.owner_id.int],
                created_at=r.created_at,
            )
            for r, s in scored
        ]
        if repo.stale:
            if self.vocabulary is not None:
                self.vocabulary.refresh(repo.stale, principal)
            else:
                for scope in repo.stale:
                    await repo.read_vocabulary(scope, now)
        return SearchResponse(hits=hits, mode=req.mode)

    async def _keyword(
        self,
        repo: SearchRepository,
        kinds: Sequence[Kind],
        owner_ids: Sequence[uuid.UUID],
        req: SearchRequest,
        *,
        limit: int,
        now: datetime,
        with_embedding: bool,
    ) -> list[Row]:
        """The best ``limit`` keyword rows over ``kinds`` (every kind in the same two statements)."""
        cfg = self.settings.search
        found = await repo.keyword(
            kinds,
            owner_ids,
            req.query,
            req.filters,
            limit=limit,
            now=now,
            include_history=req.include_history,
            with_embedding=with_embedding,
            candidate_cap=cfg.keyword_candidate_cap,
            max_df_share=cfg.keyword_max_df_share,
            df_sample=cfg.keyword_df_sample,
        )
        # in the kinds' own order: rows of equal score keep it
        rows = [row for kind in kinds for row in found[kind]]
        rows.sort(key=lambda r: r.score, reverse=True)
        return rows[:limit]

    async def _rerank(
        self, query: str, scored: list[tuple[Row, float]], components: dict[tuple[str, int], dict[str, float]]
    ) -> list[tuple[Row, float]]:
        """The top ``rerank_candidates`` in the reranker's order, scored by it; the rest after them."""
        assert self.reranker is not None
        head = scored[: self.settings.search.rerank_candidates]
        try:
            values = await self.reranker.rerank(query, [r.content for r, _ in head])
        except Exception as exc:  # a remote reranker down must not take search down with it
            log.warning("reranker failed (%s: %s); answering with the fused order", type(exc).__name__, exc)
            return scored
        out = []
        for (row, _), value in zip(head, values, strict=True):
            components.setdefault((row.kind, row.id.int), {})["rerank"] = round(float(value), 6)
            out.append((row, float(value)))
        out.sort(key=lambda pair: pair[1], reverse=True)
        floor = out[-1][1] if out else 0.0
        # What the reranker did not see stays below what it did (it was ranked lower already).
        return out + [(r, min(s, floor)) for r, s in scored[len(head) :]]

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
