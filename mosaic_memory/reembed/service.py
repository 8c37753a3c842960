"""Re-embedding every row after a model change, without interrupting search.

Vectors of the configured model are written to the shadow columns (``embedding_next``) in
batches, each its own transaction, so an interrupted run resumes where it stopped. Search reads
``embedding`` all along. :meth:`switch` then, in one transaction that blocks writes but not
reads, embeds whatever is still pending, moves the shadow vectors into ``embedding`` and records
the new model in ``instance_meta``: every reader sees either the old space or the new one.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from embeddings import Embedder
from mosaic_memory.errors import EmbeddingMismatch
from mosaic_memory.reembed.repository import TABLES, ReembedRepository

__all__ = ["TABLES", "ReembedService", "check_embedding_space"]


async def check_embedding_space(session: AsyncSession, embedder: Embedder, *, record: bool = True) -> None:
    """Refuse to run against vectors of another model or dimension; record ours on first start.

    The one statement of the rule: the start-up check (``container.check_embedding_space``) and
    re-embedding's status (``matches``) both read the stored space through here. Raises
    EmbeddingMismatch with the remedy. The caller owns the transaction (``record`` writes the row).
    """
    repo = ReembedRepository(session)
    column_dims = await repo.column_dimensions("insights")
    if column_dims > 0 and column_dims != embedder.dimensions:
        raise EmbeddingMismatch(
            f"the database stores {column_dims}-dimension vectors but the configured embedder "
            f"{embedder.model_id!r} produces {embedder.dimensions}. Configure the model the data was "
            f"embedded with, or re-embed into a new database with 'mosaic-memory export' / 'import'"
        )
    stored = await repo.stored_model()
    if stored is None:
        if record:
            await repo.set_embedding_meta(embedder.model_id, embedder.dimensions)
        return
    if not _same_model(stored, embedder):
        raise EmbeddingMismatch(
            f"stored vectors come from {stored.get('model_id')!r} but the configured embedder is "
            f"{embedder.model_id!r}; mixing them would corrupt search. Set MOSAIC_EMBEDDINGS__PROVIDER / "
            f"MOSAIC_EMBEDDINGS__MODEL back to the model of the stored vectors, or re-embed every row with "
            f"'mosaic-memory embeddings reembed'"
        )


def _same_model(stored: dict[str, Any] | None, embedder: Embedder) -> bool:
    return bool(stored) and stored.get("model_id") == embedder.model_id  # type: ignore[union-attr]


class ReembedService:
    def __init__(self, *, embedder: Embedder) -> None:
        self.embedder = embedder

    @property
    def model(self) -> str:
        return self.embedder.model_id

    async def status(self, session: AsyncSession) -> dict[str, Any]:
        repo = ReembedRepository(session)
        tables = {t: await repo.counts(t, self.model) for t in TABLES}
        stored = await repo.stored_model()
        return {
            "stored": stored,
            "configured": {"model_id": self.model, "dimensions": self.embedder.dimensions},
            "matches": _same_model(stored, self.embedder),
            "pending": sum(t["pending"] for t in tables.values()),
            "tables": tables,
        }

    async def fill_batch(
        self, session: AsyncSession, table: str, *, after: tuple[uuid.UUID, uuid.UUID] | None, limit: int
    ) -> tuple[int, tuple[uuid.UUID, uuid.UUID] | None]:
        """Embed the next ``limit`` pending rows of ``table`` after ``after``; returns how many and
        the key to continue from."""
        repo = ReembedRepository(session)
        rows = await repo.next_batch(table, self.model, after=after, limit=limit)
        if not rows:
            return 0, None
        vectors = await self.embedder.embed_documents([r.text or "" for r in rows])
        await repo.store_next(table, rows, vectors, self.model)
        return len(rows), (rows[-1].owner_id, rows[-1].id)

    async def switch(self, session: AsyncSession, *, batch: int) -> dict[str, int]:
        """Make the configured model's vectors the live ones, atomically (the caller commits)."""
        repo = ReembedRepository(session)
        await repo.lock_for_switch()
        moved: dict[str, int] = {}
        for table in TABLES:
            after = None
            while True:  # rows written or edited since their batch ran
                n, after = await self.fill_batch(session, table, after=after, limit=batch)
                if n == 0:
                    break
            moved[table] = await repo.swap(table, self.model, self.embedder.dimensions)
        await repo.set_embedding_meta(self.model, self.embedder.dimensions)
        return moved
