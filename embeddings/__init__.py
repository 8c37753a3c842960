"""Text embeddings for Mosaic Memory: one small async `Embedder` protocol, several providers.

A leaf library: it imports nothing from the service. Providers load their models lazily, so
importing this package is cheap.

    embedder = get_embedder("sentence-transformers")
    vectors = await embedder.embed_documents(["prefers tabs"])
"""

from embeddings.base import (
    Embedder,
    EmbeddingConfigError,
    EmbeddingError,
    EmbeddingProviderUnavailable,
    FloatArray,
    UnknownProviderError,
    content_hash,
)
from embeddings.onnx import OnnxEmbedder
from embeddings.openai_compatible import OpenAICompatibleEmbedder
from embeddings.registry import ENTRY_POINT_GROUP, available_providers, get_embedder, register
from embeddings.sentence_transformers import SentenceTransformersEmbedder

__all__ = [
    "ENTRY_POINT_GROUP",
    "Embedder",
    "EmbeddingConfigError",
    "EmbeddingError",
    "EmbeddingProviderUnavailable",
    "FloatArray",
    "OnnxEmbedder",
    "OpenAICompatibleEmbedder",
    "SentenceTransformersEmbedder",
    "UnknownProviderError",
    "available_providers",
    "content_hash",
    "get_embedder",
    "register",
]
