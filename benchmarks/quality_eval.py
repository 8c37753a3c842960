"""Retrieval quality over every set of ``benchmarks/quality_sets.py``, every mode, and the relevance cut.

``python -m benchmarks.quality_eval [--json PATH] [--sweep] [--fit]``

Each set is stored as insights of a user of its own (near-duplicate merge off, so every row stays
findable) in a fresh embedded PostgreSQL; questions go through ``SearchService`` with the query
vectors computed once. Reports recall@5/10 and MRR per set, per question type and per mode, the
precision and recall of the configured cut (``search.relevance_cut``) over all sets, and the share of
questions about something not stored that get no hit above it. ``--fit`` chooses hybrid's
ranking on every set together and fits the calibration under it (the constants in
``SearchSettings``; see ``fit``), then evaluates with them; ``--sweep`` ranks hybrid with the
keyword weight of the hybrid calibration scaled. A run takes a minute or two on 2 cores.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Sizes
from benchmarks.context import open_context
from benchmarks.quality_sets import QualitySet, all_sets
from benchmarks.service_cases import CachedEmbedder
from mosaic_memory.config import Settings
from mosaic_memory.container import AppState
from mosaic_memory.insights.schemas import InsightCreate
from mosaic_memory.insights.service import InsightService
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.search.fusion import baseline_of, keyword_share
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


async def store(state: AppState, settings: Settings, qset: QualitySet) -> Stored:
    no_merge = settings.model_copy(deep=True)
    no_merge.policy.insights.dedup_threshold = None
    async with state.sessionmaker() as session, session.begin():
        _, token = await state.owners.create_user(session, f"quality-{qset.name}")
        principal = await state.owners.authenticate(session, token)
        writer = InsightService(embedder=state.embedder, settings=no_merge)
        items = [InsightCreate(content=c) for c in dict.fromkeys(qset.docs)]
        for start in range(0, len(items), 500):
            await writer.create_many(session, principal, items[start : start + 500])
    return Stored(qset, principal)


async def answer(
    state: AppState,
    embedder: CachedEmbedder,
    settings: Settings,
    stored: Stored,
    queries: list[str],
    mode: str,
    **req: Any,
) -> list[Answer]:
    service = SearchService(embedder=embedder, settings=settings)
    out = []
    for q in queries:
        async with state.sessionmaker() as session, session.begin():
            res = await service.search(session, stored.principal, SearchRequest(query=q, k=10, mode=mode, **req))
        out.append(Answer([(h.content, h.score, dict(h.scores)) for h in res.hits]))
    return out


async def evaluate(
    state: AppState,
    embedder: CachedEmbedder,
    sets: list[Stored],
    settings: Settings,
    modes: tuple[str, ...] = MODES,
) -> dict[str, Any]:
    """Every set × mode: metrics overall and per type, and the hits (for the cut and the fit)."""
    result: dict[str, Any] = {}
    for st in sets:
        qs = st.qset.questions
        rel = [q.relevant for q in qs]
        per_mode: dict[str, Any] = {}
        for mode in modes:
            ans = await answer(state, embedder, settings, st, [q.text for q in qs], mode, min_score=None)
            none = await answer(state, embedder, settings, st, st.qset.unanswerable, mode, min_score=None)
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


@dataclass
class Pool:
    """One question's hybrid candidates (both sides' rows, once each) with their raw signals.

    ``cos`` and ``gap`` as ``Calibration.score`` weighs them: 0 for a row without a cosine (no
    vector), which ``known`` tells ``keyword_share``."""

    contents: list[str]
    cos: np.ndarray  # 0 where a row has no vector
    gap: np.ndarray  # cosine above the baseline; 0 where a row has no vector
    cov: np.ndarray  # keyword coverage, 0 where the keyword side did not find the row
    known: np.ndarray  # the row has a cosine
    baseline: float
    spread: float | None  # the best cosine above the baseline; None: no semantic candidates
    relevant: frozenset[str]


@dataclass
class SetPools:
    stored: Stored
    answerable: list[Pool]
    unanswerable: list[Pool] = field(default_factory=list)


async def candidate_pools(
    state: AppState, embedder: CachedEmbedder, settings: Settings, sets: list[Stored]
) -> list[SetPools]:
    """Every question's candidates as hybrid search sees them: its ``n`` = 10 × candidate_multiplier
    semantic and keyword rows, asked for as k = n with a multiplier of 1 (the same two lists), the
    top n of their union by the configured score (the rest rank too low to matter). The baseline
    and the best cosine come from a semantic search of the same n rows: the hybrid hits miss the
    semantic candidates that keyword rows pushed out of the top n."""
    n = 10 * settings.search.candidate_multiplier
    wide = settings.model_copy(deep=True)
    wide.search.candidate_multiplier = 1
    service = SearchService(embedder=embedder, settings=wide)
    out = []
    for st in sets:
        pools: list[list[Pool]] = [[], []]
        asked = [(q.text, q.relevant) for q in st.qset.questions], [(q, frozenset[str]()) for q in st.qset.unanswerable]
        for bucket, questions in zip(pools, asked, strict=True):
            for q, rel in questions:
                async with state.sessionmaker() as session, session.begin():
                    sem = await service.search(session, st.principal, SearchRequest(query=q, k=n, mode="semantic"))
                    res = await service.search(session, st.principal, SearchRequest(query=q, k=n, mode="hybrid"))
                cosines = [h.scores["semantic"] for h in sem.hits]
                baseline = baseline_of(cosines, candidates=n, prior=settings.search.calibration_baseline_prior)
                top = max(cosines, default=None)
                known = np.array(["semantic" in h.scores for h in res.hits], dtype=bool)
                cos = np.array([h.scores.get("semantic", 0.0) for h in res.hits])
                bucket.append(
                    Pool(
                        contents=[h.content for h in res.hits],
                        cos=cos,
                        gap=np.where(known, cos - baseline, 0.0),
                        cov=np.array([h.scores.get("keyword", 0.0) for h in res.hits]),
                        known=known,
                        baseline=baseline,
                        spread=None if top is None else top - baseline,
                        relevant=rel,
                    )
                )
        out.append(SetPools(st, pools[0], pools[1]))
    return out


@dataclass(frozen=True)
class Ranking:
    """What orders hybrid's hits within a query: cosine + ratio × coverage ** power × keyword_share."""

    power: float
    ratio: float
    gate: tuple[float, float]
    unsure: tuple[float, float]

    def keyword(self, p: Pool) -> np.ndarray:
        return p.cov**self.power * keyword_share(np.where(p.known, p.gap, np.nan), p.spread, self.gate, self.unsure)

    def top10(self, p: Pool) -> np.ndarray:
        return np.argsort(-(p.cos + self.ratio * self.keyword(p)), kind="stable")[:10]


# The rankings --fit chooses among: the keyword power, the keyword weight over the cosine's, where
# a hit's keyword evidence starts to count (and full from 0.01 above), and the best cosine's
# distance above the baseline under which a query counts it everywhere (falling to none over 0.01 or 0.03).
RANKINGS = [
    Ranking(power, ratio, (lo, lo + 0.01), (hi - width, hi))
    for power, ratio, lo, hi, width in itertools.product(
        (2.0, 2.5, 3.0, 3.5, 4.0),
        (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0),
        (0.0, 0.01, 0.02, 0.03),
        (0.16, 0.18, 0.2),
        (0.01, 0.03),
    )
]


def ranked_metrics(pools: list[SetPools], ranking: Ranking) -> dict[str, dict[str, float]]:
    out = {}
    for sp in pools:
        answers = [Answer([(p.contents[i], 0.0, {}) for i in ranking.top10(p)]) for p in sp.answerable]
        out[sp.stored.qset.name] = metrics(answers, [p.relevant for p in sp.answerable])
    return out


def calibrate(pools: list[SetPools], ranking: Ranking) -> dict[str, list[float]]:
    """The logistic maps, fitted on the top-10 hits of every question of every set under
    ``ranking`` (relevant = 1; unanswerable questions' hits all 0), classes balanced.

    Hybrid's map keeps the ranking: the keyword weight is ``ratio`` times the cosine's (cosine
    plus above-baseline weight), so only the scale, the split of the cosine's weight between the
    raw cosine and its gap (the baseline is constant within a query) and the bias are fitted: the
    second feature, gap − cosine, is −baseline, or 0 for a row without a cosine, whose score has
    neither term. Semantic: cosine and gap; keyword: coverage ** power."""
    rows: list[list[float]] = []
    y: list[int] = []
    for sp in pools:
        for p in [*sp.answerable, *sp.unanswerable]:
            k = ranking.keyword(p)
            for i in ranking.top10(p):
                rows.append([p.cos[i], p.gap[i], k[i], p.cov[i] ** ranking.power])
                y.append(int(p.contents[i] in p.relevant))
    x, labels = np.asarray(rows), np.asarray(y, dtype=float)
    w1, w2, c = fit_logistic(np.stack([x[:, 0] + ranking.ratio * x[:, 2], x[:, 1] - x[:, 0]], axis=1), labels)
    hybrid = [w1 - w2, w2, ranking.ratio * w1, c]
    return {
        "semantic": [round(float(v), 4) for v in fit_logistic(x[:, [0, 1]], labels)],
        "keyword": [round(float(v), 4) for v in fit_logistic(x[:, [3]], labels)],
        "hybrid": [round(float(v), 4) for v in hybrid],
    }


def fit(pools: list[SetPools], result: dict[str, Any]) -> dict[str, Any]:
    """Hybrid's ranking chosen on every set together, then its calibration (``calibrate``).

    A ranking is judged by its worst margin over the better of semantic and keyword alone (their
    figures from ``result``) on any set, by recall@10 and MRR; ties go to the worst recall@5
    margin, then to the MRR summed over the sets. Fitting the likelihood of every weight instead
    optimises the cut, not the order: it left hybrid's MRR on ``project`` under semantic's."""

    def margins(ranking: Ranking) -> tuple[float, float, float]:
        got = ranked_metrics(pools, ranking)
        worst = worst5 = np.inf
        for name, m in got.items():
            ref = {k: max(result[name]["semantic"]["all"][k], result[name]["keyword"]["all"][k]) for k in m}
            worst = min(worst, m["recall_at_10"] - ref["recall_at_10"], m["mrr"] - ref["mrr"])
            worst5 = min(worst5, m["recall_at_5"] - ref["recall_at_5"])
        return round(worst, 4), round(worst5, 4), round(sum(m["mrr"] for m in got.values()), 4)

    scored = [(margins(r), r) for r in RANKINGS]
    (worst, worst5, total), best = max(scored, key=lambda pair: pair[0])
    return {
        "keyword_power": best.power,
        "keyword_gate": list(best.gate),
        "keyword_unsure": list(best.unsure),
        "ratio": best.ratio,
        "worst_margin": worst,
        "worst_margin_recall_at_5": worst5,
        "mrr_sum": total,
        "rankings_tied": sum(1 for m, _ in scored if m[:2] == (worst, worst5)),
        "ranked": ranked_metrics(pools, best),
        **calibrate(pools, best),
    }


def fitted_settings(settings: Settings, fitted: dict[str, Any]) -> Settings:
    s = settings.model_copy(deep=True)
    s.search.calibration_semantic = tuple(fitted["semantic"])
    s.search.calibration_keyword = tuple(fitted["keyword"])
    s.search.calibration_hybrid = tuple(fitted["hybrid"])
    s.search.calibration_keyword_power = fitted["keyword_power"]
    s.search.calibration_keyword_gate = tuple(fitted["keyword_gate"])
    s.search.calibration_keyword_unsure = tuple(fitted["keyword_unsure"])
    return s


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
        sets = [await store(ctx.state, ctx.settings, qs) for qs in all_sets()]
        queries = sorted(
            {q.text for st in sets for q in st.qset.questions} | {q for st in sets for q in st.qset.unanswerable}
        )
        vectors = await ctx.state.embedder.embed_documents(queries)
        cached = CachedEmbedder(ctx.state.embedder, dict(zip(queries, vectors, strict=True)))
        settings = ctx.settings
        cut = args.cut if args.cut is not None else settings.search.relevance_cut
        result = await evaluate(ctx.state, cached, sets, settings)
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
            pools = await candidate_pools(ctx.state, cached, settings, sets)
            doc["fit"] = fit(pools, result)
            print("fit:", json.dumps(doc["fit"]))
            refit = fitted_settings(settings, doc["fit"])
            after = await evaluate(ctx.state, cached, sets, refit)
            doc["fitted"] = {"modes": strip_private(after), "cut_report": cut_report(after, sets, cut)}
            print("\nWith the fitted settings:\n")
            print(markdown(after, doc["fitted"]["cut_report"], cut))
        if args.sweep:
            sweep = {}
            for w in args.sweep:
                s = settings.model_copy(deep=True)
                a, g, b, c = s.search.calibration_hybrid  # cosine, above baseline, coverage, bias
                s.search.calibration_hybrid = (a, g, b * w, c)
                r = await evaluate(ctx.state, cached, sets, s, ("hybrid",))
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
