"""A provider for any server that speaks OpenAI's `POST /v1/embeddings` (Ollama, vLLM, TEI, OpenAI)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np

from embeddings._shared import l2_normalize, require_positive
from embeddings.base import EmbeddingConfigError, EmbeddingProviderUnavailable, FloatArray
from embeddings.urls import redact_url

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_BACKOFF_SECONDS = 0.25
_BODY_EXCERPT_CHARS = 200


class OpenAICompatibleEmbedder:
    """Embeds through a remote `/embeddings` endpoint; `base_url` is like "http://host:11434/v1".

    Inputs go in batches of `batch_size`; each batch is retried `max_retries` times, with a short
    backoff, after connection errors, timeouts and 408/429/5xx replies. Vectors are L2-normalised
    here, whatever the server does. Without `dimensions`, the length is learned from the first
    reply; `warm_up` sends one tiny request, which also makes lazily-loading servers load the model.

    Raises EmbeddingProviderUnavailable when the server is unreachable, keeps failing, refuses the
    request or replies with something that is not an embeddings list; the message names the
    endpoint without credentials or query string and never contains the API key. Raises
    EmbeddingConfigError when the server's vectors do not have the configured `dimensions`.
    The HTTP client is created in the event loop of the first call; `aclose` it when done.
    """

    name = "openai-compatible"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        dimensions: int | None = None,
        timeout: float = 30.0,
        batch_size: int = 256,
        max_retries: int = 2,
    ) -> None:
        try:
            parts = urlsplit(base_url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # e.g. a non-numeric port
            valid = False
        if not valid:
            raise EmbeddingConfigError(f"base_url must be an http(s) URL, got {redact_url(base_url, strip=True)!r}")
        if not model:
            raise EmbeddingConfigError("model must name the server's embedding model")
        require_positive("timeout", timeout)
        require_positive("batch_size", batch_size)
        if dimensions is not None:
            require_positive("dimensions", dimensions)
        if max_retries < 0:
            raise EmbeddingConfigError(f"max_retries must be >= 0, got {max_retries!r}")
        self.model_id = f"openai-compatible/{model}"
        self._model = model
        self._url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/embeddings"))
        self._public_url = redact_url(self._url, strip=True)
        self._api_key = api_key or None
        self._dimensions = dimensions
        self._timeout = timeout
        self._batch_size = batch_size
        self._max_retries = max_retries
        self._client: httpx.AsyncClient | None = None

    @property
    def dimensions(self) -> int:
        """The configured length, or the one learned from the first reply."""
        if self._dimensions is None:
            raise EmbeddingConfigError(
                f"dimensions of {self.model_id!r} are unknown until `await warm_up()` "
                "or the first embedding call; or pass dimensions="
            )
        return self._dimensions

    async def warm_up(self) -> None:
        await self._embed_batch(["warm-up"])

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def embed_documents(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            if self._dimensions is None:
                await self.warm_up()
            return np.empty((0, self.dimensions), dtype=np.float32)
        batches = [
            await self._embed_batch(list(texts[start : start + self._batch_size]))
            for start in range(0, len(texts), self._batch_size)
        ]
        return np.concatenate(batches) if len(batches) > 1 else batches[0]

    async def embed_query(self, text: str) -> FloatArray:
        vector: FloatArray = (await self._embed_batch([text]))[0]
        return vector

    async def _embed_batch(self, texts: list[str]) -> FloatArray:
        response = await self._post({"model": self._model, "input": texts})
        try:
            payload = response.json()
        except ValueError:
            raise self._unavailable(f"replied with invalid JSON: {self._excerpt(response)}") from None
        matrix = self._parse(payload, len(texts))
        if self._dimensions is None:
            self._dimensions = matrix.shape[1]
        elif matrix.shape[1] != self._dimensions:
            raise EmbeddingConfigError(
                f"{self._public_url} returned {matrix.shape[1]}-dimensional vectors for model "
                f"{self._model!r}, but dimensions={self._dimensions} was configured"
            )
        return l2_normalize(matrix)

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        client = self._http()
        attempts = self._max_retries + 1
        failure = ""
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(_BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                response = await client.post(self._url, json=body)
            except httpx.TimeoutException:
                failure = f"timed out after {self._timeout:g} s"
                continue
            except httpx.TransportError as exc:
                failure = f"connection failed: {self._redact(str(exc)) or type(exc).__name__}"
                continue
            if response.is_success:
                return response
            failure = f"HTTP {response.status_code}: {self._excerpt(response)}"
            if response.status_code not in _RETRY_STATUSES:
                raise self._unavailable(failure)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        raise self._unavailable(f"{failure}{tries}")

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.AsyncClient(timeout=self._timeout, headers=headers)
        return self._client

    def _parse(self, payload: object, expected: int) -> FloatArray:
        """The reply's vectors ordered by their `index`; anything unexpected is malformed."""
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or len(data) != expected:
            count = len(data) if isinstance(data, list) else "no"
            raise self._unavailable(f"malformed reply: expected {expected} embeddings in 'data', got {count}")
        rows: list[list[float] | None] = [None] * expected
        for position, item in enumerate(data):
            embedding = item.get("embedding") if isinstance(item, dict) else None
            index = item.get("index", position) if isinstance(item, dict) else None
            if not isinstance(embedding, list) or not embedding:
                raise self._unavailable(f"malformed reply: item {position} has no 'embedding' list")
            if not isinstance(index, int) or not 0 <= index < expected or rows[index] is not None:
                raise self._unavailable(f"malformed reply: item {position} has a bad 'index' {index!r}")
            rows[index] = embedding
        try:
            matrix = np.array(rows, dtype=np.float32)
        except (TypeError, ValueError):
            raise self._unavailable("malformed reply: embeddings are not equal-length lists of numbers") from None
        if matrix.ndim != 2 or not np.isfinite(matrix).all():
            raise self._unavailable("malformed reply: embeddings are not equal-length lists of finite numbers")
        return matrix

    def _unavailable(self, detail: str) -> EmbeddingProviderUnavailable:
        return EmbeddingProviderUnavailable(
            f"embedding server {self._public_url} (model {self._model!r}) {self._redact(detail)}"
        )

    def _excerpt(self, response: httpx.Response) -> str:
        text = " ".join(response.text.split())
        if len(text) > _BODY_EXCERPT_CHARS:
            text = text[:_BODY_EXCERPT_CHARS] + "…"
        return self._redact(text) or "(empty body)"

    def _redact(self, text: str) -> str:
        # Servers may echo the key back (e.g. in a 401 body); it must never reach a message or log.
        return text.replace(self._api_key, "***") if self._api_key else text
