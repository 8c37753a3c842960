"""The optional reranker's quality and latency: ``python -m benchmarks.rerank_eval [--url URL ...]``.

Every set of ``benchmarks/quality_sets.py`` is stored as in ``quality_eval``; each question is
searched in the default (hybrid) mode without and with a reranker over the top
``search.rerank_candidates`` hits, and the run reports recall@5/10 and MRR per set for both, the
search's latency p50 / p95 for both (query vectors computed beforehand, so the difference is the
reranker) and the reranker call alone.

``--url`` measures a real rerank server (TEI's ``/rerank``, or the Cohere/Jina style with
``--protocol cohere --model M``), for example a text-embeddings-inference container serving
``cross-encoder/ms-marco-MiniLM-L-6-v2``. Without it the run starts a stand-in on a real loopback
socket speaking TEI's protocol, because no cross-encoder can be installed offline here: no PyPI
package ships one's weights (sentence-transformers' ``CrossEncoder``, FlashRank, ``rerankers``
and ``mxbai-rerank`` all download them from a hub at run time). The stand-in scores each text by
the bundled all-MiniLM-L6-v2's cosine to the query, mapped to [0, 1]: the same size of model as
the MiniLM-L6 cross-encoders (6 layers, 384 wide) running over the same 30 texts on this CPU, so
its latency is the figure to expect from a local one (a cross-encoder reads query and text
together, somewhat longer inputs); its quality figures only show the plumbing, since it knows
nothing a bi-encoder does not, and the report labels them so.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from benchmarks.common import Sizes, now_ms, ratio, stats
from benchmarks.context import Context, open_context
from benchmarks.quality_eval import Answer, Stored, metrics, store
from benchmarks.quality_sets import all_sets
from benchmarks.service_cases import CachedEmbedder
from embeddings import Embedder
from embeddings.rerank import Reranker, get_reranker
from mosaic_memory.search.schemas import SearchRequest
from mosaic_memory.search.service import SearchService

STANDIN = "stand-in: bundled bi-encoder cosine over TEI /rerank (not a cross-encoder)"


class _RerankRequest(BaseModel):
    query: str
    texts: list[str]


class _Scored(BaseModel):
    index: int
    score: float


def standin_app(embedder: Embedder) -> FastAPI:
    """TEI's ``POST /rerank``, scored by ``embedder``'s cosine of each text to the query."""
    app = FastAPI()

    @app.post("/rerank")
    async def rerank(req: _RerankRequest) -> list[_Scored]:
        q = await embedder.embed_query(req.query)
        docs = await embedder.embed_documents(req.texts)
        cos = docs @ q / np.maximum(np.linalg.norm(docs, axis=1) * float(np.linalg.norm(q)), 1e-12)
        return [_Scored(index=i, score=float((c + 1) / 2)) for i, c in enumerate(cos)]

    return app


@asynccontextmanager
async def standin_server(embedder: Embedder) -> AsyncIterator[str]:
    """The stand-in on a free loopback port, in this event loop; yields its base URL."""
    sock = socket.socket()  # kept bound and handed to uvicorn: no other process can take the port
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(standin_app(embedder), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():  # it failed to start: say why, rather than wait for ever
                task.result()
                raise RuntimeError("the stand-in reranker stopped before it started")
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def ask(
    ctx: Context, service: SearchService, stored: Stored, questions: list[str]
) -> tuple[list[Answer], list[float]]:
    """Each question's hybrid hits and the search's time (its own transaction, as a request)."""
    answers, times = [], []
    for q in questions:
        async with ctx.state.sessionmaker() as session, session.begin():
            t0 = now_ms()
            res = await service.search(session, stored.principal, SearchRequest(query=q, k=10, mode="hybrid"))
            times.append(now_ms() - t0)
        answers.append(Answer([(h.content, h.score, dict(h.scores)) for h in res.hits]))
    return answers, times


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = await open_context(Sizes.parse(None, True, None))
    try:
        sets = [await store(ctx.state, ctx.settings, qs) for qs in all_sets()]
        queries = sorted({q.text for st in sets for q in st.qset.questions})
        vectors = await ctx.state.embedder.embed_documents(queries)
        cached = CachedEmbedder(ctx.state.embedder, dict(zip(queries, vectors, strict=True)))
        settings = ctx.settings
        async with AsyncExitStack() as stack:
            if args.url:
                url, label = args.url, f"{args.protocol} /rerank at {args.url}"
            else:
                url, label = await stack.enter_async_context(standin_server(ctx.state.embedder)), STANDIN
            options: dict[str, Any] = {"base_url": url, "protocol": args.protocol}
            if args.model:
                options["model"] = args.model
            reranker: Reranker = get_reranker("http-rerank", **options)
            stack.push_async_callback(reranker.aclose)
            plain = SearchService(embedder=cached, settings=settings)
            reranked = SearchService(embedder=cached, settings=settings, reranker=reranker)
            report: dict[str, Any] = {"reranker": label, "candidates": settings.search.rerank_candidates, "sets": {}}
            all_plain: list[float] = []
            all_reranked: list[float] = []
            for st in sets:
                qs = st.qset.questions
                relevant = [q.relevant for q in qs]
                texts = [q.text for q in qs]
                await ask(ctx, reranked, st, texts[:3])  # warm the pool, the plans and the reranker
                without, t_plain = await ask(ctx, plain, st, texts)
                with_rr, t_rr = await ask(ctx, reranked, st, texts)
                if any(a.hits and "rerank" not in a.hits[0][2] for a in with_rr):
                    # the service answers with the fused order when its reranker fails: not a measurement
                    raise RuntimeError(f"the reranker failed during the {st.qset.name} set (see the log)")
                all_plain += t_plain
                all_reranked += t_rr
                report["sets"][st.qset.name] = {
                    "hybrid": metrics(without, relevant),
                    "hybrid_reranked": metrics(with_rr, relevant),
                }
            call_times = []
            n = settings.search.rerank_candidates
            sample = ([h[0] for h in without[0].hits] or ["nothing"]) * n
            for q in queries[:50]:
                t = now_ms()
                await reranker.rerank(q, sample[:n])
                call_times.append(now_ms() - t)
            report["latency_ms"] = {
                "search_hybrid": stats(all_plain),
                "search_hybrid_reranked": stats(all_reranked),
                "rerank_call_alone": stats(call_times),
            }
            lat = report["latency_ms"]
            plain_p50, reranked_p50 = lat["search_hybrid"]["p50_ms"], lat["search_hybrid_reranked"]["p50_ms"]
            lat["reranked_p50_over_plain"] = ratio(reranked_p50, plain_p50)
        report["seconds"] = round(time.perf_counter() - t0, 1)
        return report
    finally:
        await ctx.close()


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Reranker: {report['reranker']}, over the top {report['candidates']} hybrid hits.",
        "",
        "| set | hybrid R@5 / R@10 / MRR | reranked R@5 / R@10 / MRR |",
        "| --- | --- | --- |",
    ]
    for name, m in report["sets"].items():
        a, b = m["hybrid"], m["hybrid_reranked"]
        lines.append(
            f"| {name} | {a['recall_at_5']} / {a['recall_at_10']} / {a['mrr']} "
            f"| {b['recall_at_5']} / {b['recall_at_10']} / {b['mrr']} |"
        )
    lat = report["latency_ms"]
    lines += ["", "| latency, ms | p50 | p95 |", "| --- | --- | --- |"]
    for key in ("search_hybrid", "search_hybrid_reranked", "rerank_call_alone"):
        lines.append(f"| {key} | {lat[key]['p50_ms']} | {lat[key]['p95_ms']} |")
    lines.append(f"\nreranked / plain search, p50: {lat['reranked_p50_over_plain']}×")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rerank_eval", description=__doc__)
    parser.add_argument("--url", default=None, help="a real rerank server's base URL (default: the stand-in)")
    parser.add_argument("--protocol", choices=("tei", "cohere"), default="tei")
    parser.add_argument("--model", default=None, help="model name for the Cohere-style protocol")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    print(markdown(report))
    print(f"[rerank] {report['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
