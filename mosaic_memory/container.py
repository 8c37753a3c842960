"""The application container: what one process builds at start (settings, database, embedder, services).

Every composition root builds from here (the HTTP app, the CLI, jobs, the benchmarks); it imports
no transport library.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from embeddings import Embedder, get_embedder
from embeddings.tokens import BundledTokenCounter
from mosaic_memory.common import repository as common_repository
from mosaic_memory.common.ratelimit import AccessGuard
from mosaic_memory.common.vectors import iterative_hnsw_by_default
from mosaic_memory.config import Settings
from mosaic_memory.context.service import ContextService
from mosaic_memory.db import (
    TEXT_MATCH,
    RowSecurity,
    create_engine_for,
    create_sessionmaker,
    current_revision,
    head_revision,
    row_security,
    run_migrations,
    text_match_indexable,
)
from mosaic_memory.federation.service import FederationService
from mosaic_memory.insights.access import AccessRecorder
from mosaic_memory.insights.service import InsightService
from mosaic_memory.logs.service import LogService
from mosaic_memory.logs.worker import LogEmbeddingWorker
from mosaic_memory.oauth.service import OAuthService
from mosaic_memory.observability import Metrics, ObservedEmbedder, Tracing
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.owners.service import OwnerService, key_prefix
from mosaic_memory.portability.service import PortabilityService
from mosaic_memory.preferences.service import PreferenceService
from mosaic_memory.reembed.service import check_embedding_space as reembed_check
from mosaic_memory.search.service import SearchService
from mosaic_memory.search.vocabulary import VocabularyRefresher
from mosaic_memory.skills.service import SkillService
from mosaic_memory.tiers import Database, open_database

if TYPE_CHECKING:
    # Typing only: the container must not load the jobs package (only composition roots do).
    from jobs.ledger.service import JobControl

log = logging.getLogger("mosaic_memory")


@dataclass
class AppState:
    settings: Settings
    database: Database
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    embedder: Embedder
    owners: OwnerService
    insights: InsightService
    search: SearchService
    logs: LogService
    preferences: PreferenceService
    skills: SkillService
    federation: FederationService
    portability: PortabilityService
    context: ContextService
    oauth: OAuthService
    log_embedder: LogEmbeddingWorker | None = None
    access_recorder: AccessRecorder | None = None
    metrics: Metrics = field(default_factory=Metrics)
    tracing: Tracing = field(default_factory=Tracing)
    # search.replica_url: read-only sessions for searches; None: searches read the primary
    replica_engine: AsyncEngine | None = None
    replica_sessionmaker: async_sessionmaker[AsyncSession] | None = None
    guard: AccessGuard = field(default_factory=AccessGuard)
    # Whether the database's row-level security stands under the owner filter (db.row_security).
    row_security: RowSecurity = field(default_factory=lambda: RowSecurity(False, "not checked", 0))

    async def authenticate(
        self, session: AsyncSession, token: str, audiences: Collection[str], client: str
    ) -> Principal:
        """The principal of a bearer credential, under the limits (``common/ratelimit.py``): the
        one call both HTTP edges (REST and MCP) make. Raises AuthenticationFailed, RateLimited."""
        limits = self.settings.limits
        principal = await self.guard.authenticate(
            limits, client, key_prefix(token), lambda: self.oauth.authenticate(session, token, audiences)
        )
        self.guard.admit(limits, principal.key_id or principal.user.id)
        return principal

    def start_background(self) -> None:
        """Start this process's background tasks (the app's lifespan calls it; tests need not)."""
        if self.settings.logs.background_embedder and self.log_embedder is None:
            self.log_embedder = LogEmbeddingWorker(self.logs, self.sessionmaker)
            self.log_embedder.start()
        if self.access_recorder is not None:
            self.access_recorder.start()

    jobs: JobControl | None = None  # set by the composition root (api/app.py, the CLI)

    async def aclose(self) -> None:
        if self.search.vocabulary is not None:
            await self.search.vocabulary.stop()
        if self.access_recorder is not None:
            await self.access_recorder.stop()
        if self.log_embedder is not None:
            await self.log_embedder.stop()
            self.log_embedder = None
        if self.search.reranker is not None:
            await self.search.reranker.aclose()
        await self.federation.aclose()
        await self.embedder.aclose()
        if self.replica_engine is not None:
            await self.replica_engine.dispose()
        await self.engine.dispose()
        self.database.close()
        self.tracing.shutdown()

    async def refresh_gauges(self) -> None:
        """Read the gauges that need the database (``/metrics`` calls it before each scrape)."""
        async with self.sessionmaker() as session:
            self.metrics.logs_pending.set(await self.logs.pending_total(session))


def build_embedder(settings: Settings) -> Embedder:
    return get_embedder(settings.embeddings.provider, **settings.embeddings.provider_options())


async def check_embedding_space(
    sessionmaker: async_sessionmaker[AsyncSession], embedder: Embedder, *, record: bool = True
) -> None:
    """Refuse to run against vectors of another model or dimension; record ours on first start.

    The rule is :func:`mosaic_memory.reembed.service.check_embedding_space`; this runs it in a
    transaction of its own. Raises EmbeddingMismatch.
    """
    async with sessionmaker() as session, session.begin():
        await reembed_check(session, embedder, record=record)


async def build_state(
    settings: Settings,
    *,
    check_embeddings: bool = True,
    tracing: Tracing | None = None,
    database: Database | None = None,
) -> AppState:
    """Open the database (starting the embedded one for the local tier), migrate, load the model.

    ``check_embeddings=False`` skips the model check, for ``mosaic-memory embeddings reembed``.
    ``tracing`` defaults to what the ``OTEL_*`` environment asks (off unless an endpoint is set).
    ``database``, already opened (``serve`` probed it), becomes the state's: closed with it, or here
    when the build fails."""
    from mosaic_memory import __version__

    tracing = tracing if tracing is not None else Tracing.from_environment()
    metrics = Metrics()
    database = database if database is not None else open_database(settings)
    engine = None
    try:
        embedder: Embedder = ObservedEmbedder(
            build_embedder(settings), metrics, tracing, timeout=settings.limits.embed_timeout_seconds
        )
        await embedder.warm_up()
        if settings.auto_migrate:
            await run_migrations(database.url, dimensions=embedder.dimensions)
        engine = create_engine_for(
            database.url, pool_size=settings.db_pool_size, connect_timeout=settings.db_connect_timeout
        )
        iterative_hnsw_by_default(engine, settings.search.hnsw_ef_search)
        tracing.instrument_engine(engine)
        metrics.watch_pool(engine.sync_engine.pool)
        metrics.info.labels(__version__, database.tier).set(1)
        revision = await current_revision(database.url)
        if revision != head_revision():
            from mosaic_memory.errors import StorageTierError

            raise StorageTierError(
                f"the database schema is at revision {revision}, not {head_revision()}: run "
                f"'mosaic-memory db upgrade' (or start without MOSAIC_AUTO_MIGRATE=false)"
            )
        # Marked before the wall is read, so its description says whether keyword matches keep
        # their index (db.TEXT_MATCH); only a role that may build the wall may mark it.
        text_index = await text_match_indexable(engine)
        wall = await row_security(engine)
        if common_repository.OWNER_FILTER_DISABLED and not wall.up:
            from mosaic_memory.errors import StorageTierError

            raise StorageTierError(
                f"MOSAIC_TEST_DISABLE_OWNER_FILTER=1 is for test builds only, and {wall.why}: unset it"
            )
        if wall.up and not text_index:
            log.warning(
                "keyword search under row-level security reads every row of the caller's scope: "
                "this role may not mark %s LEAKPROOF (a DBA can: docs/security.md)",
                TEXT_MATCH,
            )
        sessionmaker = create_sessionmaker(engine, row_security=wall.up)
        if check_embeddings:
            await check_embedding_space(sessionmaker, embedder)
    except BaseException:
        if engine is not None:
            await engine.dispose()
        database.close()
        tracing.shutdown()
        raise
    owners = OwnerService()
    reranker = None
    if settings.search.reranker:
        from embeddings.rerank import get_reranker

        reranker = get_reranker(settings.search.reranker, **settings.search.reranker_options)
    access = AccessRecorder(
        sessionmaker, flush_ms=settings.search.access_flush_ms, flush_max=settings.search.access_flush_max
    )
    vocabulary = VocabularyRefresher(sessionmaker)
    search = SearchService(
        embedder=embedder,
        settings=settings,
        access=access,
        reranker=reranker,
        metrics=metrics,
        vocabulary=vocabulary,
    )
    replica_engine = None
    if settings.search.replica_url is not None:
        # Lazy: nothing connects until the first search, so a replica that is down fails searches
        # (503, like the primary would) without stopping the service from starting.
        replica_engine = create_engine_for(
            settings.search.replica_url.get_secret_value(),
            pool_size=settings.db_pool_size,
            connect_timeout=settings.db_connect_timeout,
        )
        iterative_hnsw_by_default(replica_engine, settings.search.hnsw_ef_search)
    insights = InsightService(embedder=embedder, settings=settings)
    logs = LogService(embedder=embedder, settings=settings)
    preferences = PreferenceService(embedder=embedder, settings=settings)
    skills = SkillService(embedder=embedder, settings=settings)
    context = ContextService(
        settings=settings,
        search=search,
        preferences=preferences,
        insights=insights,
        skills=skills,
        tokens=BundledTokenCounter(),
    )
    return AppState(
        settings=settings,
        database=database,
        engine=engine,
        sessionmaker=sessionmaker,
        replica_engine=replica_engine,
        # A replica is a copy of this database: its roles and policies are the same.
        replica_sessionmaker=(
            create_sessionmaker(replica_engine, row_security=wall.up) if replica_engine is not None else None
        ),
        row_security=wall,
        embedder=embedder,
        owners=owners,
        insights=insights,
        search=search,
        logs=logs,
        preferences=preferences,
        skills=skills,
        access_recorder=access,
        metrics=metrics,
        tracing=tracing,
        federation=FederationService(settings=settings, search=search),
        context=context,
        oauth=OAuthService(settings=settings, owners=owners),
        portability=PortabilityService(
            embedder=embedder,
            settings=settings,
            insights=insights,
            preferences=preferences,
            skills=skills,
            logs=logs,
            owners=owners,
        ),
    )


async def bootstrap_admin(state: AppState) -> str | None:
    """Create the admin key on first start (returned once to be printed) or register MOSAIC_ADMIN_KEY."""
    configured = state.settings.admin_key.get_secret_value() if state.settings.admin_key else None
    async with state.sessionmaker() as session, session.begin():
        return await state.owners.ensure_admin(session, configured)


__all__ = ["AppState", "bootstrap_admin", "build_embedder", "build_state", "check_embedding_space"]
