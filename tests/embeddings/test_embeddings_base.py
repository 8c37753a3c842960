"""content_hash, the error tree, the process-wide cache and import-time laziness."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from embeddings import (
    EmbeddingConfigError,
    EmbeddingError,
    EmbeddingProviderUnavailable,
    UnknownProviderError,
    content_hash,
    get_embedder,
)
from embeddings._shared import ProcessCache


def test_content_hash_is_sha256_of_the_exact_text() -> None:
    assert content_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert content_hash("abc ") != content_hash("abc")
    assert content_hash("Ü") != content_hash("U")
    assert len(content_hash("lone \ud800 surrogate")) == 64


@pytest.mark.parametrize("error", [UnknownProviderError, EmbeddingProviderUnavailable, EmbeddingConfigError])
def test_every_error_is_an_embedding_error(error: type[Exception]) -> None:
    assert issubclass(error, EmbeddingError)


def test_process_cache_loads_once_under_concurrent_callers() -> None:
    cache = ProcessCache()
    calls: list[int] = []

    def load() -> object:
        calls.append(1)
        time.sleep(0.05)
        return object()

    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_load("k", load))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(calls) == 1
    assert all(result is results[0] for result in results)


def test_process_cache_retries_after_a_failed_load() -> None:
    cache = ProcessCache()

    def fail() -> object:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cache.get_or_load("k", fail)

    assert "k" not in cache
    assert cache.get_or_load("k", lambda: 42) == 42


@pytest.mark.parametrize("runtime", ["auto", "torch"])
async def test_two_embedders_share_one_loaded_model(runtime: str) -> None:
    first = get_embedder("sentence-transformers", runtime=runtime)
    second = get_embedder("sentence-transformers", model="sentence-transformers/all-MiniLM-L6-v2", runtime=runtime)
    await first.warm_up()
    await second.warm_up()

    if runtime == "torch":
        assert first._loaded is not None and second._loaded is not None  # type: ignore[attr-defined]
        assert first._loaded.model is second._loaded.model  # type: ignore[attr-defined]
    else:  # the ONNX export of the bundled model: one inference session in the process
        assert first._onnx._runtime is not None  # type: ignore[attr-defined]
        assert first._onnx._runtime.session is second._onnx._runtime.session  # type: ignore[attr-defined]


def test_importing_and_constructing_loads_nothing_heavy() -> None:
    script = (
        "import sys, embeddings\n"
        "embeddings.get_embedder('sentence-transformers'); embeddings.get_embedder('onnx')\n"
        "heavy = {'torch', 'transformers', 'sentence_transformers', 'onnxruntime', 'tokenizers'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


async def test_unloadable_sentence_transformers_model_is_a_config_error(tmp_path: Path) -> None:
    embedder = get_embedder("sentence-transformers", model=str(tmp_path))

    with pytest.raises(EmbeddingConfigError, match="dimensions"):
        _ = embedder.dimensions
    with pytest.raises(EmbeddingConfigError, match="cannot load"):
        await embedder.warm_up()
