"""SQL helpers shared by the repositories of embedded kinds."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession


def vector_literal(vector: Any) -> str:
    """pgvector's text form; used where a vector travels inside an array parameter."""
    arr = np.asarray(vector, dtype=np.float32)
    return "[" + ",".join(repr(float(x)) for x in arr) + "]"


async def scope_size(session: AsyncSession, model: Any, owner_ids: Sequence[uuid.UUID], cap: int) -> int:
    """Rows owned by ``owner_ids``, counted up to ``cap + 1`` (cheap: an index-only scan)."""
    inner = select(model.owner_id).where(model.owner_id.in_(owner_ids)).limit(cap + 1).subquery()
    return int(await session.scalar(select(func.count()).select_from(inner)) or 0)


async def use_iterative_hnsw(session: AsyncSession, ef_search: int, max_scan_tuples: int = 50_000) -> None:
    """Let HNSW keep scanning until enough rows pass the owner filter (pgvector >= 0.8).

    The three settings last until the end of the transaction (``set_config(..., true)`` is
    ``SET LOCAL``) and travel in one statement: one round trip per search instead of three.
    ``relaxed_order`` may return rows slightly out of order, so callers re-sort by distance.
    """
    await session.execute(
        text(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.ef_search', :ef, true), set_config('hnsw.max_scan_tuples', :tuples, true)"
        ),
        {"ef": str(int(ef_search)), "tuples": str(int(max_scan_tuples))},
    )
