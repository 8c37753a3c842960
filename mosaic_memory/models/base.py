"""Declarative base and shared column helpers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from uuid_utils.compat import uuid7

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A new row's id: a UUIDv7 (RFC 9562), a standard ``uuid.UUID`` that orders by creation,
    strictly increasing within the process (rows of one batch too).

    Search breaks ties among equally good hits by ``(created_at, id)``, newest first
    (``search/repository.py``): with random ids, the order of equally matching rows was the
    order of random numbers, so the same memories ranked differently in two stores filled alike
    (23 of the quality sets' 237 keyword questions changed their top 10 from one run to the
    next). A new row's id also lands at the end of its owner's range of the primary key."""
    return uuid7()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
