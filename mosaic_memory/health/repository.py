"""The detector's SQL: catalog reads on a plain psycopg connection (no schema of ours needed)."""

from __future__ import annotations

from typing import Any

__all__ = ["HealthRepository"]


class HealthRepository:
    """Read-only questions to the server. ``conn`` is a ``psycopg.AsyncConnection``."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def _one(self, sql: str) -> tuple[Any, ...] | None:
        cur = await self.conn.execute(sql)
        row: tuple[Any, ...] | None = await cur.fetchone()
        return row

    async def server_version(self) -> str:
        row = await self._one("SHOW server_version")
        return str(row[0]) if row else "unknown"

    async def pgvector(self) -> tuple[str | None, str | None]:
        """(the version the server could install, the version installed in this database)."""
        row = await self._one(
            "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'"
        )
        if row is None:
            return None, None
        return row[0], row[1]

    async def row_security(self) -> tuple[Any, ...]:
        """The row of ``db.ROW_SECURITY_SQL``: whether the owner wall of migration 0008 stands."""
        from mosaic_memory.db import ROW_SECURITY_SQL

        row = await self._one(ROW_SECURITY_SQL)
        assert row is not None  # one row, always
        return row

    async def schema_revision(self) -> tuple[bool, str | None]:
        """(whether the migrations' table exists, the revision it records)."""
        row = await self._one("SELECT to_regclass('public.alembic_version') IS NOT NULL")
        if not row or not row[0]:
            return False, None
        found = await self._one("SELECT version_num FROM alembic_version LIMIT 1")
        return True, (str(found[0]) if found else None)
