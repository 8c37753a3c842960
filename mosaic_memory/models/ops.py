"""Operational tables: the job ledger and instance metadata."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mosaic_memory.models.base import Base, new_id, utc_now


class JobRun(Base):
    """One run of a job: what started it, how it went, and what it changed."""

    __tablename__ = "job_runs"
    __table_args__ = (
        Index(
            "uq_job_runs_job_id_scheduled_for",
            "job_id",
            "scheduled_for",
            unique=True,
            postgresql_where=text("scheduled_for IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16))  # "schedule" | "cli" | "api" | "web"
    status: Mapped[str] = mapped_column(String(16), default="running")
    dry_run: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    errors: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    rolled_back_at: Mapped[datetime | None]
    message: Mapped[str | None] = mapped_column(Text)
    # A scheduled run's fire time: unique per job, so of several replicas one runs each fire.
    scheduled_for: Mapped[datetime | None]


class InstanceMeta(Base):
    """Key/value facts about this instance (embedding model, instance id)."""

    __tablename__ = "instance_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
