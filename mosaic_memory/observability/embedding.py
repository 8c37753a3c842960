"""An embedder that reports what the model does: latency and batch sizes, spans when tracing is on.

It wraps any provider of the ``Embedder`` protocol, so ``embeddings/`` stays a leaf library that
knows nothing of metrics.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Any

from embeddings import Embedder
from embeddings.base import FloatArray
from mosaic_memory.errors import EmbeddingUnavailable
from mosaic_memory.observability.metrics import Metrics
from mosaic_memory.observability.tracing import Tracing

__all__ = ["TEXTS_PER_TIMEOUT", "ObservedEmbedder"]

TEXTS_PER_TIMEOUT = 64


class ObservedEmbedder:
    """The wrapped embedder's vectors, unchanged; each call observed under ``operation`` documents
    or query. Any other attribute is the wrapped embedder's.

    A call that takes longer than ``timeout`` seconds (``limits.embed_timeout_seconds``) for each
    started :data:`TEXTS_PER_TIMEOUT` texts raises EmbeddingUnavailable (503), so a hung provider
    cannot hold a request, or its transaction, open: the write is refused whole and the caller may
    retry. The limit grows with the batch so that a large import or job batch is not cut short."""

    def __init__(self, inner: Embedder, metrics: Metrics, tracing: Tracing, *, timeout: float | None = None) -> None:
        self.inner = inner
        self.metrics = metrics
        self.tracing = tracing
        self.timeout = timeout

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    def __getattr__(self, attr: str) -> Any:  # provider extras (batch_size, runtime, ...)
        return getattr(self.inner, attr)

    async def _observe(self, operation: str, count: int, call: Any) -> FloatArray:
        attributes = {"embedding.model": self.inner.model_id, "embedding.batch_size": count}
        started = time.perf_counter()
        with self.tracing.span(f"embed {operation}", attributes=attributes):
            try:
                limit = None if self.timeout is None else self.timeout * math.ceil(count / TEXTS_PER_TIMEOUT)
                result: FloatArray = await asyncio.wait_for(call, limit)
            except TimeoutError:
                self.metrics.embedding_errors.labels(operation).inc()
                raise EmbeddingUnavailable(
                    f"the embedding provider did not answer in {limit:g} s (the call was abandoned); retry later"
                ) from None
            except BaseException:
                self.metrics.embedding_errors.labels(operation).inc()
                raise
        self.metrics.embedding_duration.labels(operation).observe(time.perf_counter() - started)
        self.metrics.embedding_batch.labels(operation).observe(count)
        return result

    async def embed_documents(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return await self.inner.embed_documents(texts)
        return await self._observe("documents", len(texts), self.inner.embed_documents(texts))

    async def embed_query(self, text: str) -> FloatArray:
        return await self._observe("query", 1, self.inner.embed_query(text))

    async def warm_up(self) -> None:
        await self.inner.warm_up()

    async def aclose(self) -> None:
        await self.inner.aclose()
