"""Shadow vectors for re-embedding: ``embedding_next`` (+ its model and content hash) per embedded table.

A re-embed fills these columns while search keeps reading ``embedding``; the switch copies them
over in one transaction. ``embedding_next`` has no fixed dimension, so a model of another size
can be filled too (the switch then retypes ``embedding`` and rebuilds its HNSW index).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("insights", "preferences", "agent_logs", "skills")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("embedding_next", Vector(), nullable=True))
        op.add_column(table, sa.Column("embedding_next_model", sa.String(200), nullable=True))
        op.add_column(table, sa.Column("embedding_next_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "embedding_next_hash")
        op.drop_column(table, "embedding_next_model")
        op.drop_column(table, "embedding_next")
