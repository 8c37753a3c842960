"""The Embedder protocol every provider implements, the error tree, and content hashing."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float32]
"""float32 vectors: shape (dim,) for one text, (n, dim) for many."""


class EmbeddingError(Exception):
    """Base of every error raised by the embeddings library."""


class UnknownProviderError(EmbeddingError):
    """No provider is registered under the requested name; the message lists the known ones."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = list(known)
        super().__init__(f"unknown embedding provider {name!r}; known providers: {', '.join(self.known) or '(none)'}")


class EmbeddingProviderUnavailable(EmbeddingError):
    """A remote provider could not produce vectors: down, timed out, bad status or malformed reply.

    The message names the server (without credentials) and never contains an API key.
    """


class EmbeddingConfigError(EmbeddingError):
    """A provider was configured wrongly or cannot load its model (bad option, missing weights,
    dimension mismatch)."""


class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors of one fixed vector space.

    `model_id` identifies that space: store it beside every vector, and never compare vectors
    whose ids differ. Implementations load their model lazily (first call or `warm_up`) and keep
    heavy work off the event loop.
    """

    @property
    def name(self) -> str:
        """Provider name in the registry, e.g. "sentence-transformers"."""
        ...

    @property
    def model_id(self) -> str:
        """Stable id of the vector space, e.g. "sentence-transformers/all-MiniLM-L6-v2"."""
        ...

    @property
    def dimensions(self) -> int:
        """Vector length. Raises EmbeddingConfigError while it is unknown (before `warm_up`)."""
        ...

    async def embed_documents(self, texts: Sequence[str]) -> FloatArray:
        """Vectors for `texts` in input order, shape (len(texts), dimensions); (0, dimensions) if empty."""
        ...

    async def embed_query(self, text: str) -> FloatArray:
        """The vector of one search query, shape (dimensions,)."""
        ...

    async def warm_up(self) -> None:
        """Load the model (or reach the server) now instead of on first use."""
        ...

    async def aclose(self) -> None:
        """Release this embedder's resources; it may be used again afterwards."""
        ...


def content_hash(text: str) -> str:
    """sha256 hex digest of the exact text, to recognise text that was already embedded."""
    # surrogatepass: every Python str hashes, even one holding lone surrogates.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
