"""The shape of a memory kind's spec: what every embedded kind tells the code that is not its own.

Each kind's package owns its spec (``insights/spec.py``, ``preferences/spec.py``, ``logs/spec.py``,
``skills/spec.py``); :mod:`mosaic_memory.kinds` collects them. Writes, search, re-embedding and
(later) export/import and summarization read the embedded text, the filter columns and the output
mapping from here, so changing one of them in the spec changes it everywhere at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.sql.elements import ColumnElement

from mosaic_memory.common.schemas import Kind

__all__ = ["KindSpec"]


@dataclass(frozen=True)
class KindSpec:
    """One embedded memory kind.

    ``text_sql`` is the embedded text as a SQL expression over the table's columns: search shows it
    as a hit's content and re-embedding embeds it. ``text_of`` is the same text computed in Python
    from a row (or anything with the row's attributes), which the write path embeds; it is None for
    a kind whose text only PostgreSQL can render exactly (preferences: jsonb's text form), whose
    write path evaluates ``text_sql``'s own function over the bound values instead.
    ``tests/test_kind_specs.py`` holds the two forms and the write path to one another.

    The filter columns (``tags`` … ``importance``) are None where the kind has no such field: a
    search filtering on it matches nothing of this kind. ``current`` gives the extra WHERE
    clauses that hide rows outside the present (insights: superseded, closed, expired), given the
    present as a value or as a parameter of a statement built once.
    """

    name: Kind
    model: Any
    text_sql: Any  # a SQL expression (a column or ColumnElement) over the model's columns
    text_of: Callable[[Any], str] | None
    created: Any
    tags: Any = None
    category: Any = None
    metadata: Any = None
    agent: Any = None
    session: Any = None
    importance: Any = None
    current: Callable[[datetime | ColumnElement[datetime]], Sequence[ColumnElement[bool]]] | None = None

    @property
    def table(self) -> str:
        """The table's name (the key re-embedding reports under)."""
        return str(self.model.__tablename__)
