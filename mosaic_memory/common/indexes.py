"""Names and definitions of the indexes and vector layout that runtime code must also know (no SQL runs here).

The first migration creates each embedded table's HNSW index from :func:`create_hnsw_index`, and
re-embedding recreates it with the same statement when a new model changes the vector dimension,
so the two can never build different indexes under one name. Likewise migration 0010 keeps the
vectors in the row with :func:`keep_vectors_in_row`, and re-embedding applies it again after
retyping the column (a new type brings its own storage back).
"""

from __future__ import annotations

__all__ = [
    "HNSW_EF_CONSTRUCTION",
    "HNSW_M",
    "HNSW_OPTIONS",
    "create_hnsw_index",
    "hnsw_index_name",
    "keep_vectors_in_row",
]

# m: pgvector's default. ef_construction: twice pgvector's 64 (migration 0012): on 100k rows of
# real sentence embeddings (the bundled model), recall@10 at ef_search 100 went from 0.82-0.86 to
# 0.95-0.975, for ~0.2 ms more a query, ~0.3 ms more an insert and 1.7x the build time
# (benchmarks/hnsw_recall.py). A change here
# needs a migration that sets it on the indexes already built, as 0012 did.
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 128
HNSW_OPTIONS = f"m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}"


def hnsw_index_name(table: str) -> str:
    """The name of ``table``'s HNSW index on ``embedding``."""
    return f"ix_{table}_embedding_hnsw"


def create_hnsw_index(table: str) -> str:
    """The DDL of ``table``'s cosine HNSW index on ``embedding``."""
    return (
        f"CREATE INDEX {hnsw_index_name(table)} ON {table} "
        f"USING hnsw (embedding vector_cosine_ops) WITH ({HNSW_OPTIONS})"
    )


def keep_vectors_in_row(table: str, column: str = "embedding") -> str:
    """The DDL that keeps ``table``'s vectors in the row (``STORAGE MAIN``), not in its TOAST table.

    pgvector's type says ``EXTERNAL``: a row past ~2 kB had its vector moved out of line, and every
    distance of an exact scan fetched it back from TOAST. A 384-float vector is 1,544 bytes, so a
    short content with its search vector is enough (43,000 of a benchmark table's 110,000 rows).
    ``MAIN`` moves a vector out only as a last resort (a row that still does not fit), so a larger
    model's vectors still store; ``PLAIN`` would refuse those rows. Rows already stored keep their
    layout until rewritten.
    """
    return f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE MAIN"
