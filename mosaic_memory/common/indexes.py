"""Names and definitions of the indexes that runtime code must also know (no SQL runs here).

The first migration creates each embedded table's HNSW index from :func:`create_hnsw_index`, and
re-embedding recreates it with the same statement when a new model changes the vector dimension,
so the two can never build different indexes under one name.
"""

from __future__ import annotations

__all__ = ["HNSW_OPTIONS", "create_hnsw_index", "hnsw_index_name"]

# m and ef_construction: pgvector's defaults, written out so a rebuild keeps them if those change.
HNSW_OPTIONS = "m = 16, ef_construction = 64"


def hnsw_index_name(table: str) -> str:
    """The name of ``table``'s HNSW index on ``embedding``."""
    return f"ix_{table}_embedding_hnsw"


def create_hnsw_index(table: str) -> str:
    """The DDL of ``table``'s cosine HNSW index on ``embedding``."""
    return (
        f"CREATE INDEX {hnsw_index_name(table)} ON {table} "
        f"USING hnsw (embedding vector_cosine_ops) WITH ({HNSW_OPTIONS})"
    )
