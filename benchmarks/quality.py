"""Case q: retrieval quality on the project's own corpus, fusion settings, the dedup threshold.

Stored per topic: the fact and one paraphrase (two sessions saying the same thing: both answer
the topic's questions), the related-but-distinct fact, plus unrelated filler facts. Questions go
through the service's SearchService (semantic, keyword, hybrid) with the query vector cached.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common import CaseResult, Skip, fact_texts, ratio
from benchmarks.context import Context
from benchmarks.corpus import IDENTIFIERS, TOPICS
from benchmarks.service_cases import CachedEmbedder
from embeddings import Embedder, get_embedder
from mosaic_memory.insights.schemas import InsightCreate
from mosaic_memory.insights.service import InsightService
from mosaic_memory.search.schemas import SearchRequest
from mosaic_memory.search.service import SearchService

KS = (1, 5, 10)


def _metrics(ranked: list[list[str]], relevant: list[set[str]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in KS:
        out[f"recall_at_{k}"] = round(
            float(np.mean([len(set(r[:k]) & rel) / len(rel) for r, rel in zip(ranked, relevant, strict=True)])), 4
        )
    rr = []
    for r, rel in zip(ranked, relevant, strict=True):
        rr.append(next((1.0 / (i + 1) for i, c in enumerate(r) if c in rel), 0.0))
    out["mrr"] = round(float(np.mean(rr)), 4)
    return out


async def case_q(ctx: Context) -> CaseResult:
    res = CaseResult("q", f"Retrieval quality: {len(TOPICS)} topics, {2 * len(TOPICS)} questions")
    embedder = ctx.state.embedder
    stored = [t for topic in TOPICS for t in (topic.fact, topic.same[0], topic.other)]
    stored += [fact for fact, _ in IDENTIFIERS]
    filler = fact_texts(ctx.sizes.quality_filler, seed=31)
    paraphrase_questions = [q for topic in TOPICS for q in topic.questions]
    questions = paraphrase_questions + [q for _, q in IDENTIFIERS]
    relevant = [{topic.fact, topic.same[0]} for topic in TOPICS for _ in topic.questions]
    relevant += [{fact} for fact, _ in IDENTIFIERS]
    n_para = len(paraphrase_questions)

    # A user of its own; stored without the near-duplicate merge so every item stays findable.
    no_merge = ctx.settings.model_copy(deep=True)
    no_merge.policy.insights.dedup_threshold = None
    async with ctx.state.sessionmaker() as session, session.begin():
        _, token = await ctx.state.owners.create_user(session, "bench-quality")
        principal = await ctx.state.owners.authenticate(session, token)
        writer = InsightService(embedder=embedder, settings=no_merge)
        items = [InsightCreate(content=c) for c in [*stored, *filler]]
        for start in range(0, len(items), 500):
            await writer.create_many(session, principal, items[start : start + 500])

    qvecs = await embedder.embed_documents(questions)
    cache = {q: v for q, v in zip(questions, qvecs, strict=True)}
    cached = CachedEmbedder(embedder, cache)

    async def evaluate(mode: str, **search: Any) -> dict[str, Any]:
        """Metrics over all questions, plus the paraphrase and the exact-token subsets."""
        settings = ctx.settings.model_copy(deep=True)
        for key, value in search.items():
            setattr(settings.search, key, value)
        service = SearchService(embedder=cached, settings=settings)
        ranked = []
        for q in questions:
            async with ctx.state.sessionmaker() as session, session.begin():
                out = await service.search(session, principal, SearchRequest(query=q, k=10, mode=mode))
            ranked.append([h.content for h in out.hits])
        return {
            **_metrics(ranked, relevant),
            "paraphrase_mrr": _metrics(ranked[:n_para], relevant[:n_para])["mrr"],
            "identifier_mrr": _metrics(ranked[n_para:], relevant[n_para:])["mrr"],
        }

    cfg = ctx.settings.search
    modes = {mode: await evaluate(mode) for mode in ("semantic", "keyword", "hybrid")}
    mult = {str(m): await evaluate("hybrid", candidate_multiplier=m) for m in (1, 2, 4, 8)}
    a, g, b, c = cfg.calibration_hybrid
    weights = {
        str(w): await evaluate("hybrid", calibration_hybrid=(a, g, b * w, c)) for w in (2.0, 1.0, 0.5, 0.25, 0.0)
    }

    # the same semantic ranking by exact cosine in numpy, per embedding provider
    providers: dict[str, Any] = {
        "sentence-transformers": await _exact_semantic(embedder, stored, filler, questions, relevant)
    }
    onnx = await _onnx(ctx)
    if isinstance(onnx, Skip):
        providers["onnx"] = onnx.as_dict()
        print(f"[bench] note: onnx quality rows skipped ({onnx.reason})", flush=True)
    else:
        providers["onnx"] = await _exact_semantic(onnx, stored, filler, questions, relevant)
        await onnx.aclose()
    if "recall_at_10" in providers.get("onnx", {}):
        providers["onnx"]["recall_at_10_over_sentence_transformers"] = ratio(
            providers["onnx"]["recall_at_10"], providers["sentence-transformers"]["recall_at_10"]
        )

    dedup = {"sentence-transformers": await _dedup(embedder, ctx.settings.policy.insights.dedup_threshold)}
    if not isinstance(onnx, Skip):
        onnx2 = await _onnx(ctx)
        if not isinstance(onnx2, Skip):
            dedup["onnx"] = await _dedup(onnx2, ctx.settings.policy.insights.dedup_threshold)
            await onnx2.aclose()

    res.data = {
        "corpus": {"topics": len(TOPICS), "stored": len(stored), "filler": len(filler), "questions": len(questions)},
        "config": {
            "calibration_hybrid": list(cfg.calibration_hybrid),
            "candidate_multiplier": cfg.candidate_multiplier,
        },
        "modes": modes,
        "hybrid_by_candidate_multiplier": mult,
        "hybrid_by_keyword_weight": weights,
        "providers_exact_semantic": providers,
        "dedup": dedup,
    }
    res.notes.append(
        "Two stored items answer each question (the fact and a paraphrase from another session); recall@k is the "
        "share of them in the top k, MRR uses the first one found. Corpus stored with the near-duplicate merge off."
    )
    return res


async def _onnx(ctx: Context) -> Embedder | Skip:
    try:
        onnx = get_embedder("onnx", cache_dir=str(ctx.workdir / "models"))
        await onnx.warm_up()
        return onnx
    except Exception as exc:
        return Skip(f"the onnx provider is not usable here: {type(exc).__name__}: {exc}")


async def _exact_semantic(
    embedder: Embedder, stored: list[str], filler: list[str], questions: list[str], relevant: list[set[str]]
) -> dict[str, Any]:
    corpus = [*stored, *filler]
    docs = await embedder.embed_documents(corpus)
    queries = np.stack([await embedder.embed_query(q) for q in questions])
    sims = queries @ docs.T
    ranked = [[corpus[j] for j in np.argsort(-row)[:10]] for row in sims]
    return {"model_id": embedder.model_id, **_metrics(ranked, relevant)}


def _dist(values: np.ndarray) -> dict[str, float]:
    return {
        name: round(float(np.percentile(values, p)), 4)
        for name, p in (("min", 0), ("p5", 5), ("p25", 25), ("p50", 50), ("p75", 75), ("p95", 95), ("max", 100))
    }


async def _dedup(embedder: Embedder, current: float | None) -> dict[str, Any]:
    """Cosine of true paraphrase pairs vs distinct-but-related pairs, and the best separating threshold."""
    same_pairs, other_pairs = [], []
    for t in TOPICS:
        same_pairs += [(t.fact, t.same[0]), (t.fact, t.same[1]), (t.same[0], t.same[1])]
        other_pairs += [(t.fact, t.other), (t.same[0], t.other)]
    texts = sorted({x for pair in [*same_pairs, *other_pairs] for x in pair})
    vecs = dict(zip(texts, await embedder.embed_documents(texts), strict=True))

    def cos(pairs: list[tuple[str, str]]) -> np.ndarray:
        return np.asarray([float(vecs[a] @ vecs[b]) for a, b in pairs])

    same, other = cos(same_pairs), cos(other_pairs)
    best_t, best_acc = 0.0, -1.0
    for cut in np.arange(0.50, 0.995, 0.005):
        acc = ((same >= cut).mean() + (other < cut).mean()) / 2  # balanced accuracy
        if acc > best_acc:
            best_t, best_acc = float(cut), float(acc)
    at_current = None
    if current is not None:
        at_current = {
            "threshold": current,
            "paraphrases_merged": round(float((same >= current).mean()), 4),
            "distinct_merged_wrongly": round(float((other >= current).mean()), 4),
        }
    contradictions = {f"{t.fact} / {t.other}": round(float(vecs[t.fact] @ vecs[t.other]), 4) for t in TOPICS[:3]}
    contradictions[f"{TOPICS[20].fact} / {TOPICS[20].other}"] = round(
        float(vecs[TOPICS[20].fact] @ vecs[TOPICS[20].other]), 4
    )
    return {
        "model_id": embedder.model_id,
        "paraphrase_pairs": {"n": len(same), **_dist(same)},
        "distinct_pairs": {"n": len(other), **_dist(other)},
        "best_threshold": round(best_t, 3),
        "best_balanced_accuracy": round(best_acc, 4),
        "at_configured_threshold": at_current,
        "examples_distinct": contradictions,
        "distinct_above_paraphrase_median": int((other >= np.median(same)).sum()),
    }
