"""SQL helpers shared by the repositories of embedded kinds."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


def vector_literal(vector: Any) -> str:
    """pgvector's text form; used where a vector travels inside an array parameter."""
    arr = np.asarray(vector, dtype=np.float32)
    return "[" + ",".join(repr(float(x)) for x in arr) + "]"


@dataclass(frozen=True)
class ScanPolicy:
    """When a scoped vector search scans the scope exactly instead of walking the shared HNSW index.

    HNSW's recall under an owner filter depends on the scope's *share* of the table (measured:
    1.00 at 10 %, 0.83 at 1 % with iterative scans), while an exact scan's cost grows with the
    scope's *rows*. So: exact when the scope has at most ``min_rows`` rows, or at most ``max_rows``
    rows that are under ``share`` of the table; HNSW with iterative scans otherwise.
    """

    max_rows: int = 20_000
    min_rows: int = 2_000
    share: float = 0.05


async def scan_plan(
    session: AsyncSession, model: Any, owner_ids: Sequence[uuid.UUID], policy: ScanPolicy
) -> Literal["empty", "exact", "hnsw"]:
    """Decide the plan in one round trip: the table's row estimate, then a capped count of the scope.

    The count is an index-only scan that stops at the cap, so deciding never costs more than
    reading ``cap + 1`` index entries; for a scope that is most of the table the cap is small.
    """
    table = model.__tablename__
    stmt = text(
        f"""
        WITH cap AS (
            SELECT CASE WHEN c.reltuples <= 0 THEN :max_rows
                        ELSE greatest(:min_rows, least(:max_rows, (:share * c.reltuples)::bigint)) END AS n
            FROM pg_class c WHERE c.oid = CAST(:table AS regclass)
        )
        SELECT count(*) AS rows, (SELECT n FROM cap) AS cap
        FROM (SELECT 1 FROM {table} WHERE owner_id = ANY(:owners) LIMIT (SELECT n + 1 FROM cap)) AS scope
        """
    )
    params = {
        "max_rows": policy.max_rows,
        "min_rows": min(policy.min_rows, policy.max_rows),
        "share": policy.share,
        "table": table,
        "owners": list(owner_ids),
    }
    rows, cap = (await session.execute(stmt, params)).one()
    if rows == 0:
        return "empty"
    return "exact" if rows <= cap else "hnsw"


async def prefer_exact_scan(
    session: AsyncSession, model: Any, owner_ids: Sequence[uuid.UUID], policy: ScanPolicy
) -> bool:
    """True unless the scope is large enough, in rows and share of the table, for HNSW."""
    return await scan_plan(session, model, owner_ids, policy) != "hnsw"


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
