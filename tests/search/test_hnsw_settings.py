"""The HNSW session settings a scoped semantic search relies on."""

from __future__ import annotations

from sqlalchemy import text

from mosaic_memory.common.vectors import use_iterative_hnsw
from mosaic_memory.container import AppState


async def test_iterative_scan_settings_hold_for_the_transaction_only(state: AppState) -> None:
    async with state.sessionmaker() as session:
        async with session.begin():
            await session.execute(text("SELECT '[1,2]'::vector"))  # loads pgvector, so its defaults show
            await use_iterative_hnsw(session, 123, max_scan_tuples=45_678)
            assert await session.scalar(text("SHOW hnsw.iterative_scan")) == "relaxed_order"
            assert await session.scalar(text("SHOW hnsw.ef_search")) == "123"
            assert await session.scalar(text("SHOW hnsw.max_scan_tuples")) == "45678"
        # SET LOCAL semantics: a pooled connection does not carry them into the next request,
        # which finds the connection's own defaults (common/vectors.py iterative_hnsw_by_default)
        async with session.begin():
            assert await session.scalar(text("SHOW hnsw.iterative_scan")) == "relaxed_order"
            assert await session.scalar(text("SHOW hnsw.ef_search")) == str(state.settings.search.hnsw_ef_search)
            assert await session.scalar(text("SHOW hnsw.max_scan_tuples")) == "50000"
