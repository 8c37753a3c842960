"""Shapes of the job ledger: one run, a page of runs, a registered job."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mosaic_memory.common.schemas import StrictModel

RunStatus = Literal["running", "succeeded", "partial", "failed", "skipped", "abandoned", "rolled_back"]
Trigger = Literal["schedule", "cli", "api", "web", "test"]

RUN_EXAMPLE: dict[str, Any] = {
    "id": "e4f5a6b7-c8d9-4e0f-a1b2-c3d4e5f6a7b8",
    "job_id": "summarize",
    "trigger": "schedule",
    "status": "succeeded",
    "dry_run": False,
    "started_at": "2026-11-25T02:00:00Z",
    "finished_at": "2026-11-25T02:00:42Z",
    "progress": 1.0,
    "counts": {
        "groups": 3,
        "logs_consumed": 57,
        "insights_created": 4,
        "insights_merged": 1,
        "insights_deduplicated": 0,
        "insights_superseded": 0,
    },
    "errors": [],
    "changes": {},
    "rolled_back_at": None,
    "message": None,
}
JOB_EXAMPLE: dict[str, Any] = {
    "id": "summarize",
    "description": "summarize unsummarized agent logs into insights (per owner and session, or day)",
    "schedule": "0 2 * * *",
    "timezone": "UTC",
    "supports_rollback": True,
    "last_run": RUN_EXAMPLE,
}


class JobRunOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [RUN_EXAMPLE]})

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
    scheduled_for: datetime | None = Field(default=None, description="the fire time of a scheduled run")


class JobOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE]})

    id: str
    description: str
    schedule: str | None = Field(description="cron expression in the configured time zone; null: on demand only")
    timezone: str
    supports_rollback: bool
    last_run: JobRunOut | None = None


class RunRequest(StrictModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"dry_run": True}]})

    dry_run: bool = Field(default=False, description="record the diff the run would apply, change nothing")
