"""The onnx provider: agreement with sentence-transformers, and its on-disk model cache."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from embeddings import EmbeddingError, FloatArray, OnnxEmbedder
from embeddings import onnx as onnx_module
from embeddings._shared import bundled_model_path
from embeddings.onnx import default_cache_dir, ensure_onnx_model


async def test_int8_agrees_with_sentence_transformers(
    onnx_cache_dir: Path, corpus: list[str], reference_vectors: FloatArray
) -> None:
    embedder = OnnxEmbedder(cache_dir=onnx_cache_dir)
    cosines = np.sum(await embedder.embed_documents(corpus) * reference_vectors, axis=1)

    assert len(corpus) >= 200
    assert cosines.mean() >= 0.99
    assert cosines.min() >= 0.95
    assert embedder.model_id == "onnx-int8/all-MiniLM-L6-v2"


async def test_cached_model_is_reused_without_export(onnx_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await OnnxEmbedder(cache_dir=onnx_cache_dir).warm_up()
    (cached,) = onnx_cache_dir.glob("*-int8.onnx")
    modified = cached.stat().st_mtime_ns

    def no_export(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_module, "_export_fp32", no_export)

    assert ensure_onnx_model(onnx_cache_dir, quantize=True) == cached
    assert cached.stat().st_mtime_ns == modified


def test_a_new_process_loads_the_cache_without_torch(onnx_cache_dir: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "import embeddings.onnx as m\n"
        "def no_export(*args): raise AssertionError('exported again')\n"
        "m._export_fp32 = no_export\n"
        f"e = m.OnnxEmbedder(cache_dir={str(onnx_cache_dir)!r})\n"
        "v = asyncio.run(e.embed_query('hello'))\n"
        "print(v.shape, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    ensure_onnx_model(onnx_cache_dir, quantize=True)

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "(384,) False False"


def test_an_interrupted_export_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / ".export-stale"
    stale.mkdir()
    os.utime(stale, (time.time() - 7200, time.time() - 7200))

    def crash_midway(model_dir: Path, target: Path) -> None:
        target.write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_module, "_export_fp32", crash_midway)

    with pytest.raises(KeyboardInterrupt):
        ensure_onnx_model(tmp_path, quantize=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
async def test_unreadable_cache_file_is_rebuilt_and_fp32_matches_torch(
    tmp_path: Path, corpus: list[str], reference_vectors: FloatArray
) -> None:
    target = onnx_module._model_path(tmp_path, bundled_model_path(), quantize=False)
    target.write_bytes(b"not an onnx model")
    embedder = OnnxEmbedder(cache_dir=tmp_path, quantize=False)

    vectors = await embedder.embed_documents(corpus)

    np.testing.assert_allclose(np.sum(vectors * reference_vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.model_id == "onnx-fp32/all-MiniLM-L6-v2"
    assert target.read_bytes() != b"not an onnx model"


def test_a_wrong_export_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    real_normalize = torch.nn.functional.normalize

    def skewed_normalize(tensor: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        # Data-dependent only in torch, so the traced graph and eager torch disagree.
        result: torch.Tensor = real_normalize(tensor, *args, **kwargs)  # type: ignore[arg-type]
        exporting: bool = torch.onnx.is_in_onnx_export()
        scaled: torch.Tensor = result * (1.0 if exporting else 0.5)
        return scaled

    monkeypatch.setattr(torch.nn.functional, "normalize", skewed_normalize)

    with pytest.raises(EmbeddingError, match="disagrees with torch"):
        ensure_onnx_model(tmp_path, quantize=False)
    assert not list(tmp_path.glob("*.onnx"))


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOSAIC_DATA_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "models"
    assert OnnxEmbedder().cache_dir == tmp_path / "models"

    monkeypatch.delenv("MOSAIC_DATA_DIR")
    assert default_cache_dir().name == "models"
    assert "mosaic-memory" in str(default_cache_dir())


def test_construction_is_validated() -> None:
    from embeddings import EmbeddingConfigError

    with pytest.raises(EmbeddingConfigError):
        OnnxEmbedder(batch_size=0)
    with pytest.raises(EmbeddingConfigError):
        OnnxEmbedder(threads=0)
