"""Retrieval quality over every set of ``benchmarks/quality_sets.py``, every mode, and the relevance cut.

``python -m benchmarks.quality_eval [--json PATH] [--sweep] [--fit]``

Each set is stored as insights of a user of its own (near-duplicate merge off, so every row stays
findable) in a fresh embedded PostgreSQL; questions go through ``SearchService`` with the query
vectors computed once. Reports recall@5/10 and MRR per set, per question type and per mode, the
precision and recall of the configured ``min_score`` cut over all sets, and the share of
questions about something not stored that get no hit above it. ``--fit`` prints the logistic
calibration fitted on every set together (the constants in ``SearchSettings``); ``--sweep``
ranks hybrid with the keyword weight of the hybrid calibration scaled. A run takes a few minutes on 2 cores.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Sizes
from benchmarks.context import Context, open_context
from benchmarks.quality_sets import QualitySet, all_sets
from benchmarks.service_cases import CachedEmbedder
from mosaic_memory.config import Settings
from mosaic_memory.insights.schemas import InsightCreate
from mosaic_memory.insights.service import InsightService
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.search.fusion import baseline_of
from mosaic_memory.search.schemas import SearchRequest
from mosaic_memory.search.service import SearchService

MODES = ("semantic", "keyword", "hybrid")


@dataclass
class Stored:
    qset: QualitySet
    principal: Principal


@dataclass
class Answer:
    """One question's hits: (content, score, per-signal scores)."""

    hits: list[tuple[str, float, dict[str, float]]]
    baseline: float = 0.0  # the mean cosine of the semantic candidates (fusion.baseline_of)


def metrics(answers: list[Answer], relevant: list[frozenset[str]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in (5, 10):
        out[f"recall_at_{k}"] = round(
            float(
                np.mean(
                    [len({h[0] for h in a.hits[:k]} & rel) / len(rel) for a, rel in zip(answers, relevant, strict=True)]
                )
            ),
            4,
        )
    rr = [
        next((1.0 / (i + 1) for i, h in enumerate(a.hits) if h[0] in rel), 0.0)
        for a, rel in zip(answers, relevant, strict=True)
    ]
    out["mrr"] = round(float(np.mean(rr)), 4)
    return out


async def store(ctx: Context, qset: QualitySet) -> Stored:
    no_merge = ctx.settings.model_copy(deep=True)
    no_merge.policy.insights.dedup_threshold = None
    async with ctx.state.sessionmaker() as session, session.begin():
        _, token = await ctx.state.owners.create_user(session, f"quality-{qset.name}")
        principal = await ctx.state.owners.authenticate(session, token)
        writer = InsightService(embedder=ctx.state.embedder, settings=no_merge)
        items = [InsightCreate(content=c) for c in dict.fromkeys(qset.docs)]
        for start in range(0, len(items), 500):
            await writer.create_many(session, principal, items[start : start + 500])
    return Stored(qset, principal)


async def answer(
    ctx: Context,
    embedder: CachedEmbedder,
    settings: Settings,
    stored: Stored,
    queries: list[str],
    mode: str,
    with_baseline: bool = False,
    **req: Any,
) -> list[Answer]:
    service = SearchService(embedder=embedder, settings=settings)
    out = []
    n = 10 * settings.search.candidate_multiplier
    for q in queries:
        async with ctx.state.sessionmaker() as session, session.begin():
            res = await service.search(session, stored.principal, SearchRequest(query=q, k=10, mode=mode, **req))
            baseline = 0.0
            if with_baseline:
                wide = await service.search(session, stored.principal, SearchRequest(query=q, k=n, mode="semantic"))
                baseline = baseline_of(
                    [h.scores["semantic"] for h in wide.hits],
                    candidates=n,
                    prior=settings.search.calibration_baseline_prior,
                )
        out.append(Answer([(h.content, h.score, dict(h.scores)) for h in res.hits], baseline))
    return out


async def evaluate(
    ctx: Context,
    embedder: CachedEmbedder,
    sets: list[Stored],
    settings: Settings,
    modes: tuple[str, ...] = MODES,
    with_baseline: bool = False,
) -> dict[str, Any]:
    """Every set × mode: metrics overall and per type, and the hits (for the cut and the fit)."""
    result: dict[str, Any] = {}
    for st in sets:
        qs = st.qset.questions
        rel = [q.relevant for q in qs]
        per_mode: dict[str, Any] = {}
        for mode in modes:
            wb = with_baseline and mode == "hybrid"
            ans = await answer(ctx, embedder, settings, st, [q.text for q in qs], mode, wb, min_score=None)
            none = await answer(ctx, embedder, settings, st, st.qset.unanswerable, mode, wb, min_score=None)
            types = {}
            for t in dict.fromkeys(q.type for q in qs):
                idx = [i for i, q in enumerate(qs) if q.type == t]
                types[t] = {"n": len(idx), **metrics([ans[i] for i in idx], [rel[i] for i in idx])}
            per_mode[mode] = {"all": metrics(ans, rel), "types": types, "_answers": ans, "_none": none}
        result[st.qset.name] = per_mode
    return result


def cut_report(result: dict[str, Any], sets: list[Stored], cut: float) -> dict[str, Any]:
    """Precision and recall of ``score >= cut`` per mode over all sets (top-10 hits), and no-answer queries."""
    report: dict[str, Any] = {}
    for mode in MODES:
        tp = fp = total_rel = 0
        clean = asked = 0
        for st in sets:
            data = result[st.qset.name][mode]
            for a, q in zip(data["_answers"], st.qset.questions, strict=True):
                total_rel += len(q.relevant)
                for content, score, _ in a.hits:
                    if score >= cut:
                        tp += content in q.relevant
                        fp += content not in q.relevant
            for a in data["_none"]:
                asked += 1
                clean += not any(score >= cut for _, score, _ in a.hits)
        report[mode] = {
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / total_rel, 4) if total_rel else None,
            "unanswerable_with_no_hit_above": f"{clean}/{asked}",
        }
    return report


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> np.ndarray:
    """Weights (last is the bias) of sigmoid(x @ w[:-1] + w[-1]) by Newton's method, classes balanced.

    Balanced: relevant and unrelated hits weigh the same in total, so 0.5 is the point where a
    hit is as likely one as the other whatever the share of relevant hits in a top 10."""
    X = np.hstack([x, np.ones((len(x), 1))])
    sw = np.where(y > 0, len(y) / (2 * max(1, y.sum())), len(y) / (2 * max(1, (1 - y).sum())))
    w = np.zeros(X.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(X @ w, -30, 30)))
        grad = X.T @ (sw * (p - y)) + l2 * w
        hess = (X * (sw * p * (1 - p))[:, None]).T @ X + l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def fit(result: dict[str, Any], sets: list[Stored], keyword_power: float) -> dict[str, Any]:
    """Logistic calibration per mode from the hybrid hits of every set together (relevant = 1).

    Features: cosine, cosine above the query's baseline, keyword coverage ** ``keyword_power``
    (fusion.Calibration)."""
    x: list[list[float]] = []
    y: list[int] = []
    for st in sets:
        data = result[st.qset.name]["hybrid"]
        pairs = list(zip(data["_answers"], [q.relevant for q in st.qset.questions], strict=True))
        pairs += [(a, frozenset()) for a in data["_none"]]
        for a, rel in pairs:
            for content, _, scores in a.hits:
                cos = scores.get("semantic", 0.0)
                x.append([cos, cos - a.baseline, scores.get("keyword", 0.0) ** keyword_power])
                y.append(int(content in rel))
    X, Y = np.asarray(x), np.asarray(y, dtype=float)
    out: dict[str, Any] = {}
    for mode, cols in (("semantic", [0, 1]), ("keyword", [2]), ("hybrid", [0, 1, 2])):
        out[mode] = [round(float(v), 4) for v in fit_logistic(X[:, cols], Y)]
    return out


def markdown(result: dict[str, Any], cuts: dict[str, Any], cut: float) -> str:
    lines = ["| set | mode | recall@5 | recall@10 | MRR |", "| --- | --- | --- | --- | --- |"]
    for name, per_mode in result.items():
        for mode in MODES:
            m = per_mode[mode]["all"]
            lines.append(f"| {name} | {mode} | {m['recall_at_5']} | {m['recall_at_10']} | {m['mrr']} |")
    lines += ["", "| set | type | n | " + " | ".join(f"{m} R@5 / R@10 / MRR" for m in MODES) + " |"]
    lines.append("| --- | --- | --- | " + " | ".join("---" for _ in MODES) + " |")
    for name, per_mode in result.items():
        for t, first in per_mode["semantic"]["types"].items():
            cells = []
            for mode in MODES:
                m = per_mode[mode]["types"][t]
                cells.append(f"{m['recall_at_5']} / {m['recall_at_10']} / {m['mrr']}")
            lines.append(f"| {name} | {t} | {first['n']} | " + " | ".join(cells) + " |")
    lines += ["", f"Cut `score >= {cut}` over the top-10 hits of every set:", ""]
    lines += [
        "| mode | precision | recall | unanswerable questions with no hit above the cut |",
        "| --- | --- | --- | --- |",
    ]
    for mode in MODES:
        c = cuts[mode]
        lines.append(f"| {mode} | {c['precision']} | {c['recall']} | {c['unanswerable_with_no_hit_above']} |")
    return "\n".join(lines) + "\n"


def strip_private(result: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {mode: {k: v for k, v in data.items() if not k.startswith("_")} for mode, data in per_mode.items()}
        for name, per_mode in result.items()
    }


async def main_async(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    ctx = await open_context(Sizes.parse(None, True, None))
    try:
        sets = [await store(ctx, qs) for qs in all_sets()]
        queries = sorted(
            {q.text for st in sets for q in st.qset.questions} | {q for st in sets for q in st.qset.unanswerable}
        )
        vectors = await ctx.state.embedder.embed_documents(queries)
        cached = CachedEmbedder(ctx.state.embedder, dict(zip(queries, vectors, strict=True)))
        settings = ctx.settings
        cut = args.cut if args.cut is not None else getattr(settings.search, "min_score", 0.5)
        result = await evaluate(ctx, cached, sets, settings, with_baseline=args.fit or args.dump is not None)
        cuts = cut_report(result, sets, cut)
        doc: dict[str, Any] = {"modes": strip_private(result), "cut": cut, "cut_report": cuts}
        print(markdown(result, cuts, cut))
        for c in args.also_cut:
            print(f"cut {c}:", json.dumps(cut_report(result, sets, c)))
        if args.dump:
            rows = []
            for st in sets:
                for mode in MODES:
                    data = result[st.qset.name][mode]
                    pairs = list(zip(data["_answers"], [q.relevant for q in st.qset.questions], strict=True))
                    pairs += [(a, frozenset()) for a in data["_none"]]
                    for qi, (a, rel) in enumerate(pairs):
                        for rank, (content, score, scores) in enumerate(a.hits):
                            rows.append(
                                [
                                    st.qset.name,
                                    mode,
                                    qi,
                                    rank,
                                    score,
                                    scores.get("semantic"),
                                    scores.get("keyword"),
                                    int(content in rel),
                                    int(not rel),
                                ]
                            )
            args.dump.write_text(json.dumps(rows))
        if args.fit:
            doc["fit"] = fit(result, sets, settings.search.calibration_keyword_power)
            print("fit:", json.dumps(doc["fit"]))
        if args.sweep:
            sweep = {}
            for w in args.sweep:
                s = settings.model_copy(deep=True)
                a, g, b, c = s.search.calibration_hybrid  # cosine, above baseline, coverage, bias
                s.search.calibration_hybrid = (a, g, b * w, c)
                r = await evaluate(ctx, cached, sets, s, ("hybrid",))
                sweep[str(w)] = {n: r[n]["hybrid"]["all"] for n in r}
                print(f"keyword weight x{w}:", json.dumps(sweep[str(w)]), flush=True)
            doc["sweep"] = sweep
        doc["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"[quality] {doc['seconds']} s")
        if args.json:
            args.json.write_text(json.dumps(doc, indent=2) + "\n")
    finally:
        await ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality_eval", description=__doc__)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--cut", type=float, default=None, help="relevance cut to report (default: the configured)")
    parser.add_argument("--also-cut", type=float, nargs="*", default=[])
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--dump", type=Path, default=None, help="every hit's signals and label, as JSON rows")
    parser.add_argument("--sweep", type=float, nargs="*", default=None)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
