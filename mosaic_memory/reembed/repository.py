"""SQL for re-embedding into the shadow columns and the atomic switch.

Instance-wide by nature (a model change concerns every row): batches walk each table in primary
key order, ``(owner_id, id)``, so they use the primary key index and resume where they stopped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.common.vectors import vector_literal

# The text each kind is embedded from (the same text search shows as a hit's content).
TEXT_OF: dict[str, str] = {
    "insights": "content",
    "agent_logs": "content",
    "preferences": (
        "key || ': ' || CASE WHEN jsonb_typeof(value) = 'string' THEN value #>> '{}' ELSE coalesce(value::text, '') END"
    ),
    "skills": "name || ': ' || description",
}
TABLES = tuple(TEXT_OF)


def _pending(table: str) -> str:
    # Rows with a vector of another model whose shadow is missing, of another model, or of older text.
    del table
    return (
        "embedding IS NOT NULL AND embedding_model IS DISTINCT FROM :model "
        "AND (embedding_next_model IS DISTINCT FROM :model OR embedding_next_hash IS DISTINCT FROM content_hash)"
    )


@dataclass(frozen=True)
class PendingRow:
    owner_id: uuid.UUID
    id: uuid.UUID
    content_hash: str
    text: str


class ReembedRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def counts(self, table: str, model: str) -> dict[str, int]:
        row = (
            await self.session.execute(
                text(
                    f"SELECT count(*) AS total, count(embedding) AS embedded, "
                    f"count(*) FILTER (WHERE embedding_model = :model) AS current, "
                    f"count(*) FILTER (WHERE {_pending(table)}) AS pending FROM {table}"
                ),
                {"model": model},
            )
        ).one()
        return {"rows": row.total, "embedded": row.embedded, "on_model": row.current, "pending": row.pending}

    async def next_batch(
        self, table: str, model: str, *, after: tuple[uuid.UUID, uuid.UUID] | None, limit: int
    ) -> list[PendingRow]:
        where = _pending(table)
        params: dict[str, Any] = {"model": model, "limit": limit}
        if after is not None:
            where += " AND (owner_id, id) > (:after_owner, :after_id)"
            params.update(after_owner=after[0], after_id=after[1])
        rows = await self.session.execute(
            text(
                f"SELECT owner_id, id, content_hash, {TEXT_OF[table]} AS text FROM {table} "
                f"WHERE {where} ORDER BY owner_id, id LIMIT :limit FOR UPDATE SKIP LOCKED"
            ),
            params,
        )
        return [PendingRow(r.owner_id, r.id, r.content_hash, r.text) for r in rows]

    async def store_next(self, table: str, rows: Sequence[PendingRow], vectors: Any, model: str) -> None:
        if not rows:
            return
        await self.session.execute(
            text(
                f"UPDATE {table} AS t SET embedding_next = CAST(v.vec AS vector), "
                f"embedding_next_model = :model, embedding_next_hash = v.hash "
                f"FROM unnest(CAST(:owners AS uuid[]), CAST(:ids AS uuid[]), CAST(:vecs AS text[]), "
                f"CAST(:hashes AS text[])) AS v(owner_id, id, vec, hash) "
                f"WHERE t.owner_id = v.owner_id AND t.id = v.id"
            ),
            {
                "model": model,
                "owners": [r.owner_id for r in rows],
                "ids": [r.id for r in rows],
                "vecs": [vector_literal(v) for v in vectors],
                "hashes": [r.content_hash for r in rows],
            },
        )

    async def lock_for_switch(self) -> None:
        """Block writes (reads go on) to every embedded table until the switch commits."""
        await self.session.execute(text(f"LOCK TABLE {', '.join(TABLES)} IN SHARE ROW EXCLUSIVE MODE"))

    async def column_dimensions(self, table: str) -> int:
        value = await self.session.scalar(
            text("SELECT atttypmod FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attname = 'embedding'"),
            {"t": table},
        )
        return int(value or -1)

    async def swap(self, table: str, model: str, dimensions: int) -> int:
        """Move the shadow vectors into ``embedding``; retype the column (and rebuild its HNSW index)
        when the new model has another dimension."""
        if await self.column_dimensions(table) != dimensions:
            await self.session.execute(text(f"DROP INDEX IF EXISTS ix_{table}_embedding_hnsw"))
            await self.session.execute(
                text(
                    f"ALTER TABLE {table} ALTER COLUMN embedding TYPE vector({int(dimensions)}) "
                    f"USING CASE WHEN embedding_next_model = '{model.replace(chr(39), '')}' "
                    f"THEN CAST(embedding_next AS vector({int(dimensions)})) END"
                )
            )
            await self.session.execute(
                text(
                    f"CREATE INDEX ix_{table}_embedding_hnsw ON {table} "
                    "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
                )
            )
            moved: Any = await self.session.execute(
                text(
                    f"UPDATE {table} SET embedding_model = embedding_next_model, embedding_next = NULL, "
                    "embedding_next_model = NULL, embedding_next_hash = NULL WHERE embedding_next_model = :model"
                ),
                {"model": model},
            )
            return int(moved.rowcount or 0)
        result: Any = await self.session.execute(
            text(
                f"UPDATE {table} SET embedding = embedding_next, embedding_model = embedding_next_model, "
                "embedding_next = NULL, embedding_next_model = NULL, embedding_next_hash = NULL "
                "WHERE embedding_next_model = :model"
            ),
            {"model": model},
        )
        return int(result.rowcount or 0)

    async def set_embedding_meta(self, model: str, dimensions: int) -> None:
        await self.session.execute(
            text(
                "INSERT INTO instance_meta (key, value, updated_at) VALUES ('embedding', CAST(:v AS jsonb), now()) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()"
            ),
            {"v": json.dumps({"model_id": model, "dimensions": int(dimensions)})},
        )

    async def stored_model(self) -> dict[str, Any] | None:
        value = await self.session.scalar(text("SELECT value FROM instance_meta WHERE key = 'embedding'"))
        return dict(value) if value else None
