"""Export and import throughput, each beside a plain ``COPY`` of the same rows in the same run.

``python -m benchmarks.portability [--rows 20000] [--reembed-rows 1000]`` starts an embedded
PostgreSQL in a temp dir, loads ``--rows`` insights with their vectors for one user (random unit
vectors: far apart, so the import's near-duplicate merge leaves every row standing), then times:

- **export**: ``export_lines(with_vectors=True)`` into a file, beside ``COPY (SELECT …) TO STDOUT``
  of the same columns into a file (the peer), with the export's peak RSS growth (it streams page
  by page, so this stays flat however many rows there are);
- **import with vectors**: ``PortabilityService.import_stream`` of that file into a second user
  (same model: nothing re-embedded; near-duplicate lookup per batch, content-hash dedup, ids
  kept), beside one binary ``COPY FROM`` of the same rows into a third user (the peer);
- **import without vectors**: ``--reembed-rows`` rows exported without vectors and imported into
  a fourth user, so every row is embedded, beside the embedder alone on the same texts.

Both sides of each pair run against the same table with its HNSW index in place. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks.common import DIM, Sizes, fact_texts, machine
from benchmarks.context import Context, open_context
from benchmarks.vector_cases import copy_insights
from embeddings import content_hash
from mosaic_memory.insights.repository import InsightRepository
from mosaic_memory.owners.schemas import OwnerRef
from mosaic_memory.portability.service import export_lines

EXPORT_SQL = (
    "COPY (SELECT id, owner_id, content, category, tags, metadata, importance, confidence, pinned, valid_from, "
    "valid_to, superseded_by, expires_at, access_count, last_accessed_at, source_type, source_ref, created_at, "
    "updated_at, embedding_model, embedding FROM insights WHERE owner_id = %s ORDER BY id) TO STDOUT"
)


class PeakRss:
    """The largest resident-set growth over the start, sampled every 20 ms in a thread."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._start: int = self._proc.memory_info().rss
        self.peak: int = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return round((self.peak - self._start) / 2**20, 1)


async def _user(ctx: Context, name: str) -> OwnerRef:
    async with ctx.state.sessionmaker() as session, session.begin():
        out, _ = await ctx.state.owners.create_user(session, name)
    return OwnerRef(out.id, "user", out.name)


async def _export(ctx: Context, owner: OwnerRef, path: Path, *, with_vectors: bool) -> float:
    started = time.perf_counter()
    async with ctx.state.sessionmaker() as session, session.begin():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        with path.open("wb") as fh:
            async for line in export_lines(session, [owner], kinds=["insights"], with_vectors=with_vectors):
                fh.write(line)
    return time.perf_counter() - started


async def _copy_out(ctx: Context, owner: OwnerRef, path: Path) -> float:
    started = time.perf_counter()
    async with await ctx.raw() as conn, conn.cursor() as cur:
        with path.open("wb") as fh:
            async with cur.copy(EXPORT_SQL, (owner.id,)) as copy:
                async for chunk in copy:
                    fh.write(chunk)
    return time.perf_counter() - started


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            yield chunk


async def _import(ctx: Context, path: Path, as_owner: str) -> tuple[float, dict[str, Any]]:
    service = ctx.state.portability
    started = time.perf_counter()
    report = await service.import_stream(ctx.state.sessionmaker, _chunks(path), principal=None, as_owner=as_owner)
    return time.perf_counter() - started, report.to_dict()


async def _copy_in(ctx: Context, owner: OwnerRef, texts: list[str], vectors: np.ndarray, model: str) -> float:
    rows = [
        (owner.id, uuid.uuid4(), text, content_hash(text), vectors[i], model, "import") for i, text in enumerate(texts)
    ]
    return await copy_insights(ctx, rows)


def _rate(rows: int, seconds: float) -> int:
    return round(rows / seconds) if seconds > 0 else 0


async def run(rows: int, reembed_rows: int) -> dict[str, Any]:
    ctx = await open_context(
        Sizes("portability", rows=rows, queries=0, ingest=0, quality_filler=0, concurrency_seconds=0)
    )
    try:
        model = ctx.state.embedder.model_id
        texts = fact_texts(rows, seed=11)
        rng = np.random.default_rng(11)
        vectors = rng.standard_normal((rows, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        alice = await _user(ctx, "alice")
        async with ctx.state.sessionmaker() as session, session.begin():
            await InsightRepository(session).bulk_load(alice.id, texts, vectors, embedding_model=model)
        await ctx.execute("ANALYZE insights")
        work = ctx.workdir / "portability"
        work.mkdir()

        out: dict[str, Any] = {"case": "export and import beside plain COPY", "rows": rows, "model": model}
        with PeakRss() as rss:
            export_s = await _export(ctx, alice, work / "alice.jsonl", with_vectors=True)
        copy_out_s = await _copy_out(ctx, alice, work / "alice.copy")
        out["export"] = {
            "ours_rows_per_s": _rate(rows, export_s),
            "plain_copy_out_rows_per_s": _rate(rows, copy_out_s),
            "ratio_ours_to_plain": round(copy_out_s / export_s, 3),
            "file_mib": round((work / "alice.jsonl").stat().st_size / 2**20, 1),
            "copy_file_mib": round((work / "alice.copy").stat().st_size / 2**20, 1),
            "peak_rss_growth_mib": rss.growth_mib,
        }

        await _user(ctx, "bob")
        import_s, report = await _import(ctx, work / "alice.jsonl", "user:bob")
        carol = await _user(ctx, "carol")
        copy_in_s = await _copy_in(ctx, carol, texts, vectors, model)
        out["import_with_vectors"] = {
            "ours_rows_per_s": _rate(rows, import_s),
            "plain_copy_in_rows_per_s": _rate(rows, copy_in_s),
            "ratio_ours_to_plain": round(copy_in_s / import_s, 3),
            "report": report,
        }

        small = work / "sample.jsonl"
        await _export(ctx, alice, work / "novec.jsonl", with_vectors=False)
        sample_texts: list[str] = []
        with small.open("wb") as fh:  # the first reembed_rows insight records, without vectors
            kept = 0
            for line in (work / "novec.jsonl").read_bytes().splitlines(keepends=True):
                record = json.loads(line)
                if record["type"] == "insight":
                    if kept >= reembed_rows:
                        continue
                    kept += 1
                    sample_texts.append(record["content"])
                elif record["type"] == "end":
                    record["records"] = kept
                    line = json.dumps(record).encode() + b"\n"
                fh.write(line)
        await _user(ctx, "dave")
        reembed_s, report = await _import(ctx, small, "user:dave")
        started = time.perf_counter()
        await ctx.state.embedder.embed_documents(sample_texts)
        model_s = time.perf_counter() - started
        out["import_without_vectors"] = {
            "rows": kept,
            "ours_rows_per_s": _rate(kept, reembed_s),
            "embedder_alone_texts_per_s": _rate(kept, model_s),
            "ratio_ours_to_embedder": round(model_s / reembed_s, 3),
            "report": report,
        }
        out["machine"] = machine()
        return out
    finally:
        await ctx.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.portability", description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000, help="insights exported and imported")
    parser.add_argument("--reembed-rows", type=int, default=1_000, help="insights imported without vectors")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(json.dumps(asyncio.run(run(args.rows, args.reembed_rows)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
