"""A fast CPU provider: the bundled all-MiniLM-L6-v2 exported to ONNX and quantised to int8.

The first load exports the weights with torch and quantises them (a few seconds), then caches the
result on disk; later loads in any process read the cached file and need neither torch nor
transformers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from embeddings._shared import (
    BUNDLED_DIMENSIONS,
    BUNDLED_MODEL_NAME,
    MODEL_CACHE,
    bundled_max_seq_length,
    bundled_model_path,
    forbid_downloads,
    require_positive,
)
from embeddings.base import EmbeddingError, FloatArray

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

# Bump when the exported graph or the quantisation changes, so old cache files are not reused.
_RECIPE = 1
_OPSET = 17
_INPUTS = ("input_ids", "attention_mask")
_OUTPUT = "embedding"
_STALE_EXPORT_SECONDS = 3600.0
# Embedders with different settings may load the same file at once; one export is enough.
_EXPORT_LOCK = threading.Lock()


def default_cache_dir() -> Path:
    """`$MOSAIC_DATA_DIR/models` when that variable is set, else the user cache dir's `models`."""
    data_dir = os.environ.get("MOSAIC_DATA_DIR")
    if data_dir:
        return Path(data_dir).expanduser() / "models"
    return shared_cache_dir()


def shared_cache_dir() -> Path:
    """The user cache dir's ``models``: one export for every data directory of this user."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mosaic-memory")) / "models"


def ensure_onnx_model(cache_dir: Path, *, quantize: bool = True) -> Path:
    """Path of the exported model in `cache_dir`, exporting it first if it is not there yet.

    The file name carries a hash of the source weights and the export recipe, so new weights get
    a new file. It appears by atomic rename: an interrupted export leaves no file behind. Raises
    EmbeddingError if the exported graph disagrees with torch.
    """
    model_dir = bundled_model_path()
    target = _model_path(cache_dir, model_dir, quantize=quantize)
    if target.is_file():
        return target
    with _EXPORT_LOCK:
        if not target.is_file():
            _export_atomically(model_dir, target, quantize=quantize)
    return target


def _export_atomically(model_dir: Path, target: Path, *, quantize: bool) -> None:
    cache_dir = target.parent
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_exports(cache_dir)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_dir))
    try:
        built = workdir / "model-fp32.onnx"
        _export_fp32(model_dir, built)
        if quantize:
            quantized = workdir / "model-int8.onnx"
            _quantize(built, quantized)
            built = quantized
        with built.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(built, target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    logger.info("exported %s in %.1f s", target, time.perf_counter() - started)


@dataclass(frozen=True)
class _Runtime:
    session: onnxruntime.InferenceSession
    tokenizer: Tokenizer


class OnnxEmbedder:
    """Embeds with all-MiniLM-L6-v2 on ONNX Runtime: int8 by default, several times faster on CPU.

    Its vectors differ slightly from the sentence-transformers provider's (mean cosine about
    0.99), so it has its own `model_id` ("onnx-int8/all-MiniLM-L6-v2", or "onnx-fp32/..." with
    `quantize=False`). With int8, a text's vector also varies slightly with the texts batched
    beside it, because activations are quantised per batch.

    The model file is built once into `cache_dir` (default `default_cache_dir()`) on first use or
    `warm_up`, then loaded once per process. Raises EmbeddingError if the export fails its check.
    """

    name = "onnx"
    dimensions = BUNDLED_DIMENSIONS

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        quantize: bool = True,
        *,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        require_positive("batch_size", batch_size)
        if threads is not None:
            require_positive("threads", threads)
        self.model_id = f"onnx-{'int8' if quantize else 'fp32'}/{BUNDLED_MODEL_NAME}"
        self._cache_dir = Path(os.path.abspath(Path(cache_dir).expanduser() if cache_dir else default_cache_dir()))
        self._quantize = quantize
        self._batch_size = batch_size
        self._threads = threads or _available_cpus()
        self._runtime: _Runtime | None = None
        self._queries: list[tuple[str, asyncio.Future[FloatArray]]] = []
        self._drainer: asyncio.Task[None] | None = None

    @property
    def cache_dir(self) -> Path:
        """Where the exported model file lives."""
        return self._cache_dir

    async def warm_up(self) -> None:
        await self._loaded()

    async def aclose(self) -> None:
        """Drop this handle; the session stays cached for other embedders in the process."""
        self._runtime = None

    async def embed_documents(self, texts: Sequence[str]) -> FloatArray:
        runtime = await self._loaded()
        if not texts:
            return np.empty((0, self.dimensions), dtype=np.float32)
        return await asyncio.to_thread(self._embed, runtime, list(texts))

    async def embed_query(self, text: str) -> FloatArray:
        """One query's vector. With fp32, queries asked while a model call runs are embedded
        together in the next call (one call for up to ``batch_size`` of them): under concurrent
        searches the model runs once per batch instead of once per query, and a lone query waits
        for nothing. int8 embeds each query alone, since its vectors shift with their batch."""
        runtime = await self._loaded()
        if self._quantize:
            vector: FloatArray = (await asyncio.to_thread(self._embed, runtime, [text]))[0]
            return vector
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[FloatArray] = loop.create_future()
        self._queries.append((text, waiter))
        if self._drainer is None or self._drainer.done() or self._drainer.get_loop() is not loop:
            self._drainer = loop.create_task(self._drain_queries(runtime))
        return await waiter

    async def _drain_queries(self, runtime: _Runtime) -> None:
        while self._queries:
            batch, self._queries = self._queries[: self._batch_size], self._queries[self._batch_size :]
            try:
                vectors = await asyncio.to_thread(self._embed, runtime, [text for text, _ in batch])
            except Exception as exc:  # every waiter of this batch gets the error
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(exc)
                continue
            for (_, waiter), vector in zip(batch, vectors, strict=True):
                if not waiter.done():  # a caller that was cancelled no longer waits
                    waiter.set_result(vector)

    async def _loaded(self) -> _Runtime:
        if self._runtime is None:
            key = ("onnx", str(self._cache_dir), self._quantize, self._threads)
            self._runtime = await asyncio.to_thread(MODEL_CACHE.get_or_load, key, self._load)
        return self._runtime

    def _load(self) -> _Runtime:
        from tokenizers import Tokenizer

        path = ensure_onnx_model(self._cache_dir, quantize=self._quantize)
        try:
            session = _open_session(path, self._threads)
        except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable files
            logger.warning("cached model %s is unreadable (%s); exporting it again", path, exc)
            path.unlink(missing_ok=True)
            session = _open_session(ensure_onnx_model(self._cache_dir, quantize=self._quantize), self._threads)
        tokenizer = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(bundled_max_seq_length())
        return _Runtime(session=session, tokenizer=tokenizer)

    def _embed(self, runtime: _Runtime, texts: list[str]) -> FloatArray:
        encodings = runtime.tokenizer.encode_batch(texts)
        token_ids = [encoding.ids for encoding in encodings]
        lengths = np.array([len(ids) for ids in token_ids], dtype=np.int64)
        # Batches of similar lengths waste little work on padding; `order` maps results back.
        order = np.argsort(lengths, kind="stable")
        result = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(texts), self._batch_size):
            rows = order[start : start + self._batch_size]
            input_ids, attention_mask = _pad([token_ids[i] for i in rows])
            (vectors,) = runtime.session.run([_OUTPUT], {"input_ids": input_ids, "attention_mask": attention_mask})
            result[rows] = vectors
        return result


def _pad(token_ids: Sequence[Sequence[int]]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Right-padded input ids and attention mask for one batch (the pad id's value is masked out)."""
    width = max(len(ids) for ids in token_ids)
    input_ids = np.zeros((len(token_ids), width), dtype=np.int64)
    attention_mask = np.zeros((len(token_ids), width), dtype=np.int64)
    for row, ids in enumerate(token_ids):
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def _available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _open_session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    # One model runs one node at a time; a second pool of threads would only compete for the cores.
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Between one inference's parallel sections a worker spins 20 µs instead of sleeping, and no
    # thread spins once the inference ends, so the CPU is PostgreSQL's and the API's between calls.
    # Measured (benchmarks/RESULTS.md, seventh pass): sleeping between sections cost one short text
    # 1.1-1.7 ms of its 5.6-6.6 (a wake-up per section) and no less CPU; spinning on after the
    # inference cost ~50 % more CPU a call; spinning for the default time between sections cost
    # 8 concurrent searching clients 4-7 % of their searches a second.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.intra_op.spin_duration_us", "20")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _model_path(cache_dir: Path, model_dir: Path, *, quantize: bool) -> Path:
    precision = "int8" if quantize else "fp32"
    return cache_dir / f"{BUNDLED_MODEL_NAME}-{_weights_digest(model_dir)[:16]}-r{_RECIPE}-{precision}.onnx"


def _weights_digest(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        with (model_dir / name).open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _remove_stale_exports(cache_dir: Path) -> None:
    """Delete work dirs that killed exports left behind (fresh ones may belong to a live export)."""
    cutoff = time.time() - _STALE_EXPORT_SECONDS
    for workdir in cache_dir.glob(".export-*"):
        try:
            if workdir.stat().st_mtime < cutoff:
                shutil.rmtree(workdir, ignore_errors=True)
        except OSError:
            continue


def _export_fp32(model_dir: Path, target: Path) -> None:
    """Export encoder + mean pooling + L2 normalisation to `target`, then check it against torch."""
    forbid_downloads()
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    class MeanPooled(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            # Keyword arguments: transformers 5 changed the positional order of BERT's forward.
            hidden = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    encoder = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager")
    wrapper = MeanPooled(encoder).eval()
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()

    def batch(texts: list[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        return _pad([encoding.ids for encoding in tokenizer.encode_batch(texts)])

    # The example batch is padded, so the traced graph keeps the attention-mask path.
    example = batch(["a short text", "a longer example sentence, so that the batch needs padding"])
    token_axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about data-dependent branches in transformers' mask code; the check
        # below proves the traced graph right on other batch and sequence sizes.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            tuple(torch.from_numpy(array) for array in example),
            str(target),
            dynamo=False,
            input_names=list(_INPUTS),
            output_names=[_OUTPUT],
            dynamic_axes={**{name: token_axes for name in _INPUTS}, _OUTPUT: {0: "batch"}},
            opset_version=_OPSET,
            do_constant_folding=True,
        )

    import onnxruntime

    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    for texts in (["one text alone"], ["x", "three texts of different lengths", "y " * 300]):
        input_ids, attention_mask = batch(texts)
        with torch.no_grad():
            expected = wrapper(torch.from_numpy(input_ids), torch.from_numpy(attention_mask)).numpy()
        (actual,) = session.run([_OUTPUT], {"input_ids": input_ids, "attention_mask": attention_mask})
        if not np.allclose(actual, expected, atol=1e-4):
            raise EmbeddingError(
                "the ONNX export of all-MiniLM-L6-v2 disagrees with torch "
                f"(max difference {float(np.abs(actual - expected).max()):.2e}); "
                "use the sentence-transformers provider"
            )


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weight scales: per-tensor int8 reached only cosine 0.96 to the torch vectors.
    with _quiet_root_logger("pre-processing before quantization"):
        quantize_dynamic(source, target, per_channel=True, weight_type=QuantType.QInt8)


@contextmanager
def _quiet_root_logger(fragment: str) -> Iterator[None]:
    """Hide one known, unactionable warning that onnxruntime logs on the root logger."""

    def keep(record: logging.LogRecord) -> bool:
        return fragment not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)
