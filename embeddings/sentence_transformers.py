"""The default provider: sentence-transformers on the bundled all-MiniLM-L6-v2 weights.

On CPU the bundled model runs on ONNX Runtime by default (``runtime="auto"``): the same weights
exported once to an fp32 graph (checked against torch at export), giving the same vectors within
float error (cosine 1.000000 to the torch ones on the benchmark corpus) at about 3x the speed for
one text and 1.35x for a batch. So the vectors keep this provider's ``model_id``. Should the
export fail, the provider logs why and runs torch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embeddings._shared import (
    BUNDLED_DIMENSIONS,
    BUNDLED_MODEL_HUB_ID,
    BUNDLED_MODEL_NAME,
    MODEL_CACHE,
    bundled_model_path,
    forbid_downloads,
    require_positive,
)
from embeddings.base import EmbeddingConfigError, FloatArray
from embeddings.onnx import OnnxEmbedder, shared_cache_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

_BUNDLED_ALIASES = frozenset({BUNDLED_MODEL_NAME, BUNDLED_MODEL_HUB_ID})
RUNTIMES = ("auto", "torch", "onnx")


@dataclass(frozen=True)
class _Loaded:
    model: SentenceTransformer
    dimensions: int
    # The fast tokenizer raises "Already borrowed" under concurrent calls, so encodes take turns.
    lock: threading.Lock = field(default_factory=threading.Lock)


class SentenceTransformersEmbedder:
    """Embeds with a sentence-transformers model, by default the bundled all-MiniLM-L6-v2 (384 dims).

    `model` may be a local directory or a Hugging Face id already in the local cache; nothing is
    downloaded at run time (HF_HUB_OFFLINE is set unless configured). The model loads on first use
    or `warm_up`, once per process for each (model, device). A model that cannot be loaded raises
    EmbeddingConfigError.

    `runtime`: ``auto`` (the default) runs the bundled model on CPU through its ONNX fp32 export
    (built once into `onnx_cache_dir`, default the user cache) and anything else on torch;
    ``torch`` always uses torch; ``onnx`` insists on the export (bundled model on CPU only).
    """

    name = "sentence-transformers"

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 64,
        device: str = "cpu",
        runtime: str = "auto",
        onnx_cache_dir: str | Path | None = None,
    ) -> None:
        require_positive("batch_size", batch_size)
        if runtime not in RUNTIMES:
            raise EmbeddingConfigError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
        self._source = None if model is None or model in _BUNDLED_ALIASES else model
        self._batch_size = batch_size
        self._device = device
        bundled_on_cpu = self._source is None and device == "cpu"
        if runtime == "onnx" and not bundled_on_cpu:
            raise EmbeddingConfigError("runtime 'onnx' runs the bundled all-MiniLM-L6-v2 on CPU only")
        self._strict_onnx = runtime == "onnx"
        self._onnx: OnnxEmbedder | None = None
        if runtime != "torch" and bundled_on_cpu:
            self._onnx = OnnxEmbedder(onnx_cache_dir or shared_cache_dir(), quantize=False, batch_size=batch_size)
        if self._source is None:
            self.model_id = BUNDLED_MODEL_HUB_ID
        elif Path(self._source).is_dir():
            self.model_id = f"sentence-transformers/{Path(self._source).resolve().name}"
        else:
            self.model_id = self._source
        self._known_dimensions = BUNDLED_DIMENSIONS if self._source is None else None
        self._loaded: _Loaded | None = None

    @property
    def dimensions(self) -> int:
        """384 for the bundled model; for another model, known once it is loaded."""
        if self._loaded is not None:
            return self._loaded.dimensions
        if self._known_dimensions is None:
            raise EmbeddingConfigError(f"dimensions of {self.model_id!r} are known after `await warm_up()`")
        return self._known_dimensions

    @property
    def runtime(self) -> str:
        """``onnx`` or ``torch``: what computes the vectors now (``onnx`` until an export fails)."""
        return "onnx" if self._onnx is not None else "torch"

    async def warm_up(self) -> None:
        if await self._fast() is None:
            await self._model()

    async def aclose(self) -> None:
        """Drop this handle; the model stays cached for other embedders in the process."""
        self._loaded = None
        if self._onnx is not None:
            await self._onnx.aclose()

    async def embed_documents(self, texts: Sequence[str]) -> FloatArray:
        fast = await self._fast()
        if fast is not None:
            return await fast.embed_documents(texts)
        loaded = await self._model()
        if not texts:
            return np.empty((0, loaded.dimensions), dtype=np.float32)
        return await asyncio.to_thread(self._encode, loaded, list(texts), query=False)

    async def embed_query(self, text: str) -> FloatArray:
        fast = await self._fast()
        if fast is not None:
            return await fast.embed_query(text)
        loaded = await self._model()
        vector: FloatArray = (await asyncio.to_thread(self._encode, loaded, [text], query=True))[0]
        return vector

    async def _fast(self) -> OnnxEmbedder | None:
        """The ONNX runtime, loaded (exported first if needed); None on torch."""
        if self._onnx is None:
            return None
        try:
            await self._onnx.warm_up()
        except Exception as exc:  # export or load failed (torch.onnx, onnxruntime, disk): torch still works
            if self._strict_onnx:
                raise
            logger.warning("the ONNX export of %s is unavailable (%s); running it on torch", self.model_id, exc)
            self._onnx = None
        return self._onnx

    async def _model(self) -> _Loaded:
        if self._loaded is None:
            key = ("sentence-transformers", self._source, self._device)
            self._loaded = await asyncio.to_thread(MODEL_CACHE.get_or_load, key, self._load)
        return self._loaded

    def _load(self) -> _Loaded:
        forbid_downloads()
        from sentence_transformers import SentenceTransformer

        source = str(bundled_model_path()) if self._source is None else self._source
        try:
            model = SentenceTransformer(source, device=self._device)
        except (OSError, ValueError) as exc:
            raise EmbeddingConfigError(
                f"cannot load sentence-transformers model {source!r} (downloads are disabled; "
                f"pass a local directory or pre-fetch it into the Hugging Face cache): {exc}"
            ) from exc
        get_dimension = getattr(model, "get_embedding_dimension", None) or (model.get_sentence_embedding_dimension)
        dimensions = get_dimension()
        if not dimensions:
            raise EmbeddingConfigError(f"model {source!r} does not report its embedding dimension")
        return _Loaded(model=model, dimensions=int(dimensions))

    def _encode(self, loaded: _Loaded, texts: list[str], *, query: bool) -> FloatArray:
        # encode_query/encode_document apply the model's own query/document prompts, if any.
        model = loaded.model
        encode = getattr(model, "encode_query" if query else "encode_document", model.encode)
        with loaded.lock:
            vectors = encode(
                texts,
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
