"""Building the job registry and runner from the application container."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from embeddings import Embedder
from jobs.backup import backup
from jobs.federation import renew_certificate
from jobs.maintenance import expire_and_decay, tier_logs
from jobs.reembed import reembed
from jobs.registry import JobRegistry, JobSpec
from jobs.runner import JobRunner
from jobs.summarize import rollback_summarize, summarize
from mosaic_memory.config import Settings
from mosaic_memory.federation.identity import FederationPaths
from mosaic_memory.insights.service import InsightService
from mosaic_memory.observability.metrics import Metrics

__all__ = ["JobDeps", "build_registry", "build_runner"]


class JobDeps(Protocol):
    """What the jobs use, and nothing more: the runner needs the engine (its advisory lock), the
    jobs the settings, the sessionmaker, the embedder and the insight service (summaries merge
    into insights through it), and the metrics count runs. The application container satisfies
    it; so does anything with these six attributes, so jobs never depend on the container itself."""

    @property
    def settings(self) -> Settings: ...
    @property
    def engine(self) -> AsyncEngine: ...
    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]: ...
    @property
    def embedder(self) -> Embedder: ...
    @property
    def insights(self) -> InsightService: ...
    @property
    def metrics(self) -> Metrics: ...


def build_registry(settings: Settings) -> JobRegistry:
    """The built-in jobs with the triggers configured in ``settings.jobs``."""
    cfg = settings.jobs
    registry = JobRegistry()
    registry.register(
        JobSpec(
            "summarize",
            "summarize unsummarized agent logs into insights (per owner and session, or day)",
            summarize,
            trigger=cfg.summarize_cron,
            rollback=rollback_summarize,
        )
    )
    registry.register(
        JobSpec(
            "expire-decay",
            "expire insights past expires_at; decay the importance of insights nobody recalls",
            expire_and_decay,
            trigger=cfg.maintenance_cron,
        )
    )
    registry.register(
        JobSpec(
            "log-tiers",
            "move old warm logs to cold; delete cold logs past policy.logs.retention_days when set",
            tier_logs,
            trigger=cfg.log_tiers_cron,
        )
    )
    registry.register(
        JobSpec(
            "reembed",
            "re-embed every row with the configured model in batches, then switch atomically",
            reembed,
            trigger=cfg.reembed_cron,
        )
    )
    registry.register(
        JobSpec(
            "backup",
            "pg_dump the database into backup.dir, keeping the newest backup.keep (off unless backup.cron is set)",
            backup,
            trigger=settings.backup.cron,
        )
    )
    # Scheduled only where the CA lives; elsewhere a certificate comes from the CA's instance.
    ca_here = FederationPaths.for_data_dir(settings.data_dir).ca_key.exists()
    registry.register(
        JobSpec(
            "federation-renew",
            "renew this instance's federation certificate before it expires (when the CA is here)",
            renew_certificate,
            trigger=settings.federation.renew_cron if ca_here else None,
        )
    )
    return registry


def build_runner(deps: JobDeps, registry: JobRegistry | None = None) -> JobRunner:
    """A runner over ``deps`` (usually the application container) with the built-in jobs."""
    return JobRunner(
        registry=registry or build_registry(deps.settings),
        settings=deps.settings,
        engine=deps.engine,
        sessionmaker=deps.sessionmaker,
        embedder=deps.embedder,
        insights=deps.insights,
        metrics=deps.metrics,
    )
