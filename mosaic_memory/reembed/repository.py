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
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.common.indexes import create_hnsw_index, hnsw_index_name, keep_vectors_in_row
from mosaic_memory.common.vectors import vector_dimensions, vector_literal
from mosaic_memory.kinds import EMBEDDED_TABLES, spec_for_table

# The tables re-embedding walks, in order; each kind's embedded text comes from its spec.
TABLES = EMBEDDED_TABLES


def _text_sql(table: str) -> str:
    """The kind's embedded text (``KindSpec.text_sql``) as SQL text, for the hand-written batch query."""
    compiled = spec_for_table(table).text_sql.compile(
        dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"literal_binds": True},
    )
    return str(compiled)


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
                f"SELECT owner_id, id, content_hash, {_text_sql(table)} AS text FROM {table} "
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
        return await vector_dimensions(self.session, table)

    async def swap(self, table: str, model: str, dimensions: int) -> int:
        """Move the shadow vectors into ``embedding``; retype the column (and rebuild its HNSW index)
        when the new model has another dimension."""
        if await self.column_dimensions(table) != dimensions:
            await self.session.execute(text(f"DROP INDEX IF EXISTS {hnsw_index_name(table)}"))
            await self.session.execute(
                text(
                    f"ALTER TABLE {table} ALTER COLUMN embedding TYPE vector({int(dimensions)}) "
                    f"USING CASE WHEN embedding_next_model = '{model.replace(chr(39), '')}' "
                    f"THEN CAST(embedding_next AS vector({int(dimensions)})) END"
                )
            )
            await self.session.execute(text(keep_vectors_in_row(table)))  # the retype reset it
            await self.session.execute(text(create_hnsw_index(table)))
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
