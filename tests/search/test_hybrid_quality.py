"""Hybrid, the default mode, is at least as good as semantic or keyword alone on every quality set
(issue 9): recall@10 and MRR over the sets of ``benchmarks/quality_sets.py``. Real model, real
database; the figures and the fit behind the calibration: ``python -m benchmarks.quality_eval``."""

from __future__ import annotations

from benchmarks.quality_eval import MODES, answer, metrics, store
from benchmarks.quality_sets import all_sets
from benchmarks.service_cases import CachedEmbedder
from mosaic_memory.config import Settings
from mosaic_memory.container import AppState


async def test_hybrid_is_never_worse_than_either_side_alone(state: AppState, settings: Settings) -> None:
    sets = [await store(state, settings, qset) for qset in all_sets()]
    queries = sorted({q.text for st in sets for q in st.qset.questions})
    vectors = await state.embedder.embed_documents(queries)
    cached = CachedEmbedder(state.embedder, dict(zip(queries, vectors, strict=True)))
    worse = []
    for st in sets:
        texts, relevant = [q.text for q in st.qset.questions], [q.relevant for q in st.qset.questions]
        got = {
            mode: metrics(await answer(state, cached, settings, st, texts, mode, min_score=None), relevant)
            for mode in MODES
        }
        for metric in ("recall_at_10", "mrr"):
            if got["hybrid"][metric] < max(got["semantic"][metric], got["keyword"][metric]):
                worse.append((st.qset.name, metric, got))
    assert not worse, worse
