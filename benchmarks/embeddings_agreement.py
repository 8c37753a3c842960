"""Speed and agreement of the onnx (int8) provider against the default sentence-transformers one.

Prints batch throughput (texts/s), single-query p50 latency, their ratios, and the cosine
agreement between the two providers' vectors for the same texts.

    python benchmarks/embeddings_agreement.py [--texts 2000] [--queries 200] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path

import numpy as np

from embeddings import Embedder, FloatArray, OnnxEmbedder, SentenceTransformersEmbedder

_SUBJECTS = ("The user", "She", "He", "The team", "Our agent", "The customer", "My manager", "The build")
_VERBS = ("prefers", "asked about", "complained about", "wants", "forgot", "reviewed", "deployed", "likes")
_OBJECTS = (
    "dark themes",
    "tabs over spaces",
    "short answers",
    "the quarterly report",
    "the PostgreSQL migration",
    "vegetarian recipes",
    "a window seat on long flights",
    "the flaky integration test",
    "weekly status emails",
    "metric units",
    "the new pricing page",
    "early morning meetings",
)
_TAILS = (
    "",
    "yesterday",
    "again this week",
    "because the last attempt failed",
    "before the release on Friday",
    "according to the notes from the planning session",
    "and mentioned it twice during the call with the vendor",
    "although nobody on the team agreed with that decision at the time",
)
_EXTRAS = ("hi", "ok", "error 500", "dark mode", "git rebase -i HEAD~3", "2024-03-15", "東京の天気", "🙂")


def varied_texts(count: int, seed: int = 0) -> list[str]:
    """`count` distinct-ish short texts of varied length and topic, the same for a given seed."""
    rng = random.Random(seed)
    texts = []
    for i in range(count):
        if i % 25 == 0:
            texts.append(f"{rng.choice(_EXTRAS)} #{i}")
            continue
        text = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TAILS)}"
        texts.append(f"{text.strip()} (note {i}).")
    return texts


async def _throughput(embedder: Embedder, texts: list[str], repeats: int) -> tuple[float, FloatArray]:
    best = float("inf")
    vectors = np.empty((0, 0), dtype=np.float32)
    for _ in range(repeats):
        started = time.perf_counter()
        vectors = await embedder.embed_documents(texts)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best, vectors


async def _query_p50_ms(embedder: Embedder, queries: list[str]) -> float:
    for query in queries[:10]:
        await embedder.embed_query(query)
    latencies = []
    for query in queries:
        started = time.perf_counter()
        await embedder.embed_query(query)
        latencies.append(time.perf_counter() - started)
    return statistics.median(latencies) * 1000


async def main(count: int, queries: int, repeats: int, cache_dir: Path | None) -> None:
    texts = varied_texts(count)
    query_texts = varied_texts(queries, seed=1)
    torch_side = SentenceTransformersEmbedder()
    onnx_side = OnnxEmbedder(cache_dir=cache_dir)
    started = time.perf_counter()
    await onnx_side.warm_up()
    onnx_load = time.perf_counter() - started
    started = time.perf_counter()
    await torch_side.warm_up()
    torch_load = time.perf_counter() - started

    torch_rate, torch_vectors = await _throughput(torch_side, texts, repeats)
    onnx_rate, onnx_vectors = await _throughput(onnx_side, texts, repeats)
    torch_p50 = await _query_p50_ms(torch_side, query_texts)
    onnx_p50 = await _query_p50_ms(onnx_side, query_texts)
    cosines = np.sum(torch_vectors * onnx_vectors, axis=1)

    print(f"{count} texts (batch), {queries} single queries; onnx cache {onnx_side.cache_dir}")
    print(f"{'':24}{'sentence-transformers':>22}{'onnx int8':>12}{'ratio':>8}")
    print(f"{'load (s)':24}{torch_load:>22.2f}{onnx_load:>12.2f}")
    print(f"{'batch texts/s':24}{torch_rate:>22.0f}{onnx_rate:>12.0f}{onnx_rate / torch_rate:>7.2f}x")
    print(f"{'query p50 (ms)':24}{torch_p50:>22.2f}{onnx_p50:>12.2f}{torch_p50 / onnx_p50:>7.2f}x")
    print(
        f"cosine(onnx, sentence-transformers): mean {cosines.mean():.4f}  "
        f"p1 {np.percentile(cosines, 1):.4f}  min {cosines.min():.4f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2, help="batch runs per provider; the best counts")
    parser.add_argument("--cache-dir", type=Path, default=None, help="onnx model cache (default: the user's)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.texts, arguments.queries, arguments.repeats, arguments.cache_dir))
