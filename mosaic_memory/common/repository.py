"""Repository steps shared by several kinds (SQLAlchemy session work, no domain rules)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["try_add", "try_flush"]


async def try_add(session: AsyncSession, row: object) -> bool:
    """Insert ``row`` inside a savepoint; False (nothing written, the transaction still usable)
    when a unique constraint rejects it, e.g. a concurrent writer created the same key first."""
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def try_flush(session: AsyncSession) -> bool:
    """Flush pending changes inside a savepoint; False (changes rolled back to it) on a unique clash."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        return False
    return True
