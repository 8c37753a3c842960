"""Search SQL over every embedded kind, always scoped to the caller's owners.

Semantic search picks its plan by the size of the scope: an exact scan (B-tree on the owner,
then a sort) below ``exact_scan_threshold`` rows, HNSW with pgvector's iterative scans above
it, and an exact scan again whenever HNSW comes back short, so a search for k returns k
whenever k rows match.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import (
    DateTime,
    Executable,
    Float,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    column,
    func,
    literal,
    null,
    select,
    type_coerce,
    union,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSQUERY, aggregate_order_by, distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.selectable import CompoundSelect
from sqlalchemy.sql.sqltypes import NullType
from sqlalchemy.sql.visitors import ExternallyTraversible, replacement_traverse

from mosaic_memory.common.kinds import KindSpec
from mosaic_memory.common.owner_id_list import OwnerIdList
from mosaic_memory.common.pgvector_binary import from_vector_send
from mosaic_memory.common.repository import OWNERS, owned_by, owner_filter_on, union_of_parts
from mosaic_memory.common.schemas import Kind
from mosaic_memory.common.ttl_cache import TtlCache
from mosaic_memory.common.vectors import (
    ScanPlan,
    ScanPolicy,
    binary_vector,
    by_distance,
    nearest_rows,
    query_vector_parameter,
    scan_plans,
)
from mosaic_memory.db import json_loads
from mosaic_memory.kinds import KIND_SPECS
from mosaic_memory.search.schemas import SearchFilters


@dataclass(frozen=True)
class Vocabulary:
    """How many of a large scope's sample rows hold each lexeme, and when it was read (the clock
    of :data:`LARGE_SCOPE_VOCABULARY`)."""

    counts: dict[str, int]
    read_at: float


@dataclass(frozen=True)
class KeywordScope:
    """A keyword search's scope: the key its large-scope facts are remembered under, and what
    reading its vocabulary again takes (:meth:`SearchRepository.read_vocabulary`)."""

    key: Hashable
    kind: Kind
    owner_ids: OwnerIdList
    filters: SearchFilters
    include_history: bool
    sample: int


@dataclass
class Row:
    kind: Kind
    id: uuid.UUID
    owner_id: uuid.UUID
    content: str
    tags: list[str]
    metadata_json: str | None  # the metadata as PostgreSQL writes it (None: the kind has none)
    created_at: datetime
    importance: float
    score: float
    embedding: np.ndarray | None = None

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """Decoded when read: a search reads its candidates' rows (40 a kind, three kinds) and
        returns k hits, so decoding every candidate's metadata as the rows came in was ~5 Python
        calls a row spent on rows it then dropped."""
        if self.metadata_json is None:
            return {}
        decoded: dict[str, Any] = json_loads(self.metadata_json)
        return decoded


# Facts about large scopes, counted once and kept for a short while (common/ttl_cache.py; the
# vector plan of a large scope is remembered by common/vectors.scan_plans): keyword document
# frequencies of a scope of at least ``keyword_df_sample`` rows. An agent asks many questions of the
# same large memory. Keyed by the scope's text (``OwnerIdList.text``: one string to hash, not 100 ids).
LARGE_SCOPE_DF: TtlCache[int] = TtlCache(60.0, max_entries=100_000)
# The keyword scopes known to be that large: their lexemes are asked for alone, their frequencies
# looked up here first (SearchRepository.keyword).
LARGE_SCOPES: TtlCache[bool] = TtlCache(60.0, max_entries=10_000)
# A large scope's whole sample vocabulary, lexeme -> rows holding it, read once the scope is known
# large and a question brings a word not counted yet (SearchRepository._vocabulary). Past
# VOCABULARY_FRESH seconds it is still served, and read again off the search path
# (search/vocabulary.py): the read is 35-85 ms at 100k rows, once a minute on some search's path.
# One not read again for ten minutes (its scope searched for none of them) is forgotten.
LARGE_SCOPE_VOCABULARY: TtlCache[Vocabulary] = TtlCache(600.0, max_entries=256)
VOCABULARY_FRESH = 60.0

# Per (kind, with the embedding): semantic's result columns, its labelled distance column per plan,
# and the embedded-rows condition (SearchRepository._vector_columns).
_VECTOR_COLUMNS: dict[tuple[Kind, bool], tuple[list[Any], dict[ScanPlan, Any], ColumnElement[bool]]] = {}

# Semantic search's statement without filters, per ((kind, plan) of each part, with the embedding,
# with history), built once: its owners (OWNERS), present and limit are parameters given at each
# execution. (The owner filter's switch is part of the key, ``owner_filter_on``; the keyword
# statements key on the WHERE's shape, which holds the filter or its absence.)
_NEAREST: dict[tuple[tuple[tuple[Kind, ScanPlan], ...], bool, bool, bool], Executable] = {}
_NOW = "now"
_LIMIT = "limit"
_NOW_PARAMETER = bindparam(_NOW, type_=DateTime(timezone=True))
_LIMIT_PARAMETER = bindparam(_LIMIT, type_=Integer)

# In a scope of at least `keyword_df_sample` rows, a word in at most this share of them is rare: a
# keyword pass over rare words alone reads their rows through the GIN index (at 100k rows, at most
# ~1,000 a word), where an any-word pass with a common word reads rows until the candidate cap is
# full. A smaller scope is read whole by that pass anyway, so it keeps the one any-word pass.
RARE_SHARE = 0.01


class SearchRepository:
    """One search's SQL; built per search (it collects the stale vocabularies the search served)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # the scopes whose vocabulary this search served stale, for the caller to have read again
        self.stale: list[KeywordScope] = []

    async def vector_plans(
        self, kinds: Sequence[Kind], owner_ids: Sequence[uuid.UUID], scan: ScanPolicy, *, ef_search: int | None
    ) -> dict[Kind, ScanPlan]:
        """Each kind's plan (``common/vectors.scan_plans``: one round trip, none for a scope
        remembered large), and, given ``ef_search``, the iterative-scan settings when any kind walks
        HNSW."""
        models = [KIND_SPECS[kind].model for kind in kinds]
        plans = await scan_plans(self.session, models, owner_ids, scan, iterative_hnsw=ef_search)
        return dict(zip(kinds, plans, strict=True))

    def _where(
        self,
        spec: KindSpec,
        owner_ids: Sequence[uuid.UUID] | None,
        filters: SearchFilters,
        *,
        now: datetime | ColumnElement[datetime],
        include_history: bool,
    ) -> list[ColumnElement[bool]] | None:
        """The WHERE clauses, or None when a filter names a field this kind does not have;
        ``owner_ids`` None and ``now`` a parameter: a statement whose scope and present are given
        at execution (``owned_by``)."""
        model = spec.model
        clauses: list[ColumnElement[bool]] = [owned_by(model.owner_id, owner_ids)]

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

    @staticmethod
    def _columns(spec: KindSpec, with_embedding: bool) -> list[Any]:
        model = spec.model
        cols = [
            model.id.label("id"),
            model.owner_id.label("owner_id"),
            spec.text_sql.label("content"),
            # untyped: psycopg returns the text[] as a list already, and ARRAY's result processor
            # copied it again (two Python calls a row). A kind without tags says NULL::text[]: in
            # semantic's UNION of every kind an untyped NULL first made PostgreSQL take the column
            # for text, and the next kind's text[] then failed the statement.
            type_coerce(spec.tags if spec.tags is not None else cast(null(), ARRAY(Text)), NullType()).label("tags"),
            # as text: decoded only for the rows a search returns (Row.metadata)
            (cast(spec.metadata, Text) if spec.metadata is not None else literal(None, Text)).label("metadata"),
            spec.created.label("created_at"),
            (spec.importance if spec.importance is not None else literal(0.5)).label("importance"),
        ]
        if with_embedding:
            cols.append(binary_vector(model.embedding).label("embedding"))
        return cols

    @staticmethod
    def _row(kind: Kind, r: Any, score: float, with_embedding: bool) -> Row:
        # Told, not looked up: ``"embedding" in r._fields`` cost six calls a row, 40 rows a kind
        # (getattr on a missing attribute costs an exception inside SQLAlchemy).
        emb = r.embedding if with_embedding else None
        return Row(
            kind=kind,
            id=r.id,
            owner_id=r.owner_id,
            content=r.content,
            tags=r.tags or [],
            metadata_json=r.metadata,
            created_at=r.created_at,
            importance=float(r.importance),
            score=score,
            embedding=None if emb is None else from_vector_send(emb),
        )

    async def semantic(
        self,
        kinds: Sequence[Kind],
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
        plans: dict[Kind, ScanPlan] | None = None,
    ) -> list[Row]:
        """Each kind's nearest ``limit`` rows (nearest first within a kind), every kind in one
        statement (``common/vectors.nearest_rows``); ``plans`` from :meth:`vector_plans` (decided
        here when None). A kind a filter names a missing field of has no rows.

        Without filters the statement is built once per kinds and plans (:data:`_NEAREST`), so a
        search neither builds it nor has SQLAlchemy walk it for its cache key again (~600 Python
        calls a kind): the scope, the present and the limit travel as parameters.
        """
        owner_ids = OwnerIdList.of(owner_ids)

        def where_of(kind: Kind) -> list[ColumnElement[bool]] | None:
            return self._where(KIND_SPECS[kind], None, filters, now=_NOW_PARAMETER, include_history=include_history)

        wheres: dict[Kind, list[ColumnElement[bool]]] | None = None
        if filters.model_fields_set:  # built once: a statement with the filters' values is built per search
            wheres = {kind: where for kind in kinds if (where := where_of(kind)) is not None}
            kinds = list(wheres)
        if plans is None:  # the same remembered plans as the service's path
            plans = await self.vector_plans(kinds, owner_ids, scan, ef_search=max(ef_search, limit))
        present = list(kinds)

        def query(these: Sequence[ScanPlan]) -> Executable:
            parts = tuple(zip(present, these, strict=True))
            if wheres is not None:
                return self._nearest_union(parts, wheres.get, with_embedding)
            key = (parts, with_embedding, include_history, owner_filter_on())
            if key not in _NEAREST:
                _NEAREST[key] = self._nearest_union(parts, where_of, with_embedding)
            return _NEAREST[key]

        params = {OWNERS: owner_ids, _NOW: now, _LIMIT: limit}
        found = await nearest_rows(
            self.session, [plans[kind] for kind in present], query, limit=limit, vector=vector, params=params
        )
        return [
            self._row(kind, r, 1.0 - float(r.distance), with_embedding)
            for kind, rows in zip(present, found, strict=True)
            for r in rows
        ]

    def _nearest_union(
        self,
        parts: Sequence[tuple[Kind, ScanPlan]],
        where: Callable[[Kind], list[ColumnElement[bool]] | None],
        with_embedding: bool,
    ) -> Executable:
        """:func:`common.repository.union_of_parts` of each kind's :meth:`_nearest` (an ``"empty"`` plan:
        left out); ``where`` gives a kind's WHERE (every kind given has one)."""

        def nearest(kind: Kind, plan: ScanPlan) -> Select[Any]:
            clauses = where(kind)
            assert clauses is not None  # kinds without one were left out before
            return self._nearest(kind, clauses, with_embedding, plan)

        return union_of_parts([None if plan == "empty" else nearest(kind, plan) for kind, plan in parts])

    def _nearest(
        self, kind: Kind, where: list[ColumnElement[bool]], with_embedding: bool, plan: ScanPlan
    ) -> Select[Any]:
        """Semantic's statement for ``plan`` over ``where``, its limit the parameter :data:`_LIMIT`."""
        columns, distances, embedded = self._vector_columns(kind, with_embedding)
        distance = distances[plan]
        return select(*columns, distance).where(*where, embedded).order_by(distance).limit(_LIMIT_PARAMETER)

    def _vector_columns(
        self, kind: Kind, with_embedding: bool
    ) -> tuple[list[Any], dict[ScanPlan, Any], ColumnElement[bool]]:
        """The kind's result columns, the distance to the query vector (its parameter given at
        execution) as each plan orders by it, and the embedded-rows condition: built once per kind.

        The statement selects the very expression it orders by and orders by its label, so each
        row's distance is computed once: selecting ``embedding <=> q`` and ordering an exact scan
        by ``(embedding <=> q) + 0`` computed it twice and read each row's vector twice from its
        TOAST table (a 1,000-row scope: 2.3 against 1.6 ms in SQL)."""
        key = (kind, with_embedding)
        if key not in _VECTOR_COLUMNS:
            spec = KIND_SPECS[kind]
            distance = spec.model.embedding.cosine_distance(query_vector_parameter())
            by_plan: dict[ScanPlan, Any] = {
                plan: by_distance(distance, plan).label("distance") for plan in ("exact", "hnsw")
            }
            _VECTOR_COLUMNS[key] = (self._columns(spec, with_embedding), by_plan, spec.model.embedding.is_not(None))
        return _VECTOR_COLUMNS[key]

    async def keyword(
        self,
        kinds: Sequence[Kind],
        owner_ids: Sequence[uuid.UUID],
        query: str,
        filters: SearchFilters,
        *,
        limit: int,
        now: datetime,
        include_history: bool,
        with_embedding: bool = False,
        candidate_cap: int = 1_000,
        max_df_share: float = 0.5,
        df_sample: int = 10_000,
    ) -> dict[Kind, list[Row]]:
        """Each kind's rows matching the query's useful words, best first, scored 0..1 by
        IDF-weighted coverage (a kind a filter names a missing field of, or without a useful word
        in its scope, has none).

        A row's score is the share of the query's information it contains: the sum of the BM25
        IDF of the query lexemes it matches over the sum for all of them, where the document
        frequency is counted in the caller's scope of that kind. A lexeme in more than
        ``max_df_share`` of the scope weighs nothing when the query has a rarer word, and
        stop-words never reach the query, so neither can carry a hit alone; a query of common
        words only is ranked by their IDF. Rows matching every useful word are ranked first, then
        rows matching any; each pass ranks at most ``candidate_cap`` matches, so a word most rows
        contain stays cheap. Ties go to ``ts_rank_cd``, then to the newest row. Document
        frequencies are counted up to ``df_sample`` rows: in a larger scope the share is taken
        over ``df_sample`` rows, so a word there weighs at most what it would in a scope of that
        size.

        Two statements for every kind together: the query's lexemes with the frequencies of every
        kind not known large (:meth:`_lexemes_counted`; the lexemes alone when all are), then
        every kind's passes (:meth:`_ranked`). Each kind had a statement of each (eight over four
        kinds), each a round trip and an execution in SQLAlchemy and psycopg of its own.
        """
        found: dict[Kind, list[Row]] = {kind: [] for kind in kinds}
        parts: list[_KeywordPart] = []
        for kind in dict.fromkeys(kinds):
            spec = KIND_SPECS[kind]
            where = self._where(spec, owner_ids, filters, now=now, include_history=include_history)
            if where is not None:
                scope = _scope(kind, owner_ids, filters, include_history, df_sample)
                parts.append(_KeywordPart(kind, spec, where, scope))
        if not parts:
            return found
        counting = [part for part in parts if not _known_large(part.scope.key)]
        counted: dict[Kind, tuple[int, dict[str, int]]] = {}
        if counting:  # their frequencies are counted anyway: in the same round trip as the lexemes
            terms, counted = await self._lexemes_counted(query, counting, df_sample)
        else:  # every frequency is remembered or in its scope's vocabulary
            terms = await self.query_lexemes(query)
        if not terms:
            return found
        ranking: list[tuple[_KeywordPart, list[Pass], dict[str, float]]] = []
        for part in parts:
            if part.kind in counted and counted[part.kind][0] == 0:
                continue  # counted empty just now (a kind planned as an exact scan may hold nothing)
            weights, shares, scope_rows = await self._idf(
                part.spec, part.where, terms, max_df_share, part.scope, counted=counted.get(part.kind)
            )
            useful = [t for t in terms if weights[t] > 0]
            if useful:
                passes = _passes(query, useful, shares, scope_rows >= df_sample, candidate_cap, limit)
                ranking.append((part, passes, weights))
        if ranking:
            found.update(await self._ranked(ranking, limit, with_embedding))
        return found

    async def query_lexemes(self, query: str) -> list[str]:
        """The query's lexemes as the ``english`` configuration stems them, stop-words dropped.

        The same round trip makes the rest of the transaction plan each statement for its own
        parameters (``plan_cache_mode``): the keyword statements are the same text for every query,
        so psycopg prepares them, and after five executions PostgreSQL may keep a generic plan,
        which knows neither the tsquery nor how many owners the owner array holds. It assumed ten
        and ANDed a bitmap scan of the whole scope onto every text match: a keyword statement took
        19 ms on average against 7 ms planned for its parameters, planning included (100k rows,
        100 owners). The vector statements after it were planned for their parameters already."""
        found = (await self.session.execute(_LEXEMES, {_POSITIVE: _positive(query)})).one()[0]
        return list(found or [])

    async def _lexemes_counted(
        self, query: str, parts: Sequence[_KeywordPart], sample: int
    ) -> tuple[list[str], dict[Kind, tuple[int, dict[str, int]]]]:
        """:meth:`query_lexemes` and, in the same round trip, what :meth:`_idf` counts for each of
        them in each part's scope: the rows read (at most ``sample``) and how many hold each lexeme.

        For the scopes not known to be large (a small one every time, a large one the first time),
        whose frequencies are counted on every search: a round trip of its own was ~1.5 ms of the
        search (a third of a small store's keyword side). The statement is built once per shape as
        :meth:`_ranked`'s: built per search, a kind's count was ~2 ms of Python in a small store."""
        stmt, params = _kept(
            _COUNTED,
            tuple(part.kind for part in parts),
            [part.where for part in parts],
            lambda named: _counted_statement([part.spec for part in parts], named),
        )
        params |= {_POSITIVE: _positive(query), "sample": sample}
        row = (await self.session.execute(stmt, params)).one()
        terms = list(row[0] or [])
        counted: dict[Kind, tuple[int, dict[str, int]]] = {}
        for j, part in enumerate(parts):
            n, counts = row[2 + 2 * j], row[3 + 2 * j]
            counted[part.kind] = (int(n), dict(zip(terms, (int(c) for c in counts or []), strict=True)))
        return terms, counted

    async def _idf(
        self,
        spec: KindSpec,
        where: list[ColumnElement[bool]],
        terms: Sequence[str],
        max_share: float,
        scope: KeywordScope,
        *,
        counted: tuple[int, dict[str, int]] | None,
    ) -> tuple[dict[str, float], dict[str, float], int]:
        """BM25 IDF of each lexeme in the scope (0 for a lexeme above ``max_share``), the share
        of the scope's rows holding it, and the rows counted (at most ``scope.sample``).

        ``counted``: the rows read and each lexeme's count (:meth:`_lexemes_counted`, one pass over
        at most ``sample`` rows for every lexeme at once: counting each lexeme's matches on its own
        read up to ``sample`` rows per lexeme, 220 ms a search at 100k rows). None for a scope
        known to be large: its counts are remembered, and a word not remembered is looked up in
        the sample's whole vocabulary (:meth:`_vocabulary`; one past :data:`VOCABULARY_FRESH` is
        served and put in :attr:`stale`)."""
        sample = scope.sample
        if counted is not None:
            n, frequencies = counted[0], dict(counted[1])
            if n >= sample:
                LARGE_SCOPES.put(scope.key, True)
                for term, df in frequencies.items():
                    LARGE_SCOPE_DF.put((scope.key, term), df)
        else:  # a scope known large: only a scope of at least ``sample`` rows is remembered
            n = sample
            frequencies = {t: known for t in terms if (known := LARGE_SCOPE_DF.get((scope.key, t))) is not None}
            missing = [t for t in terms if t not in frequencies]
            if missing:
                vocabulary = LARGE_SCOPE_VOCABULARY.get(scope.key)
                if vocabulary is None:
                    vocabulary = _remember(scope, await self._vocabulary(spec, where, sample))
                elif LARGE_SCOPE_VOCABULARY.clock() - vocabulary.read_at > VOCABULARY_FRESH:
                    self.stale.append(scope)  # served meanwhile: a refresh costs this search nothing
                counts = vocabulary.counts
                frequencies.update({term: counts.get(term, 0) for term in missing})
        n = max(1, n)
        idf: dict[str, float] = {}
        shares = {term: frequencies[term] / n for term in terms}
        common: set[str] = set()
        for term in terms:
            df = frequencies[term]
            idf[term] = math.log(1 + (n - df + 0.5) / (df + 0.5))
            if shares[term] > max_share:
                common.add(term)
        # A common word weighs nothing beside a rarer one; a query of common words only keeps
        # them (IDF-weighted), or a three-row store could never be searched by its own words.
        if len(common) < len(idf):
            for term in common:
                idf[term] = 0.0
        return idf, shares, n

    async def read_vocabulary(self, scope: KeywordScope, now: datetime) -> None:
        """Read ``scope``'s vocabulary again (a stale one, off the search path:
        ``search/vocabulary.py``); a scope no longer large is forgotten, so that its next search
        counts it as it counts any small scope."""
        spec = KIND_SPECS[scope.kind]
        where = self._where(spec, scope.owner_ids, scope.filters, now=now, include_history=scope.include_history)
        assert where is not None  # the search that served it built this WHERE
        rows = select(literal(1)).where(*where).limit(scope.sample).subquery()
        if await self.session.scalar(select(func.count()).select_from(rows)) == scope.sample:
            LARGE_SCOPES.put(scope.key, True)
            _remember(scope, await self._vocabulary(spec, where, scope.sample))
        else:
            # Known small for a while, not merely forgotten: a search in flight that found the
            # vocabulary gone reads it for itself and must not keep it (_remember), or the small
            # scope would pass for large, counted over ``sample`` rows, until the next refresh.
            LARGE_SCOPES.put(scope.key, False)
            LARGE_SCOPE_VOCABULARY.drop(scope.key)

    async def _vocabulary(self, spec: KindSpec, where: list[ColumnElement[bool]], sample: int) -> dict[str, int]:
        """How many of the scope's first ``sample`` rows (the rows :meth:`_idf` counts over) hold
        each lexeme they hold, in one round trip.

        For a scope known to be large, read once a question brings a word whose frequency is not
        remembered: counting a new word's rows read the whole sample again (7-13 ms of a hybrid
        search at 100k rows, one question in seven), where the whole vocabulary (~20,000 lexemes
        at 100k rows) is ~35 ms once a minute and every new word after it costs nothing."""
        rows = select(spec.model.search_tsv.label("tsv")).where(*where).limit(sample).cte("sample")
        held = select(func.unnest(func.tsvector_to_array(rows.c.tsv)).label("lexeme")).subquery()
        counts = select(held.c.lexeme, func.count().label("n")).group_by(held.c.lexeme).subquery()
        lexemes, ns = (
            await self.session.execute(select(func.array_agg(counts.c.lexeme), func.array_agg(counts.c.n)))
        ).one()
        return dict(zip(lexemes or [], (int(n) for n in ns or []), strict=True))

    async def _ranked(
        self,
        ranking: Sequence[tuple[_KeywordPart, Sequence[Pass], dict[str, float]]],
        limit: int,
        with_embedding: bool,
    ) -> dict[Kind, list[Row]]:
        """Each part's best ``limit`` rows of its ``passes`` by its lexemes' ``weights``, every part
        in one statement (:func:`_ranked_statement`), built once per shape: the statement of a
        search's shape is kept, and each search binds its own values to it (building it took ~5 ms
        of CPU per search, more than the statement's own work in the database on a 100k-row scope)."""
        stmt, params = _kept(
            _RANKED,
            (with_embedding, *((part.kind, tuple(p.websearch for p in passes)) for part, passes, _ in ranking)),
            [part.where for part, _, _ in ranking],
            lambda named: _ranked_statement(
                [(part.spec, where, passes) for (part, passes, _), where in zip(ranking, named, strict=True)],
                with_embedding,
            ),
        )
        params["limit"] = limit
        for j, (_, passes, weights) in enumerate(ranking):
            total = sum(weights.values())
            useful = [(term, weight / total) for term, weight in weights.items() if weight > 0]
            params[f"p{j}lexemes"] = [_quoted(term) for term, _ in useful]
            params[f"p{j}shares"] = [share for _, share in useful]
            for i, step in enumerate(passes):
                params[f"p{j}q{i}"] = step.query
                params[f"p{j}cap{i}"] = step.cap
        kinds = [part.kind for part, _, _ in ranking]
        found: dict[Kind, list[Row]] = {kind: [] for kind in kinds}
        conn = await self.session.connection()  # Core: column rows, which the ORM's execution layer only slows
        # Each part's rows in its own order: the UNION ALL appends its branches one after another
        # (no parallel plan: the branches read MATERIALIZED CTEs, which only the leader may scan).
        for r in (await conn.execute(stmt, params)).all():
            kind = kinds[r.part]
            found[kind].append(self._row(kind, r, float(r.score), with_embedding))
        return found


@dataclass(frozen=True)
class _KeywordPart:
    """One kind of a keyword search: its WHERE and its scope."""

    kind: Kind
    spec: KindSpec
    where: list[ColumnElement[bool]]
    scope: KeywordScope


@dataclass(frozen=True)
class Pass:
    """One keyword pass: its tsquery text (web-search syntax when ``websearch``) and its cap of rows."""

    query: str
    cap: int
    websearch: bool = False


def _passes(
    query: str, useful: Sequence[str], shares: dict[str, float], large: bool, cap: int, limit: int
) -> list[Pass]:
    """A kind's keyword passes for its ``useful`` lexemes (their ``shares`` of a scope ``large``
    or not): the query as written when it uses web-search syntax; else every word, then any."""
    if has_operators(query):
        return [Pass(query, cap, websearch=True)]
    passes = [Pass(_tsquery_text(useful, " & "), cap)]
    if len(useful) > 1:
        rare = [t for t in useful if shares[t] <= RARE_SHARE]
        if large and rare and len(rare) < len(useful):
            # The rows holding a rare word first, found through the index alone; rows that match
            # only common words are weak evidence: a short pass of them after.
            passes.append(Pass(_tsquery_text(rare, " | "), cap))
            passes.append(Pass(_tsquery_text(useful, " | "), min(cap, 4 * limit)))
        else:
            passes.append(Pass(_tsquery_text(useful, " | "), cap))
    return passes


# The ranking statement per (with the vector, (kind, each pass's syntax) of each part, shape of
# each part's WHERE), its values left to bind (SearchRepository._ranked); at most _MAX_SHAPES kept.
_RANKED: dict[Hashable, Select[Any] | CompoundSelect[Any]] = {}
_MAX_SHAPES = 256

_Kept = TypeVar("_Kept", bound=Executable)


def _kept(
    kept: dict[Hashable, _Kept],
    key: tuple[Hashable, ...],
    wheres: Sequence[Sequence[ColumnElement[bool]]],
    build: Callable[[list[list[ColumnElement[bool]]]], _Kept],
) -> tuple[_Kept, dict[str, Any]]:
    """The statement kept in ``kept`` for ``key`` and the shapes of the parts' ``wheres`` (``build``
    makes it from the clauses :func:`_named` writes, part ``j``'s values named ``p{j}w0``,
    ``p{j}w1``…, on first use), and the WHEREs' values to bind to it. At most :data:`_MAX_SHAPES`
    are kept: filters make shapes without bound, so a full cache starts again."""
    shapes: list[Hashable] = []
    params: dict[str, Any] = {}
    for j, where in enumerate(wheres):
        shape, values = _where_shape(where)
        shapes.append(shape)
        params.update({f"p{j}w{i}": value for i, value in enumerate(values)})
    full_key = (*key, tuple(shapes))
    stmt = kept.get(full_key)
    if stmt is None:
        if len(kept) >= _MAX_SHAPES:
            kept.clear()
        stmt = kept[full_key] = build([_named(where, f"p{j}w") for j, where in enumerate(wheres)])
    return stmt, params


def _where_shape(where: Sequence[ColumnElement[bool]]) -> tuple[Hashable, list[Any]]:
    """The WHERE clauses' structure without their values, and their values in the order
    :func:`_named` names them (SQLAlchemy's cache key of the clauses: the same structure gives
    the same key and the same order)."""
    cache_key = and_(*where)._generate_cache_key()
    assert cache_key is not None  # every clause here is cacheable
    return cache_key.key, [bind.effective_value for bind in cache_key.bindparams]


def _named(where: Sequence[ColumnElement[bool]], prefix: str) -> list[ColumnElement[bool]]:
    """The clauses with each value replaced by a parameter named ``{prefix}0``, ``{prefix}1``… in
    the order of :func:`_where_shape`, its type kept, so a kept statement takes another search's values."""
    cache_key = and_(*where)._generate_cache_key()
    assert cache_key is not None
    names = {id(bind): f"{prefix}{i}" for i, bind in enumerate(cache_key.bindparams)}

    def replace(element: ExternallyTraversible, **kw: Any) -> ExternallyTraversible | None:
        if isinstance(element, BindParameter) and id(element) in names:
            return bindparam(names[id(element)], type_=element.type)
        return None  # not a value: traversed further

    no_options: dict[str, Any] = {}
    return [replacement_traverse(clause, no_options, replace) for clause in where]


def _ranked_statement(
    parts: Sequence[tuple[KindSpec, list[ColumnElement[bool]], Sequence[Pass]]], with_embedding: bool
) -> Select[Any] | CompoundSelect[Any]:
    """The ranking statement of every part (a kind: its spec, WHERE and passes), each part's rows
    labelled with its index (column ``part``, :func:`common.repository.union_of_parts`) and in its
    order; its values as parameters: ``limit``, and per part ``j`` the useful lexemes quoted and
    their share of the query's weight (``p{j}lexemes``, ``p{j}shares``), ``p{j}q{i}`` and
    ``p{j}cap{i}`` per pass, ``p{j}w{i}`` for the WHERE (:func:`_named`)."""
    return union_of_parts(
        [_ranked_part(f"p{j}", spec, where, passes, with_embedding) for j, (spec, where, passes) in enumerate(parts)]
    )


def _ranked_part(
    prefix: str, spec: KindSpec, where: list[ColumnElement[bool]], passes: Sequence[Pass], with_embedding: bool
) -> Select[Any]:
    """One kind's part of :func:`_ranked_statement`, its parameters and CTEs named by ``prefix``.

    Each pass ranks at most its cap of rows matching its tsquery by coverage, then
    ``ts_rank_cd``, then newest first, and keeps its best ``limit``; a pass runs only while the
    passes before it found fewer than ``limit`` distinct rows. A row keeps its first pass's place;
    the winners are ordered by score, then pass, then place in the pass (:func:`_best_first`).

    One statement, not one per pass: each pass was a round trip of its own, with the winners'
    content and vector read per pass (a row found by two passes twice) and the statement
    built and compiled again per pass. The candidates carry only their id and tsvector
    through the ranking; the content and the vector are read for the ``limit`` winners alone
    (carrying them for 1,000 candidates of a common word was most of the statement's time).
    A row's coverage sums the shares of the useful lexemes it holds."""
    model = spec.model
    limit = bindparam("limit", type_=Integer)
    given = (
        func.unnest(bindparam(f"{prefix}lexemes", type_=ARRAY(Text)), bindparam(f"{prefix}shares", type_=ARRAY(Float)))
        .table_valued("lexeme", "share")
        .render_derived(name=f"{prefix}given")
    )
    terms = (
        select(cast(given.c.lexeme, TSQUERY).label("q"), given.c.share)
        .cte(f"{prefix}terms")
        .prefix_with("MATERIALIZED")
    )
    ranked: list[Any] = []
    for i, step in enumerate(passes):
        text_query = bindparam(f"{prefix}q{i}", type_=Text)
        tsquery = func.websearch_to_tsquery("english", text_query) if step.websearch else cast(text_query, TSQUERY)
        gate: list[ColumnElement[bool]] = []
        if ranked:  # the passes so far found fewer than ``limit`` distinct rows
            found = union(*(select(p.c.id) for p in ranked)).subquery()
            gate.append(select(func.count()).select_from(found).scalar_subquery() < limit)
        matches = (
            select(
                model.id.label("id"),
                model.owner_id.label("owner_id"),
                model.search_tsv.label("tsv"),
                spec.created.label("created"),
            )
            .where(*where, model.search_tsv.op("@@")(tsquery), *gate)
            .limit(bindparam(f"{prefix}cap{i}", type_=Integer))
            .subquery()
        )
        coverage = func.coalesce(
            select(func.sum(terms.c.share)).where(matches.c.tsv.op("@@")(terms.c.q)).scalar_subquery(), 0.0
        ).label("coverage")
        covered = (
            select(matches.c.id, matches.c.owner_id, matches.c.tsv, matches.c.created, coverage)
            .cte(f"{prefix}covered{i}")
            .prefix_with("MATERIALIZED")
        )
        # Only a row whose coverage reaches the pass's ``limit``-th best can be among its best
        # ``limit``: ts_rank_cd runs for those alone (for all 1,000 candidates of an any-word pass
        # over common words it was most of the statement, ~4 of 11 ms at 100k rows).
        best = select(covered.c.coverage).order_by(covered.c.coverage.desc()).limit(limit).subquery()
        reach = select(func.min(best.c.coverage)).scalar_subquery()
        rank = func.ts_rank_cd(covered.c.tsv, tsquery, 32).label("rank")
        ranked.append(
            select(
                covered.c.id, covered.c.owner_id, covered.c.created, covered.c.coverage, rank, literal(i).label("step")
            )
            .where(covered.c.coverage >= reach)
            .order_by(covered.c.coverage.desc(), rank.desc(), covered.c.created.desc(), covered.c.id.desc())
            .limit(limit)
            .cte(f"{prefix}pass{i}")
        )
    every = union_all(*(select(p) for p in ranked)).subquery()
    first = select(every).ext(distinct_on(every.c.id)).order_by(every.c.id, every.c.step).subquery()
    score = func.least(first.c.coverage, 1.0)
    top = select(first, score.label("score")).order_by(*_best_first(score, first)).limit(limit).subquery()
    return (
        select(*SearchRepository._columns(spec, with_embedding), top.c.score)
        # (owner, id): the primary key, so one index probe per winner, and never past the scope
        .join_from(model, top, (model.owner_id == top.c.owner_id) & (model.id == top.c.id))
        .order_by(*_best_first(top.c.score, top))
        .limit(limit)  # (at most ``limit`` anyway) the part's ORDER BY kept inside the UNION
    )


def _best_first(score: Any, rows: Any) -> list[Any]:
    """The ranking's order over ``rows`` (the passes' winners): score, the pass that found the row,
    coverage and ``ts_rank_cd``, then the newest first: memories the words cannot tell apart come
    in the order they were written, most recent first (ids are time-ordered, models/base.new_id),
    where a random id decided before."""
    c = rows.c
    return [score.desc(), c.step, c.coverage.desc(), c.rank.desc(), c.created.desc(), c.id.desc()]


def _scope(
    kind: Kind, owner_ids: Sequence[uuid.UUID], filters: SearchFilters, include_history: bool, df_sample: int
) -> KeywordScope:
    owners = OwnerIdList.of(owner_ids)
    key = (kind, owners.text, filters.model_dump_json(), include_history, df_sample)
    return KeywordScope(key, kind, owners, filters, include_history, df_sample)


def _known_large(key: Hashable) -> bool:
    """The scope was counted large a short while ago, or its vocabulary is kept (read while it was
    large, fresh or not): its next search needs no count of its own (:meth:`SearchRepository.keyword`)."""
    return bool(LARGE_SCOPES.get(key)) or LARGE_SCOPE_VOCABULARY.get(key) is not None


def _remember(scope: KeywordScope, counts: dict[str, int]) -> Vocabulary:
    """``counts`` as ``scope``'s vocabulary, kept unless a refresh found the scope small meanwhile."""
    vocabulary = Vocabulary(counts, LARGE_SCOPE_VOCABULARY.clock())
    if LARGE_SCOPES.get(scope.key) is not False:
        LARGE_SCOPE_VOCABULARY.put(scope.key, vocabulary)
    return vocabulary


def _positive(query: str) -> str:
    """The query's words that are evidence of a match: words after a leading "-" are excluded by
    the query, so they are none (the text of parameter :data:`_POSITIVE`)."""
    return re.sub(r"(^|\s)-\S+", " ", query)


def _lexeme_columns() -> tuple[Any, Any]:
    """The lexemes of the text :data:`_POSITIVE` (:meth:`SearchRepository.query_lexemes`) and the
    setting that makes the rest of the transaction plan each statement for its parameters, as two
    columns."""
    lexemes = func.tsvector_to_array(func.to_tsvector("english", bindparam(_POSITIVE, type_=Text)))
    return lexemes, func.set_config("plan_cache_mode", "force_custom_plan", True)


def _counted_statement(specs: Sequence[KindSpec], wheres: Sequence[list[ColumnElement[bool]]]) -> Select[Any]:
    """:meth:`SearchRepository._lexemes_counted`'s statement with its values as parameters:
    :data:`_POSITIVE`, ``sample`` and each part's WHERE's ``p{j}w0``, ``p{j}w1``… (:func:`_named`).
    One row: the lexemes, the planning setting, then each part's rows read and its frequencies."""
    lexemes, custom = _lexeme_columns()
    each = func.unnest(lexemes).table_valued(column("lexeme", Text), with_ordinality="i").render_derived(name="each")
    # as _quoted() writes a lexeme
    quoted = func.concat("'", func.replace(func.replace(each.c.lexeme, "\\", "\\\\"), "'", "''"), "'")
    # Each lexeme's tsquery built once, for every part: written inside the count, PostgreSQL quoted
    # and parsed it again for every row of the sample (1.7 of a small kind's 2.2 ms at 1,000 rows
    # and 5 lexemes; a large scope's first count parsed it 10,000 times a lexeme).
    queries = select(each.c.i, cast(quoted, TSQUERY).label("q")).cte("queries").prefix_with("MATERIALIZED")
    columns: list[Any] = [lexemes, custom]
    size = bindparam("sample", type_=Integer)
    for j, (spec, where) in enumerate(zip(specs, wheres, strict=True)):
        sample = select(spec.model.search_tsv.label("tsv")).where(*where).limit(size).cte(f"p{j}sample")
        holding = select(func.count()).select_from(sample).where(sample.c.tsv.op("@@")(queries.c.q)).scalar_subquery()
        frequencies = (
            select(func.array_agg(aggregate_order_by(holding, queries.c.i))).select_from(queries).scalar_subquery()
        )
        columns += [select(func.count()).select_from(sample).scalar_subquery(), frequencies]
    return select(*columns)


_POSITIVE = "positive"
_LEXEMES = select(*_lexeme_columns())  # the query's lexemes alone (query_lexemes), built once
# The lexemes-and-frequencies statement per (kinds, shape of each kind's WHERE), at most _MAX_SHAPES kept.
_COUNTED: dict[Hashable, Select[Any]] = {}


def has_operators(query: str) -> bool:
    """True when the query uses web-search syntax (quotes, a leading ``-``, ``or``): then it means
    exactly what it says. A hyphen inside a token (``ORD-20931``) is not an operator."""
    return '"' in query or re.search(r"(^|\s)-\S", query) is not None or " or " in f" {query.lower()} "


def _tsquery_text(lexemes: Sequence[str], op: str) -> str:
    """Already-stemmed lexemes joined by ``op``, each quoted so punctuation stays inside: a
    tsquery's text, cast to ``tsquery`` (not ``to_tsquery()``: stemming a stem again would turn
    'databas' into something no document contains)."""
    return op.join(_quoted(lex) for lex in lexemes)


def _quoted(lexeme: str) -> str:
    """A lexeme as a tsquery operand: quoted, so punctuation stays inside it."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


__all__ = ["KIND_SPECS", "KindSpec", "Row", "SearchRepository", "has_operators"]
