"""Cases through the running service: b (text search over HTTP), c (ingest with embedding).

The service runs as a real uvicorn server in a child process (``python -m mosaic_memory serve``)
on 127.0.0.1, joined to the run's embedded PostgreSQL; the client is httpx in this process.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import text

from benchmarks.common import (
    CaseResult,
    CpuSplit,
    K,
    Skip,
    fact_texts,
    now_ms,
    postmaster_pid,
    question_texts,
    ratio,
    stats,
)
from benchmarks.context import ADMIN_KEY, Context
from benchmarks.vector_cases import ensure_loaded
from embeddings import Embedder, FloatArray, get_embedder
from mosaic_memory.insights.repository import InsightRepository
from mosaic_memory.models import utc_now
from mosaic_memory.search.schemas import Mode, SearchRequest
from mosaic_memory.search.service import SearchService

REPO_ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def running_server(ctx: Context, *, provider: str | None = None) -> AsyncIterator[str]:
    """A uvicorn server of the service on a free port; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "MOSAIC_DATA_DIR": str(ctx.workdir),
        "MOSAIC_TIER": "local",
        "MOSAIC_ADMIN_KEY": ADMIN_KEY,
        "MOSAIC_CONFIG_FILE": "",
        "MOSAIC_LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    if provider:
        env["MOSAIC_EMBEDDINGS__PROVIDER"] = provider
    log = open(ctx.workdir / f"server-{port}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "mosaic_memory", "serve", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    ctx.server_pids[base] = proc.pid
    try:
        deadline = time.monotonic() + 180
        async with httpx.AsyncClient(base_url=base, timeout=2) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {proc.returncode}: {_tail(ctx, port)}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not become ready in 180 s: {_tail(ctx, port)}")
                await asyncio.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def server_for(ctx: Context, provider: str | None = None) -> str:
    """The base URL of a server with ``provider``'s model, started once per run and kept."""
    key = provider or "default"
    if key not in ctx.servers:
        ctx.servers[key] = await ctx.stack.enter_async_context(running_server(ctx, provider=provider))
    return ctx.servers[key]


def _tail(ctx: Context, port: int) -> str:
    try:
        return (ctx.workdir / f"server-{port}.log").read_text()[-2000:]
    except OSError:
        return "(no log)"


class CachedEmbedder:
    """Answers embed_query from vectors computed beforehand: the search without the model."""

    def __init__(self, inner: Embedder, vectors: dict[str, FloatArray]) -> None:
        self.inner = inner
        self.vectors = vectors
        self.name = inner.name
        self.model_id = inner.model_id
        self.dimensions = inner.dimensions

    async def embed_query(self, text: str) -> FloatArray:
        return self.vectors[text]

    async def embed_documents(self, texts: Sequence[str]) -> FloatArray:
        return np.stack([self.vectors[t] for t in texts])

    async def warm_up(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def _timed_requests(
    client: httpx.AsyncClient, calls: Sequence[tuple[str, str, Any]], headers: dict[str, str]
) -> list[float]:
    times = []
    for method, path, body in calls:
        t0 = now_ms()
        r = await client.request(method, path, json=body, headers=headers)
        times.append(now_ms() - t0)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path} answered {r.status_code}: {r.text[:300]}")
    return times


# --- b: text search over HTTP -----------------------------------------------------------------


async def case_b(ctx: Context) -> CaseResult:
    data = await ensure_loaded(ctx)
    n_q = ctx.sizes.queries
    questions = question_texts(max(n_q, 50), seed=11)[:n_q]
    res = CaseResult("b", f"Text search over HTTP, scope {len(data.vectors):,} rows, k=10, real model")
    headers = {"Authorization": f"Bearer {ctx.user_token}"}
    embedder = ctx.state.embedder

    # the model alone, in this process
    for qtext in questions[:5]:
        await embedder.embed_query(qtext)
    embed_times, cache = [], {}
    for qtext in questions:
        t0 = now_ms()
        cache[qtext] = await embedder.embed_query(qtext)
        embed_times.append(now_ms() - t0)

    # the service and database in-process, embedding answered from the cache
    inproc: dict[str, Any] = {}
    service = SearchService(embedder=CachedEmbedder(embedder, cache), settings=ctx.settings)
    async with ctx.state.sessionmaker() as session, session.begin():
        principal = await ctx.state.owners.authenticate(session, ctx.user_token)
    for mode in ("semantic", "hybrid"):
        times = []
        for i, qtext in enumerate([*questions[:5], *questions]):
            t0 = now_ms()
            async with ctx.state.sessionmaker() as session, session.begin():
                await service.search(session, principal, SearchRequest(query=qtext, k=K, mode=mode))
            if i >= 5:
                times.append(now_ms() - t0)
        inproc[mode] = stats(times)

    bump = await _bump_access_cost(ctx, n_q)

    http: dict[str, Any] = {}
    base = await server_for(ctx)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await _timed_requests(client, [("GET", "/healthz", None)] * 20, {})
        healthz = stats(await _timed_requests(client, [("GET", "/healthz", None)] * max(n_q, 100), {}))
        for mode in ("semantic", "hybrid"):
            calls = [("POST", "/v1/search", {"query": q, "k": K, "mode": mode}) for q in questions]
            await _timed_requests(client, calls[:5], headers)
            http[mode] = stats(await _timed_requests(client, calls, headers))
        # Every mode under the same load, each with its CPU split: which side a search's CPU goes to.
        pids = {"server_pid": ctx.server_pids[base], "postgres_pid": postmaster_pid(ctx.workdir)}
        by_mode = {
            mode: await _concurrent(
                base, headers, questions, clients=8, seconds=ctx.sizes.concurrency_seconds, pids=pids, mode=mode
            )
            for mode in ("hybrid", "semantic", "keyword")
        }

    embed = stats(embed_times)
    breakdown = {}
    for mode in ("semantic", "hybrid"):
        overhead = http[mode]["p50_ms"] - embed["p50_ms"] - inproc[mode]["p50_ms"]
        breakdown[mode] = {
            "http_total": http[mode],
            "database_and_service_in_process": inproc[mode],
            "service_overhead_p50_ms": round(overhead, 3),
            "overhead_minus_healthz_p50_ms": round(overhead - healthz["p50_ms"], 3),
            "http_p50_over_model_alone": ratio(http[mode]["p50_ms"], embed["p50_ms"]),
        }
    res.data = {
        "rows_in_scope": len(data.vectors),
        "queries": n_q,
        "embed_query_alone": embed,
        "healthz": healthz,
        "modes": breakdown,
        "concurrent": by_mode["hybrid"],  # the default mode: T4
        "concurrent_other_modes": {m: c for m, c in by_mode.items() if m != "hybrid"},
        "bump_access_10_rows": bump,
    }
    res.notes.append(
        "The table holds the synthetic vectors of case a (the user reads its 100 owners), queries are embedded "
        "with the real model; service overhead = HTTP p50 − embed_query p50 − (service + SQL in-process with "
        "the query vector cached) p50. Server and client share the machine's cores."
    )
    return res


async def _bump_access_cost(ctx: Context, samples: int) -> dict[str, float]:
    """What counting a recall costs: the UPDATE of 10 hits' access_count that every search makes."""
    async with ctx.state.sessionmaker() as session:
        keys = (
            await session.execute(
                text("SELECT owner_id, id FROM insights ORDER BY random() LIMIT :n"), {"n": samples * 10}
            )
        ).all()
    times = []
    for start in range(0, len(keys) - 9, 10):
        t0 = now_ms()
        async with ctx.state.sessionmaker() as session, session.begin():
            await InsightRepository(session).bump_access(
                [(k.owner_id, k.id) for k in keys[start : start + 10]], utc_now()
            )
        times.append(now_ms() - t0)
    return stats(times)


async def _concurrent(
    base: str,
    headers: dict[str, str],
    questions: list[str],
    *,
    clients: int,
    seconds: float,
    pids: dict[str, int | None],
    mode: Mode = "hybrid",
) -> dict[str, Any]:
    stop = time.monotonic() + seconds
    times: list[float] = []
    errors = 0

    async def worker(offset: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        i = offset
        while time.monotonic() < stop:
            body = {"query": questions[i % len(questions)], "k": K, "mode": mode}
            t0 = now_ms()
            r = await client.post("/v1/search", json=body, headers=headers)
            times.append(now_ms() - t0)
            if r.status_code != 200:
                errors += 1
            i += clients

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        t0 = time.monotonic()
        cpu = CpuSplit(**pids)
        await asyncio.gather(*(worker(i, client) for i in range(clients)))
        elapsed = time.monotonic() - t0
        spent = cpu.per_unit(len(times))
    return {
        "clients": clients,
        "mode": mode,
        "seconds": round(elapsed, 2),
        "searches": len(times),
        "searches_per_s": round(len(times) / elapsed, 1),
        "errors": errors,
        "latency": stats(times),
        "cpu": spent,
    }


# --- c: ingest with embedding -----------------------------------------------------------------


async def case_c(ctx: Context) -> CaseResult:
    n = ctx.sizes.ingest
    res = CaseResult("c", f"Ingest with embedding through the REST API ({n:,} insights) and single writes")
    out: dict[str, Any] = {}
    out["sentence-transformers"] = await _ingest(ctx, ctx.state.embedder, provider=None, n=n, seed=21)
    onnx: Embedder | None
    try:
        onnx = get_embedder("onnx", cache_dir=str(ctx.workdir / "models"))
        await onnx.warm_up()
    except Exception as exc:
        onnx = None
        out["onnx"] = Skip(f"the onnx provider is not usable here: {type(exc).__name__}: {exc}").as_dict()
        print(f"[bench] note: onnx rows skipped ({exc})", flush=True)
    if onnx is not None:
        # The service refuses vectors of another model in one database; this run's database holds
        # synthetic and sentence-transformers vectors of other owners, so forget the recorded model.
        await ctx.execute("DELETE FROM instance_meta WHERE key = 'embedding'")
        try:
            out["onnx"] = await _ingest(ctx, onnx, provider="onnx", n=n, seed=22)
        finally:
            await onnx.aclose()
    res.data = {"insights": n, "providers": out}
    res.notes.append(
        "ingest/s = insights written through POST /v1/insights/batch (100 per request, the service's near-duplicate "
        "check included) per second of wall time; model alone = embed_documents on the same texts in batches of 100 "
        "in this process while the server idles. Search p50/p95 are HTTP hybrid searches over that user's insights."
    )
    return res


async def _ingest(ctx: Context, embedder: Embedder, *, provider: str | None, n: int, seed: int) -> dict[str, Any]:
    texts = fact_texts(n + 200, seed=seed)
    batch_texts, single_texts = texts[:n], texts[n : n + 100]
    batch = 100

    t0 = time.perf_counter()
    for start in range(0, n, batch):
        await embedder.embed_documents(batch_texts[start : start + batch])
    model_alone = n / (time.perf_counter() - t0)

    base = await server_for(ctx, provider)
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        r = await client.post("/v1/admin/users", json={"name": f"bench-ingest-{provider or 'st'}"}, headers=admin)
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['api_key']}"}
        created = merged = 0
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            items = [{"content": t} for t in batch_texts[start : start + batch]]
            r = await client.post("/v1/insights/batch", json={"items": items}, headers=headers)
            if r.status_code != 201:
                raise RuntimeError(f"batch ingest answered {r.status_code}: {r.text[:300]}")
            created += r.json()["created"]
            merged += r.json()["merged"]
        ingest = n / (time.perf_counter() - t0)
        singles = stats(
            await _timed_requests(client, [("POST", "/v1/insights", {"content": t}) for t in single_texts], headers)
        )
        questions = question_texts(ctx.sizes.queries, seed=seed + 1)
        calls = [("POST", "/v1/search", {"query": q, "k": K}) for q in questions]
        await _timed_requests(client, calls[:5], headers)
        search = stats(await _timed_requests(client, calls, headers))
    return {
        "model_id": embedder.model_id,
        "model_alone_texts_per_s": round(model_alone, 1),
        "ingest_per_s": round(ingest, 1),
        "ratio_ingest_to_model": ratio(ingest, model_alone),
        "created": created,
        "merged_as_near_duplicates": merged,
        "single_write": singles,
        "search_at_this_size_hybrid": search,
    }
