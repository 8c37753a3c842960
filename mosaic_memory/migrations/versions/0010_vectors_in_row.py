"""Vectors stay in the row (``STORAGE MAIN``) instead of pgvector's ``EXTERNAL``.

A row past ~2 kB had its vector moved to the TOAST table, and every distance an exact scan
computed fetched it from there: in a benchmark table of 110,000 insights (contents of ~85 bytes)
43,000 vectors were out of line. The write path's near-duplicate lookup scans a small owner
exactly, as search does. Measured on that table, one owner's 10,000 rows scanned exactly:
12.7 ms and 7,672 buffers before, 9.4 ms and 3,426 buffers with every vector in line.

``SET STORAGE`` rewrites no stored row: rows inserted from now on (and vectors written anew, as
re-embedding does) keep their vectors in line; an older row keeps its vector out of line, through
updates of other columns too, until the table is rewritten (``VACUUM FULL <table>``, which takes
an exclusive lock; on that table the heap grew from 229 to 287 MB and TOAST shrank from 68 to 8 MB).
The shadow column of re-embedding (``embedding_next``) is kept in line too, so a switch that copies
it into ``embedding`` does not move the vectors out again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from mosaic_memory.common.indexes import keep_vectors_in_row

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("insights", "preferences", "agent_logs", "skills")  # every embedded table (as in 0002)
COLUMNS = ("embedding", "embedding_next")


def upgrade() -> None:
    for table in TABLES:
        for column in COLUMNS:
            op.execute(keep_vectors_in_row(table, column))


def downgrade() -> None:
    for table in TABLES:
        for column in COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL")
