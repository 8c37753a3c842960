"""Stale keyword vocabularies of large scopes, read again off the search path.

A large scope's vocabulary (``SearchRepository._vocabulary``: how many of its sample rows hold
each lexeme) is read once and kept; past ``VOCABULARY_FRESH`` a search still uses it and hands its
scope here, and a task reads it again in a transaction of its own, under the searching principal's
scope. Reading it on the search path cost the search that found it expired 35-85 ms at 100k rows,
once a minute: the longest search of the minute. One read per scope at a time; a read that fails
is logged and tried again by the next search that finds the vocabulary stale.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mosaic_memory.models import utc_now
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.search.repository import KeywordScope, SearchRepository

__all__ = ["VocabularyRefresher"]

log = logging.getLogger("mosaic_memory.search")


class VocabularyRefresher:
    """Guarantees: each scope handed to :meth:`refresh` has its vocabulary read again soon, at most
    one read per scope at a time, never inside the search that handed it; :meth:`stop` cancels
    the reads under way."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self._reading: dict[Hashable, asyncio.Task[None]] = {}

    def refresh(self, scopes: Sequence[KeywordScope], principal: Principal) -> None:
        """Start reading each scope's vocabulary again (on the running loop), unless one is under way."""
        for scope in scopes:
            if scope.key not in self._reading:
                task = asyncio.get_running_loop().create_task(self._read(scope, principal))
                self._reading[scope.key] = task
                task.add_done_callback(functools.partial(self._done, scope.key))

    def _done(self, key: Hashable, _: asyncio.Task[None]) -> None:
        self._reading.pop(key, None)

    async def _read(self, scope: KeywordScope, principal: Principal) -> None:
        try:
            async with self.sessionmaker() as session:
                await OwnerService.enter_scope(session, principal)
                async with session.begin():
                    await SearchRepository(session).read_vocabulary(scope, self.clock())
        except Exception as exc:  # the database: the next search that finds it stale asks again
            log.warning("keyword vocabulary not read again (%s: %s)", type(exc).__name__, exc)

    @property
    def pending(self) -> int:
        """How many reads are under way."""
        return len(self._reading)

    async def wait(self) -> None:
        """Until the reads under way are done (tests; a search never waits for them)."""
        await asyncio.gather(*self._reading.values())

    async def stop(self) -> None:
        for task in list(self._reading.values()):
            task.cancel()
        await asyncio.gather(*self._reading.values(), return_exceptions=True)
