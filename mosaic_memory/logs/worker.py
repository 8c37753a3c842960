"""The background embedder: fills in vectors of log events that a write left pending.

It runs as one asyncio task in each service process (started by the app's lifespan). Each
batch is its own transaction whose rows are claimed with ``FOR UPDATE SKIP LOCKED``, so
several replicas share the backlog without embedding a row twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mosaic_memory.db import unit_of_work
from mosaic_memory.logs.service import LogService

__all__ = ["LogEmbeddingWorker"]

log = logging.getLogger("mosaic_memory.logs")


class LogEmbeddingWorker:
    """Drains pending log embeddings when woken, and at least every ``logs.embed_max_delay_s``.

    Guarantees: an event written through this process is picked up as soon as its write
    commits (rows of another replica within ``embed_max_delay_s``), then embedded at the
    model's pace; a failing provider or database is retried after a back-off, never fatal.
    """

    def __init__(
        self,
        service: LogService,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        owner_ids: Sequence[uuid.UUID] | None = None,
        batch_size: int | None = None,
    ) -> None:
        """``owner_ids`` limits the worker to those owners' rows (default: every owner's)."""
        self.service = service
        self.sessionmaker = sessionmaker
        self.owner_ids = list(owner_ids) if owner_ids is not None else None
        self.batch_size = batch_size or service.settings.logs.embed_batch_size
        self._task: asyncio.Task[None] | None = None
        self.embedded_total = 0

    async def run_once(self) -> int:
        """Embed one batch in its own transaction; returns how many events it embedded (across
        owners: in the connecting role, outside row-level security)."""
        async with unit_of_work(self.sessionmaker) as session:
            return await self.service.embed_pending(session, self.batch_size, owner_ids=self.owner_ids)

    async def drain(self) -> int:
        """Embed batches until nothing is pending; returns how many events it embedded."""
        total = 0
        while n := await self.run_once():
            total += n
            self.embedded_total += n  # per batch: a stop between batches loses no count
        return total

    async def run(self) -> None:
        cfg = self.service.settings.logs
        event = self.service.pending_event
        failures = 0
        while True:
            event.clear()  # cleared before draining, so a write committed meanwhile wakes us again
            try:
                await self.drain()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the provider or the database: log, back off, retry
                failures += 1
                log.warning("log embedder failed (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(min(60.0, cfg.embed_max_delay_s * failures))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=cfg.embed_max_delay_s)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="mosaic-log-embedder")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
