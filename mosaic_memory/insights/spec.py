"""Insights as an embedded kind: embedded as their content."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy.sql.elements import ColumnElement

from mosaic_memory.common.kinds import KindSpec
from mosaic_memory.models import Insight

__all__ = ["SPEC", "insight_text"]


def insight_text(content: str) -> str:
    """What an insight is embedded as: its content, as written."""
    return content


def _current(now: datetime | ColumnElement[datetime]) -> Sequence[ColumnElement[bool]]:
    return [
        Insight.superseded_by.is_(None),
        Insight.valid_to.is_(None),
        or_(Insight.expires_at.is_(None), Insight.expires_at > now),
    ]


def _text_of(row: Any) -> str:
    return insight_text(row.content)


SPEC = KindSpec(
    name="insights",
    model=Insight,
    text_sql=Insight.content,
    text_of=_text_of,
    created=Insight.created_at,
    tags=Insight.tags,
    category=Insight.category,
    metadata=Insight.metadata_,
    importance=Insight.importance,
    current=_current,
)
