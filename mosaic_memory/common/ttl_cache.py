"""A small process-local cache whose entries expire: for facts about large scopes that change slowly.

Search uses it for what it would otherwise count on every call (a scope's vector plan, a large
scope's keyword document frequencies): an agent asks many questions of the same memory, and a scope
of tens of thousands of rows does not change its shape in seconds. What a fresh row would change (a
small scope's frequencies) is never cached; a small scope's plan is remembered as an exact scan,
which reads whatever rows the scope holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TtlCache"]

V = TypeVar("V")


class TtlCache(Generic[V]):
    """``get`` answers a value ``put`` less than ``seconds`` ago, else None. At most ``max_entries``
    are kept (the whole cache is dropped when full: entries are cheap to recompute)."""

    def __init__(
        self, seconds: float, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: Hashable, value: V, *, seconds: float | None = None) -> None:
        """Keep ``value`` for the cache's ``seconds``, or for ``seconds`` given here."""
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (self.clock() + (self.seconds if seconds is None else seconds), value)

    def drop(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
