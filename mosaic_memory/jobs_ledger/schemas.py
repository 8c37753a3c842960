"""Shapes of the job ledger: one run, a page of runs, a registered job."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mosaic_memory.common.schemas import StrictModel

RunStatus = Literal["running", "succeeded", "partial", "failed", "skipped", "abandoned", "rolled_back"]
Trigger = Literal["schedule", "cli", "api", "test"]


class JobRunOut(BaseModel):
    id: uuid.UUID
    job_id: str
    trigger: str
    status: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    progress: float = Field(description="0.0 to 1.0")
    counts: dict[str, Any]
    errors: list[Any]
    changes: dict[str, Any]
    rolled_back_at: datetime | None
    message: str | None


class JobOut(BaseModel):
    id: str
    description: str
    schedule: str | None = Field(description="cron expression in the configured time zone; null: on demand only")
    timezone: str
    supports_rollback: bool
    last_run: JobRunOut | None = None


class RunRequest(StrictModel):
    dry_run: bool = Field(default=False, description="record the diff the run would apply, change nothing")
