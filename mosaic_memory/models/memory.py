"""The memory kinds: insights, preferences, agent logs, skills, and their links.

Every table is keyed by ``(owner_id, id)`` so the owner leads every key and index (the
schema can be sharded by owner). Embedded rows record ``embedding_model`` and
``content_hash``; the vector column's dimension is fixed by the migration.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Computed, Float, ForeignKey, Identity, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from mosaic_memory.common.vectors import StoredVector
from mosaic_memory.models.base import Base, Timestamps, new_id, utc_now

TSV_INSIGHT = "to_tsvector('english', coalesce(category, '') || ' ' || content)"
TSV_PREFERENCE = "to_tsvector('english', key || ' ' || coalesce(value::text, ''))"
TSV_LOG = "to_tsvector('english', content)"
TSV_SKILL = "to_tsvector('english', name || ' ' || description || ' ' || instructions)"


class EmbeddedRow:
    content_hash: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[Any] = mapped_column(StoredVector(), nullable=True)
    embedding_model: Mapped[str | None] = mapped_column(String(200))


class Insight(EmbeddedRow, Timestamps, Base):
    __tablename__ = "insights"

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    content: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(128))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    importance: Mapped[float] = mapped_column(Float, default=0.5)
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    pinned: Mapped[bool] = mapped_column(default=False)
    valid_from: Mapped[datetime] = mapped_column(default=utc_now)
    valid_to: Mapped[datetime | None]
    superseded_by: Mapped[uuid.UUID | None]
    expires_at: Mapped[datetime | None]
    access_count: Mapped[int] = mapped_column(Integer, default=0)
    last_accessed_at: Mapped[datetime | None]
    source_type: Mapped[str] = mapped_column(String(16), default="api")
    source_ref: Mapped[str | None] = mapped_column(Text)
    created_by_run: Mapped[uuid.UUID | None]
    search_tsv: Mapped[Any] = mapped_column(TSVECTOR, Computed(TSV_INSIGHT, persisted=True))


class Preference(EmbeddedRow, Timestamps, Base):
    __tablename__ = "preferences"

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(256))
    scope: Mapped[str] = mapped_column(String(256), default="")  # "" | "agent:ID" | "project:ID"
    value: Mapped[Any] = mapped_column(JSONB)
    mutable: Mapped[bool] = mapped_column(default=True)
    source: Mapped[str] = mapped_column(String(16), default="user")
    search_tsv: Mapped[Any] = mapped_column(TSVECTOR, Computed(TSV_PREFERENCE, persisted=True))


class PreferenceHistory(Base):
    __tablename__ = "preference_history"

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    preference_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(String(256))
    scope: Mapped[str] = mapped_column(String(256), default="")
    old_value: Mapped[Any] = mapped_column(JSONB, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSONB, nullable=True)
    action: Mapped[str] = mapped_column(String(16))  # "set" | "delete"
    changed_by: Mapped[str | None] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(16), default="user")
    changed_at: Mapped[datetime] = mapped_column(default=utc_now)


class AgentLog(EmbeddedRow, Base):
    __tablename__ = "agent_logs"

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Insertion order within an owner, for stable ordering of events that share a timestamp.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    session_id: Mapped[str | None] = mapped_column(String(256))
    agent_id: Mapped[str | None] = mapped_column(String(256))
    level: Mapped[str] = mapped_column(String(16), default="info")
    content: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utc_now)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    tier: Mapped[str] = mapped_column(String(8), default="hot")
    tier_changed_at: Mapped[datetime | None]
    summarized_at: Mapped[datetime | None]
    summarized_by_run: Mapped[uuid.UUID | None]
    search_tsv: Mapped[Any] = mapped_column(TSVECTOR, Computed(TSV_LOG, persisted=True))


class Skill(EmbeddedRow, Timestamps, Base):
    __tablename__ = "skills"

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text)
    instructions: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    search_tsv: Mapped[Any] = mapped_column(TSVECTOR, Computed(TSV_SKILL, persisted=True))


class InsightSource(Base):
    """Links an insight to the agent logs it was summarized from."""

    __tablename__ = "insight_sources"

    owner_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    insight_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    log_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    run_id: Mapped[uuid.UUID | None]
