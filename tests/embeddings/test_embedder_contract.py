"""The contract every Embedder keeps, run against each built-in provider with the real model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embeddings import Embedder, available_providers

UNRELATED = [
    "The train to Berlin departs from platform 7.",
    "Bake the bread at 220 degrees for thirty minutes.",
    "Quarterly revenue grew by 12 percent.",
    "Whales communicate with low-frequency songs.",
    "Reset your password from the account settings page.",
]


def test_identity(provider: Embedder) -> None:
    assert provider.name in available_providers()
    assert provider.model_id.endswith("all-MiniLM-L6-v2")
    assert provider.dimensions == 384


def test_model_ids_differ_between_providers() -> None:
    from embeddings import OnnxEmbedder, OpenAICompatibleEmbedder, SentenceTransformersEmbedder

    ids = {
        SentenceTransformersEmbedder().model_id,
        OnnxEmbedder().model_id,
        OnnxEmbedder(quantize=False).model_id,
        OpenAICompatibleEmbedder("http://localhost:1/v1", "all-MiniLM-L6-v2").model_id,
    }
    assert len(ids) == 4


async def test_documents_are_normalised_float32_rows(provider: Embedder, corpus: list[str]) -> None:
    texts = corpus[::4]
    vectors = await provider.embed_documents(texts)

    assert vectors.shape == (len(texts), provider.dimensions)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


async def test_query_is_one_normalised_vector(provider: Embedder) -> None:
    vector = await provider.embed_query("how does the user like code reviewed?")

    assert vector.shape == (provider.dimensions,)
    assert vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


async def test_empty_input_gives_empty_matrix(provider: Embedder) -> None:
    vectors = await provider.embed_documents([])

    assert vectors.shape == (0, provider.dimensions)
    assert vectors.dtype == np.float32


async def test_rows_keep_input_order(provider: Embedder, corpus: list[str]) -> None:
    # Short and long texts interleaved, so providers that sort by length must restore the order.
    texts = corpus[::-7]
    batch = await provider.embed_documents(texts)
    singles = np.stack([await provider.embed_query(text) for text in texts])

    best_match = (batch @ singles.T).argmax(axis=1)
    assert best_match.tolist() == list(range(len(texts)))


async def test_query_and_document_vectors_agree(provider: Embedder) -> None:
    texts = ["Prefers tabs over spaces in Python files.", *UNRELATED]
    alone = await provider.embed_documents(texts[:1])
    in_batch = await provider.embed_documents(texts)
    query = await provider.embed_query(texts[0])

    assert float(query @ alone[0]) > 0.999
    # int8 quantises activations per batch, so batch-mates may move a vector a little.
    assert float(query @ in_batch[0]) > 0.98


async def test_paraphrase_ranks_first(provider: Embedder) -> None:
    documents = [*UNRELATED[:3], "the user likes dark themes", *UNRELATED[3:]]
    vectors = await provider.embed_documents(documents)
    query = await provider.embed_query("what colour scheme does she prefer?")

    ranked = np.argsort(-(vectors @ query))
    assert documents[ranked[0]] == "the user likes dark themes"


async def test_edge_texts(provider: Embedder) -> None:
    texts = ["", " ", "🙂🚀🔥", "東京は日本の首都です。", "word " * 5000]
    vectors = await provider.embed_documents(texts)

    assert vectors.shape == (len(texts), provider.dimensions)
    assert np.all(np.isfinite(vectors))


async def test_concurrent_calls_match_sequential_ones(provider: Embedder, corpus: list[str]) -> None:
    chunks = [corpus[i : i + 20] for i in range(0, 100, 20)]
    sequential = [await provider.embed_documents(chunk) for chunk in chunks]
    concurrent = await asyncio.gather(*(provider.embed_documents(chunk) for chunk in chunks))

    for expected, actual in zip(sequential, concurrent, strict=True):
        np.testing.assert_allclose(actual, expected, atol=1e-5)


async def test_the_bundled_model_runs_on_onnx_with_the_torch_vectors(corpus: list[str], tmp_path: Path) -> None:
    from embeddings import SentenceTransformersEmbedder

    fast = SentenceTransformersEmbedder(onnx_cache_dir=tmp_path)
    torch_side = SentenceTransformersEmbedder(runtime="torch")
    assert fast.model_id == torch_side.model_id  # one vector space: stored vectors stay valid
    a, b = await fast.embed_documents(corpus), await torch_side.embed_documents(corpus)
    assert fast.runtime == "onnx" and torch_side.runtime == "torch"
    assert float(np.min(np.sum(a * b, axis=1))) > 0.99999
    query = "how does the user like code reviewed?"
    assert float(np.dot(await fast.embed_query(query), await torch_side.embed_query(query))) > 0.99999


async def test_a_failed_export_falls_back_to_torch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from embeddings import SentenceTransformersEmbedder
    from embeddings.base import EmbeddingConfigError

    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory should be")
    embedder = SentenceTransformersEmbedder(onnx_cache_dir=blocked)
    vector = await embedder.embed_query("still works")
    assert embedder.runtime == "torch" and vector.shape == (384,)
    assert "running it on torch" in caplog.text
    with pytest.raises(OSError):
        await SentenceTransformersEmbedder(runtime="onnx", onnx_cache_dir=blocked).warm_up()
    with pytest.raises(EmbeddingConfigError, match="unknown runtime"):
        SentenceTransformersEmbedder(runtime="gpu")
    with pytest.raises(EmbeddingConfigError, match="bundled"):
        SentenceTransformersEmbedder(model="/some/other/model", runtime="onnx")


async def test_concurrent_queries_share_model_calls(onnx_cache_dir: Path) -> None:
    from embeddings import OnnxEmbedder

    embedder = OnnxEmbedder(onnx_cache_dir, quantize=False)
    await embedder.warm_up()
    queries = [f"question number {i} about the deploy schedule" for i in range(24)]
    alone = [await embedder.embed_query(q) for q in queries]
    calls = 0
    embed = embedder._embed

    def counting(runtime: Any, texts: list[str]) -> Any:
        nonlocal calls
        calls += 1
        return embed(runtime, texts)

    embedder._embed = counting  # type: ignore[method-assign]
    together = await asyncio.gather(*(embedder.embed_query(q) for q in queries))
    assert calls < len(queries)  # the real model ran on batches, not once per query
    for one, batched in zip(alone, together, strict=True):
        np.testing.assert_allclose(one, batched, atol=1e-5)  # and each query got its own vector
