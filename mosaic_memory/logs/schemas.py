"""Request and response bodies for agent logs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mosaic_memory.common.schemas import StrictModel, UtcDatetime

Level = Literal["debug", "info", "warning", "error"]
LEVELS: tuple[Level, ...] = ("debug", "info", "warning", "error")
Tier = Literal["hot", "warm", "cold"]

EVENT_EXAMPLE: dict[str, Any] = {
    "session_id": "run-2026-11-25-01",
    "agent_id": "coder",
    "level": "error",
    "content": "pytest failed: connection refused on port 5432",
    "metadata": {"tool": "bash", "exit_code": 1},
    "occurred_at": "2026-11-25T10:15:00Z",
}
OUT_EXAMPLE: dict[str, Any] = {
    "id": "5f0c6a4e-8a59-4a1b-9f39-0c1f3f1d2b7e",
    "owner": "user:alice",
    "session_id": "run-2026-11-25-01",
    "agent_id": "coder",
    "level": "error",
    "content": "pytest failed: connection refused on port 5432",
    "metadata": {"tool": "bash", "exit_code": 1},
    "occurred_at": "2026-11-25T10:15:00Z",
    "created_at": "2026-11-25T10:15:01Z",
    "tier": "hot",
    "embedded": True,
    "summarized_at": None,
}


class LogEventIn(StrictModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EVENT_EXAMPLE]})

    session_id: str = Field(min_length=1, max_length=256, description="the agent session this event belongs to")
    agent_id: str | None = Field(
        default=None, min_length=1, max_length=256, description="default: the agent the API key is bound to"
    )
    level: Level = "info"
    content: str = Field(min_length=1, description="what happened, in plain text")
    metadata: dict[str, Any] = Field(default_factory=dict)
    occurred_at: UtcDatetime | None = Field(
        default=None, description="default: when the service received it; naive = UTC"
    )
    id: uuid.UUID | None = Field(
        default=None,
        description="a client-chosen id that makes the write idempotent: an event whose id the owner already "
        "holds (same content) is not stored again and counts as a duplicate; default a new id",
    )

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content must not be blank")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class LogBatchIn(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        EVENT_EXAMPLE,
                        {"session_id": "run-2026-11-25-01", "content": "retrying with the test database"},
                    ]
                }
            ]
        },
    )

    events: list[LogEventIn] = Field(
        min_length=1, description="1..logs.max_events_per_call (default 5,000) events, stored in one transaction"
    )
    owner: str | None = Field(default=None, description="'team:NAME' to write to a team; default the key's user")


class LogBatchOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ids": [OUT_EXAMPLE["id"], "0b7f0a9e-3c51-4d0e-b1c4-6f5f0d9a8e21"],
                    "count": 2,
                    "pending": 0,
                    "duplicates": 0,
                }
            ]
        }
    )

    ids: list[uuid.UUID] = Field(description="the events' ids, in request order (a duplicate's is the stored one's)")
    count: int = Field(description="events stored by this call (duplicates not counted)")
    pending: int = Field(
        default=0,
        description="events stored without a vector yet: found by keyword at once, by meaning once the "
        "background embedder has reached them",
    )
    secrets_redacted: int = Field(
        default=0, description="credentials in the written text, stored as [REDACTED:<kind>] (MOSAIC_SECRETS__MODE)"
    )
    duplicates: int = Field(default=0, description="events left out because their client-chosen id is already stored")


class LogOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [OUT_EXAMPLE]})

    id: uuid.UUID
    owner: str
    session_id: str | None
    agent_id: str | None
    level: str
    content: str
    metadata: dict[str, Any]
    occurred_at: datetime
    created_at: datetime
    tier: str
    embedded: bool = Field(description="true once the event has a vector (semantic search can find it)")
    summarized_at: datetime | None


class LogSessionOut(BaseModel):
    """One agent session of one owner, as a line of a list of sessions."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "owner": "user:alice",
                    "session_id": "run-2026-11-25-01",
                    "events": 42,
                    "first_at": "2026-11-25T10:15:00Z",
                    "last_at": "2026-11-25T11:02:31Z",
                }
            ]
        }
    )

    owner: str
    session_id: str | None = Field(description="null: the events logged without a session")
    events: int
    first_at: datetime
    last_at: datetime
