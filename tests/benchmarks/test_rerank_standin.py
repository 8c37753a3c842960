"""The reranker benchmark's stand-in speaks TEI's /rerank over a real socket, so the http-rerank
provider and the search service's rerank step run exactly as against a real server."""

from __future__ import annotations

from benchmarks.rerank_eval import standin_server
from embeddings.rerank import get_reranker
from mosaic_memory.container import AppState


async def test_standin_scores_the_related_text_highest_in_text_order(state: AppState) -> None:
    texts = ["The cat is called Miso", "The user likes dark themes in every editor", "Deploys go out on Tuesdays"]
    async with standin_server(state.embedder) as url:
        reranker = get_reranker("http-rerank", base_url=url)
        try:
            scores = await reranker.rerank("what colour scheme does she prefer?", texts)
        finally:
            await reranker.aclose()
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    assert max(range(3), key=scores.__getitem__) == 1
