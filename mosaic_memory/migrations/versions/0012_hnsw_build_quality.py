"""HNSW graphs are built with ``ef_construction = 128``, twice pgvector's default.

With 64, HNSW missed rows that belonged in a search's top 10: on 100,000 insights of real sentence
embeddings (the bundled model, the load test's store), recall@10 against an exact scan at the
service's ``ef_search`` (100) was 0.82-0.86 over 200 questions (four builds), the tenth hit 0.06
below the true tenth in cosine; raising ``ef_search`` bought little (0.88-0.92 at 200, 0.93-0.95 at
400) and cost query time. Built with 128: 0.95-0.975 (four builds), bare HNSW p50 1.1-1.7 ms against
0.65-1.4 (about 0.2 ms more a query, typically); a build took 32-42 instead of 18-24 s, and an
insert (every index) 1.2-1.4 instead of 0.9-1.0 ms a row. (m = 24 reached 0.975 with slower
queries; ef_construction = 200 cost 2.3 ms an insert.) ``python -m benchmarks.hnsw_recall``
measures it on a copy of a store.

``ALTER INDEX ... SET`` makes rows inserted from now on join the graph the new way; the graph of
the rows already stored is rebuilt here when its table is small (at most ``REBUILD_ROWS`` rows:
seconds), and otherwise left for the operator to rebuild when convenient, without blocking
writes: ``REINDEX INDEX CONCURRENTLY ix_<table>_embedding_hnsw`` (docs/scaling.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mosaic_memory.common.indexes import hnsw_index_name

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = ("insights", "preferences", "agent_logs", "skills")  # every embedded table (as in 0010)
OPTIONS = "m = 16, ef_construction = 128"  # common/indexes.HNSW_OPTIONS as of this revision
REBUILD_ROWS = 20_000  # a rebuild of this many rows takes a few seconds; a larger one waits for its operator


def _exists(index: str) -> bool:
    return op.get_bind().scalar(sa.text("SELECT to_regclass(:i) IS NOT NULL"), {"i": index}) is True


def _rows_up_to(table: str, limit: int) -> int:
    counted = op.get_bind().scalar(sa.text(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT :n) s"), {"n": limit})
    return int(counted or 0)


def upgrade() -> None:
    for table in TABLES:
        index = hnsw_index_name(table)
        if not _exists(index):  # a store whose index was dropped by hand: nothing to change
            continue
        op.execute(f"ALTER INDEX {index} SET ({OPTIONS})")
        if _rows_up_to(table, REBUILD_ROWS + 1) <= REBUILD_ROWS:
            op.execute(f"REINDEX INDEX {index}")


def downgrade() -> None:
    for table in TABLES:
        index = hnsw_index_name(table)
        if _exists(index):
            op.execute(f"ALTER INDEX {index} SET (m = 16, ef_construction = 64)")
