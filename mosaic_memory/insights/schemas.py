"""Request and response bodies for insights."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mosaic_memory.common.schemas import Source, StrictModel, Tags, UtcDatetime

EXAMPLE: dict[str, Any] = {
    "content": "The user prefers dark themes in every editor",
    "tags": ["ui", "editor"],
    "category": "preference",
    "importance": 0.7,
}
OUT_EXAMPLE: dict[str, Any] = {
    "id": "2b9e4f71-6c3a-4d8e-9f12-a7b5c3d1e0f4",
    "owner": "user:alice",
    **EXAMPLE,
    "metadata": {},
    "confidence": 1.0,
    "pinned": False,
    "valid_from": "2026-11-25T10:00:00Z",
    "valid_to": None,
    "superseded_by": None,
    "expires_at": None,
    "access_count": 3,
    "last_accessed_at": "2026-11-25T10:20:00Z",
    "source": {"type": "api", "ref": None},
    "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
    "created_at": "2026-11-25T10:00:00Z",
    "updated_at": "2026-11-25T10:00:00Z",
    "merged": False,
    "deduplicated": False,
}
SECOND_EXAMPLE: dict[str, Any] = {
    "content": "Staging deploys go through the platform team's pipeline",
    "tags": ["deploy"],
    "category": "process",
    "owner": "team:platform",
    "source": {"type": "import", "ref": "wiki/deploys.md"},
}
SECOND_OUT_EXAMPLE: dict[str, Any] = {
    **OUT_EXAMPLE,
    **SECOND_EXAMPLE,
    "id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
    "importance": 0.5,
    "access_count": 0,
    "last_accessed_at": None,
}
UPDATE_EXAMPLE: dict[str, Any] = {"importance": 0.9, "pinned": True, "tags": ["ui", "editor", "theme"]}


class InsightCreate(StrictModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})

    content: str = Field(min_length=1, description="the fact, in plain text")
    tags: Tags = Field(default_factory=list)
    category: str | None = Field(default=None, max_length=128)
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    pinned: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)
    owner: str | None = Field(default=None, description="'team:NAME' to write to a team; default the key's user")
    expires_at: UtcDatetime | None = None
    # Bounded (100 years) so that now + ttl stays a representable datetime instead of overflowing.
    ttl_seconds: float | None = Field(
        default=None, gt=0, le=100 * 365 * 86400, description="alternative to expires_at (at most 100 years)"
    )
    source: Source = Field(default_factory=Source)
    supersedes: uuid.UUID | None = Field(default=None, description="id of an insight this one replaces")

    @model_validator(mode="after")
    def _one_expiry(self) -> InsightCreate:
        if self.expires_at is not None and self.ttl_seconds is not None:
            raise ValueError("give expires_at or ttl_seconds, not both")
        if not self.content.strip():
            raise ValueError("content must not be blank")
        return self


class InsightBatch(StrictModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"items": [EXAMPLE, SECOND_EXAMPLE]}]})

    items: list[InsightCreate] = Field(min_length=1)


class InsightUpdate(StrictModel):
    # minProperties: an empty update is refused (below), and the document says so.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [UPDATE_EXAMPLE], "minProperties": 1})

    content: str | None = Field(default=None, min_length=1)
    tags: Tags | None = None
    category: str | None = Field(default=None, max_length=128)
    importance: float | None = Field(default=None, ge=0.0, le=1.0)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    pinned: bool | None = None
    metadata: dict[str, Any] | None = None
    expires_at: UtcDatetime | None = None
    valid_to: UtcDatetime | None = None
    superseded_by: uuid.UUID | None = None

    @model_validator(mode="after")
    def _not_blank(self) -> InsightUpdate:
        if self.content is not None and not self.content.strip():
            raise ValueError("content must not be blank")
        if not self.model_fields_set:
            raise ValueError("nothing to update: give at least one field")
        return self


class InsightOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [OUT_EXAMPLE]})

    id: uuid.UUID
    owner: str
    content: str
    category: str | None
    tags: list[str]
    metadata: dict[str, Any]
    importance: float
    confidence: float
    pinned: bool
    valid_from: datetime
    valid_to: datetime | None
    superseded_by: uuid.UUID | None
    expires_at: datetime | None
    access_count: int
    last_accessed_at: datetime | None
    source: Source
    embedding_model: str | None
    created_at: datetime
    updated_at: datetime
    merged: bool = Field(default=False, description="true when the write was merged into this existing insight")
    deduplicated: bool = Field(default=False, description="true when identical content already existed")
    secrets_redacted: int = Field(
        default=0, description="credentials in the written text, stored as [REDACTED:<kind>] (MOSAIC_SECRETS__MODE)"
    )


class InsightBatchOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [OUT_EXAMPLE, SECOND_OUT_EXAMPLE], "created": 2, "merged": 0}]}
    )

    items: list[InsightOut]
    created: int
    merged: int
    secrets_redacted: int = Field(default=0, description="credentials redacted over all items (see InsightOut)")
