"""Rerankers: score (query, text) pairs jointly, behind one small protocol and a registry.

No PyPI package here ships a cross-encoder's weights for offline use (the sentence-transformers
``CrossEncoder`` downloads them from a hub), so the built-in provider talks to a rerank server:
``http-rerank`` speaks TEI's ``POST /rerank`` (``{"query", "texts"}`` → ``[{"index", "score"}]``)
or the Cohere/Jina style (``{"model", "query", "documents"}`` → ``{"results": [{"index",
"relevance_score"}]}``). Plugins declare an entry point in the group "mosaic_memory.rerankers".

    reranker = get_reranker("http-rerank", base_url="http://localhost:8080")
    scores = await reranker.rerank("what colour scheme?", ["dark themes", "cats"])
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import httpx

from embeddings._shared import require_positive
from embeddings.base import EmbeddingConfigError, EmbeddingProviderUnavailable, UnknownProviderError

__all__ = ["RERANKER_ENTRY_POINT_GROUP", "HttpReranker", "Reranker", "available_rerankers", "get_reranker"]

RERANKER_ENTRY_POINT_GROUP = "mosaic_memory.rerankers"


@runtime_checkable
class Reranker(Protocol):
    """Relevance of each text to the query, in [0, 1], in the order of ``texts``."""

    @property
    def name(self) -> str: ...

    async def rerank(self, query: str, texts: Sequence[str]) -> list[float]: ...

    async def aclose(self) -> None: ...


class HttpReranker:
    """A TEI- or Cohere-style ``/rerank`` endpoint; ``base_url`` like "http://host:8080" (TEI) or
    "https://host/v1" (Cohere style: ``protocol="cohere"``, and ``model``).

    Scores outside [0, 1] (raw logits) are mapped through a sigmoid. Raises
    EmbeddingProviderUnavailable when the server is unreachable, times out, refuses the request
    or replies with something that is not one score per text; messages never contain the key.
    Raises EmbeddingConfigError for a bad URL or option.
    """

    name = "http-rerank"

    def __init__(
        self,
        base_url: str,
        protocol: Literal["tei", "cohere"] = "tei",
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        try:
            parts = urlsplit(base_url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:
            valid = False
        if not valid:
            raise EmbeddingConfigError("base_url must be an http(s) URL")
        if protocol not in ("tei", "cohere"):
            raise EmbeddingConfigError(f"protocol must be 'tei' or 'cohere', got {protocol!r}")
        require_positive("timeout", timeout)
        self.protocol = protocol
        self.model = model
        self._url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/rerank", query="", fragment=""))
        host = parts.hostname or ""
        self._public = f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path.rstrip('/')}/rerank"
        self._api_key = api_key or None
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        if self.protocol == "tei":
            body: dict[str, Any] = {"query": query, "texts": list(texts), "raw_scores": False}
        else:
            body = {"query": query, "documents": list(texts), "top_n": len(texts)}
            if self.model:
                body["model"] = self.model
        try:
            response = await self._http().post(self._url, json=body)
        except httpx.TimeoutException:
            raise self._unavailable(f"timed out after {self._timeout:g} s") from None
        except httpx.TransportError as exc:
            raise self._unavailable(f"connection failed: {type(exc).__name__}") from None
        if not response.is_success:
            raise self._unavailable(f"HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError:
            raise self._unavailable("replied with invalid JSON") from None
        return self._parse(payload, len(texts))

    def _parse(self, payload: object, expected: int) -> list[float]:
        items = payload.get("results") if isinstance(payload, dict) else payload
        if not isinstance(items, list) or len(items) != expected:
            raise self._unavailable(f"malformed reply: expected {expected} scores")
        out: list[float | None] = [None] * expected
        for item in items:
            index = item.get("index") if isinstance(item, dict) else None
            value = item.get("score", item.get("relevance_score")) if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < expected or out[index] is not None:
                raise self._unavailable(f"malformed reply: bad index {index!r}")
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise self._unavailable(f"malformed reply: bad score for index {index}")
            out[index] = float(value)
        scores = [v for v in out if v is not None]
        if any(v < 0 or v > 1 for v in scores):  # raw logits: map them onto [0, 1]
            scores = [1 / (1 + math.exp(-max(-30.0, min(30.0, v)))) for v in scores]
        return scores

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.AsyncClient(timeout=self._timeout, headers=headers)
        return self._client

    def _unavailable(self, detail: str) -> EmbeddingProviderUnavailable:
        return EmbeddingProviderUnavailable(f"rerank server {self._public} {detail}")

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


RerankerFactory = Callable[..., Reranker]
_factories: dict[str, RerankerFactory] = {HttpReranker.name: HttpReranker}


def available_rerankers() -> list[str]:
    return sorted({*_factories, *_plugins()})


def get_reranker(name: str, **options: Any) -> Reranker:
    """A new reranker from provider ``name``; raises UnknownProviderError (listing the known
    names) or EmbeddingConfigError (a plugin that fails to load, options that do not fit)."""
    factory = _factories.get(name)
    if factory is None:
        plugin = _plugins().get(name)
        if plugin is None:
            raise UnknownProviderError(name, available_rerankers())
        try:
            factory = plugin.load()
        except Exception as exc:  # a broken plugin can fail in any way while importing
            raise EmbeddingConfigError(f"reranker {name!r} ({plugin.value}) failed to load: {exc}") from exc
        _factories[name] = factory
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as exc:
        raise EmbeddingConfigError(f"reranker {name!r}: {exc}") from None
    except ValueError:
        pass
    return factory(**options)


def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=RERANKER_ENTRY_POINT_GROUP) if ep.name not in _factories}
