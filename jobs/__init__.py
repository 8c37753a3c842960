"""Scheduled jobs: summarization, expiry and decay, log tiers, re-embedding.

Only composition roots (the app factory, the CLI) import this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.federation import renew_certificate
from jobs.maintenance import expire_and_decay, tier_logs
from jobs.reembed import reembed
from jobs.registry import JobContext, JobRegistry, JobSpec
from jobs.runner import SKIPPED_LOCKED, JobRunner
from jobs.summarize import rollback_summarize, summarize
from mosaic_memory.config import Settings

if TYPE_CHECKING:
    from mosaic_memory.container import AppState

__all__ = [
    "SKIPPED_LOCKED",
    "JobContext",
    "JobRegistry",
    "JobRunner",
    "JobSpec",
    "build_registry",
    "build_runner",
]


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
    from mosaic_memory.federation.identity import FederationPaths

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


def build_runner(state: AppState, registry: JobRegistry | None = None) -> JobRunner:
    return JobRunner(
        registry=registry or build_registry(state.settings),
        settings=state.settings,
        engine=state.engine,
        sessionmaker=state.sessionmaker,
        embedder=state.embedder,
        insights=state.insights,
    )
