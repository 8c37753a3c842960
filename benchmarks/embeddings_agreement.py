"""Speed and agreement of the onnx (int8) provider against the default sentence-transformers one.

Prints batch throughput (texts/s), single-query p50 latency, their ratios, and the cosine
agreement between the two providers' vectors for the same texts.

    python benchmarks/embeddings_agreement.py [--texts 2000] [--queries 200] [--threads N] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
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


async def _timed_batch(embedder: Embedder, texts: list[str]) -> tuple[float, FloatArray]:
    started = time.perf_counter()
    vectors = await embedder.embed_documents(texts)
    return time.perf_counter() - started, vectors


async def _timed_query(embedder: Embedder, text: str) -> float:
    started = time.perf_counter()
    await embedder.embed_query(text)
    return time.perf_counter() - started


async def main(count: int, queries: int, repeats: int, cache_dir: Path | None, threads: int | None) -> None:
    texts = varied_texts(count)
    query_texts = varied_texts(queries, seed=1)
    if threads:
        import torch

        torch.set_num_threads(threads)
    torch_side = SentenceTransformersEmbedder(runtime="torch")
    onnx_side = OnnxEmbedder(cache_dir=cache_dir, threads=threads)
    started = time.perf_counter()
    await onnx_side.warm_up()
    onnx_load = time.perf_counter() - started
    started = time.perf_counter()
    await torch_side.warm_up()
    torch_load = time.perf_counter() - started

    # The two providers take turns, so load from other processes skews both sides alike.
    torch_best = onnx_best = float("inf")
    for _ in range(max(1, repeats)):
        torch_seconds, torch_vectors = await _timed_batch(torch_side, texts)
        onnx_seconds, onnx_vectors = await _timed_batch(onnx_side, texts)
        torch_best, onnx_best = min(torch_best, torch_seconds), min(onnx_best, onnx_seconds)
    torch_rate, onnx_rate = count / torch_best, count / onnx_best
    torch_latencies, onnx_latencies = [], []
    for query in query_texts[:10] + query_texts:
        torch_latencies.append(await _timed_query(torch_side, query))
        onnx_latencies.append(await _timed_query(onnx_side, query))
    torch_p50 = statistics.median(torch_latencies[10:]) * 1000
    onnx_p50 = statistics.median(onnx_latencies[10:]) * 1000
    cosines = np.sum(torch_vectors * onnx_vectors, axis=1)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{count} texts (batch), {queries} single queries; {os.cpu_count()} CPUs, threads {threads or 'all'}, "
        f"load average {load:.1f}; onnx cache {onnx_side.cache_dir}"
    )
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
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for both (default: all)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.texts, arguments.queries, arguments.repeats, arguments.cache_dir, arguments.threads))
