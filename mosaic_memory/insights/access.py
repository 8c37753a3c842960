"""Recalls of insights counted off the search path: recorded in memory, written in batches.

A search only appends its insight hits here (no I/O); a background task writes the summed counts
every ``search.access_flush_ms`` or as soon as ``search.access_flush_max`` hits are pending, in a
transaction of its own, and ``stop()`` writes what is left. Losing the last batch on a crash (at
most ``access_flush_ms`` of recalls) is accepted: access counts feed decay, nothing depends on
them exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mosaic_memory.db import unit_of_work
from mosaic_memory.insights.repository import InsightRepository

__all__ = ["AccessRecorder"]

log = logging.getLogger("mosaic_memory.search")


class AccessRecorder:
    """Guarantees: each recorded hit adds 1 to ``access_count`` once flushed, and
    ``last_accessed_at`` becomes the latest recall time; a failed flush keeps the counts for the next."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, flush_ms: int = 500, flush_max: int = 1000
    ) -> None:
        self.sessionmaker = sessionmaker
        self.flush_ms = flush_ms
        self.flush_max = flush_max
        self._pending: dict[tuple[uuid.UUID, uuid.UUID], tuple[int, datetime]] = {}
        self._hits = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def record(self, keys: Sequence[tuple[Any, Any]], when: datetime) -> None:
        for key in keys:
            count, last = self._pending.get(key, (0, when))
            self._pending[key] = (count + 1, max(last, when))
        self._hits += len(keys)
        if self._hits >= self.flush_max:
            self._wake.set()

    async def flush(self) -> int:
        """Write every pending count now; returns how many insights were updated (of many owners:
        in the connecting role, outside row-level security)."""
        async with self._lock:
            batch, self._pending, self._hits = self._pending, {}, 0
            if not batch:
                return 0
            try:
                async with unit_of_work(self.sessionmaker) as session:
                    await InsightRepository(session).add_access(batch)
            except BaseException:
                for key, (count, when) in batch.items():  # keep them for the next flush
                    old, last = self._pending.get(key, (0, when))
                    self._pending[key] = (old + count, max(last, when))
                raise
            return len(batch)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_ms / 1000)
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database: log and retry at the next tick
                log.warning("access counts not written (%s: %s); retrying", type(exc).__name__, exc)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mosaic-access-recorder")

    async def stop(self) -> None:
        """Stop the task and write what is pending."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception as exc:
            log.warning("access counts lost at shutdown (%s: %s)", type(exc).__name__, exc)
