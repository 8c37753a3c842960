"""Jobs under stable ids: what runs, when, and how a run is undone.

A job is a plain async function of a :class:`JobContext`; the context carries the injected time
(``ctx.now``), so tests and the CLI call the same function the scheduler does.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from embeddings import Embedder
from jobs.ledger.repository import JobRunRepository
from jobs.ledger.service import ProgressCallback
from mosaic_memory.config import Settings
from mosaic_memory.insights.service import InsightService

__all__ = ["JobContext", "JobFunction", "JobRegistry", "JobSpec", "RollbackFunction", "RunReport"]


@dataclass
class RunReport:
    """Counts, errors and progress of one run; :meth:`progress` writes them in a short transaction
    of its own, so the ledger shows a running job's state."""

    sessionmaker: async_sessionmaker[AsyncSession]
    run_id: uuid.UUID
    on_progress: ProgressCallback | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    errors: list[Any] = field(default_factory=list)
    fraction: float = 0.0

    def add(self, **counts: int) -> None:
        for name, value in counts.items():
            self.counts[name] = int(self.counts.get(name, 0)) + value

    def error(self, entry: dict[str, Any]) -> None:
        self.errors.append(entry)

    async def progress(self, done: int, total: int, message: str = "") -> None:
        self.fraction = 1.0 if total <= 0 else min(1.0, done / total)
        async with self.sessionmaker() as session, session.begin():
            await JobRunRepository(session).set_progress(
                self.run_id, progress=self.fraction, counts=self.counts, errors=self.errors
            )
        if self.on_progress is not None:
            self.on_progress(self.fraction, message or f"{done}/{total}")

    async def set_changes(self, key: str, value: Any) -> None:
        async with self.sessionmaker() as session, session.begin():
            await JobRunRepository(session).set_changes(self.run_id, key, value)


@dataclass
class JobContext:
    settings: Settings
    # Jobs work over every owner: their sessions keep the connecting role, outside row-level
    # security (docs/security.md); the owner filter of each repository call still applies.
    sessionmaker: async_sessionmaker[AsyncSession]
    engine: AsyncEngine
    embedder: Embedder
    insights: InsightService
    run_id: uuid.UUID
    now: datetime
    dry_run: bool
    report: RunReport


JobFunction = Callable[[JobContext], Awaitable[str | None]]
"""Runs the job; returns a one-line message for the ledger (or None). Raises to fail the run."""

RollbackFunction = Callable[[JobContext, AsyncSession, dict[str, Any]], Awaitable[dict[str, int]]]
"""Undoes a finished run inside the given transaction, from its recorded ``changes``."""


@dataclass(frozen=True)
class JobSpec:
    id: str
    description: str
    function: JobFunction
    trigger: str | None = None  # a crontab expression in jobs.timezone; None: on demand only
    rollback: RollbackFunction | None = None


class JobRegistry:
    """Jobs by id. Registering an id again replaces the earlier spec."""

    def __init__(self) -> None:
        self._specs: dict[str, JobSpec] = {}

    def register(self, spec: JobSpec) -> None:
        self._specs[spec.id] = spec

    def get(self, job_id: str) -> JobSpec | None:
        return self._specs.get(job_id)

    def ids(self) -> list[str]:
        return list(self._specs)

    def specs(self) -> list[JobSpec]:
        return list(self._specs.values())
