"""Repository steps shared by several kinds (SQLAlchemy session work, no domain rules)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, Select, any_, bindparam, literal_column, true, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CompoundSelect

from mosaic_memory.common.owner_ids import OwnerIds

__all__ = [
    "OWNERS",
    "OWNER_FILTER_DISABLED",
    "PART",
    "owned_by",
    "owner_filter_on",
    "try_add",
    "try_flush",
    "union_of_parts",
]

_OWNER_ARRAY = OwnerIds()
OWNERS = "owners"  # the parameter of owned_by(column, None)

# TEST BUILDS ONLY. MOSAIC_TEST_DISABLE_OWNER_FILTER=1 (read once, here) turns the owner filter of
# every principal's read, update and delete into TRUE, so the isolation suite can show that the
# database's row-level security alone keeps tenants apart (docs/reliability.md). The service
# refuses to start with it where that wall is absent (container.build_state); never set it anywhere else.
OWNER_FILTER_DISABLED = os.environ.get("MOSAIC_TEST_DISABLE_OWNER_FILTER") == "1"


def owner_filter_on() -> bool:
    """Whether :func:`owned_by` writes the owner filter now (read at each call: the isolation suite
    turns it off for a while). A statement built once and kept must key on it, or one built with
    the filter off would outlive the switch and serve every owner's rows."""
    return not OWNER_FILTER_DISABLED


def owned_by(column: Any, owner_ids: Sequence[uuid.UUID] | None) -> ColumnElement[bool]:
    """``column = ANY(:owners)`` with the owners as one ``uuid[]`` parameter; ``owner_ids`` None:
    the parameter is named :data:`OWNERS` and given at each execution (a statement built once and
    kept for any scope).

    ``column.in_(owner_ids)`` expands into one parameter per owner: a user in 100 teams sent a
    statement of 100 parameters that neither SQLAlchemy's nor psycopg's statement cache keeps
    (psycopg caches statements of at most 50), so every search paid ~0.5 ms a statement to
    compile and split it again. One array parameter keeps the statement text the same for any
    number of owners.

    Every filter by a principal's owners goes through here (the test switch above disables them
    all at once); a write's single target owner is compared directly.
    """
    if OWNER_FILTER_DISABLED:
        return true()
    if owner_ids is None:
        owners = bindparam(OWNERS, type_=_OWNER_ARRAY)
    else:
        owners = bindparam(None, owner_ids, type_=_OWNER_ARRAY)
    clause: ColumnElement[bool] = column == any_(owners)
    return clause


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


PART = "part"  # the column of union_of_parts' rows: the index of the part each row answers


def union_of_parts(selects: Sequence[Select[Any] | None]) -> Select[Any] | CompoundSelect[Any]:
    """Several SELECTs of the same columns (None: a part left out) as one statement: each row
    labelled with its part's index in ``selects`` (column :data:`PART`), the parts joined by
    ``UNION ALL``, each keeping its own ORDER BY and LIMIT. A search reads every kind in one round
    trip this way: the nearest rows of each (``common/vectors.nearest_rows``), the keyword
    ranking of each (``search/repository``)."""
    labelled = [
        select.add_columns(literal_column(str(i), Integer).label(PART))
        for i, select in enumerate(selects)
        if select is not None
    ]
    if not labelled:
        raise ValueError("union_of_parts needs at least one part")
    return labelled[0] if len(labelled) == 1 else union_all(*labelled)
