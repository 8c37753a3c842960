"""Peers, grants, audit rows, and the request and answer peers exchange over mutual TLS."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mosaic_memory.common.schemas import Kind, StrictModel, Tags, UtcDatetime
from mosaic_memory.federation.identity import INSTANCE_NAME_PATTERN
from mosaic_memory.search.schemas import Hit, Mode, PeerFailure, SearchFilters

__all__ = [
    "AuditOut",
    "GrantCreate",
    "GrantOut",
    "PeerCreate",
    "PeerExportRequest",
    "PeerFailure",
    "PeerGrant",
    "PeerGrantsRequest",
    "PeerOut",
    "PeerSearchRequest",
    "PeerSearchResponse",
    "parse_duration",
]

RECIPIENT_PATTERN = r"^(user|team):[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)?$"


PEER_EXAMPLE: dict[str, Any] = {
    "name": "home",
    "url": "https://home.example.net:8766",
    "created_at": "2026-12-01T09:00:00Z",
    "last_contact_at": "2026-12-02T10:15:01Z",
    "last_latency_ms": 42.5,
    "cert_not_after": "2026-12-03T09:00:00Z",
    "last_error": None,
}
GRANT_EXAMPLE: dict[str, Any] = {
    "id": "5c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
    "peer": "home",
    "owner": "user:alice",
    "recipient": "user:alice@home",
    "kinds": ["insights", "preferences"],
    "tags": ["work"],
    "created_at": "2026-12-01T09:05:00Z",
    "expires_at": "2026-12-31T09:05:00Z",
    "revoked_at": None,
    "active": True,
}
AUDIT_EXAMPLE: dict[str, Any] = {
    "id": "8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a",
    "at": "2026-12-02T10:15:01Z",
    "peer": "home",
    "grant_id": GRANT_EXAMPLE["id"],
    "owner": "user:alice",
    "recipient": "user:alice",
    "operation": "search",
    "query_hash": "3f0a5d1e9c7b2a4f6e8d0c1b3a5f7e9d2c4b6a8f0e1d3c5b7a9f2e4d6c8b0a1f",
    "query_text": None,
    "hits": 3,
    "latency_ms": 18.2,
}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` → a timedelta. Raises ValueError on anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", text)
    if not match:
        raise ValueError(f"duration {text!r} is not like 30d, 12h, 90m or 2w")
    value, unit = float(match.group(1)), match.group(2)
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[unit]: value})


class PeerCreate(StrictModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "home", "url": "https://home.example.net:8766"}]}
    )

    name: str = Field(pattern=INSTANCE_NAME_PATTERN, description="the name in the peer's certificate")
    url: str = Field(pattern=r"^https://", max_length=2048, description="its federation listener, https://host:port")


class PeerOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [PEER_EXAMPLE]})

    name: str
    url: str
    created_at: datetime
    last_contact_at: datetime | None
    last_latency_ms: float | None
    cert_not_after: datetime | None
    last_error: str | None


class GrantCreate(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"peer": "home", "owner": "user:alice", "kinds": ["insights"], "tags": ["work"], "expires_in": "30d"}
            ]
        },
    )

    peer: str = Field(pattern=INSTANCE_NAME_PATTERN)
    owner: str = Field(description="whose memory: 'user:NAME' or 'team:NAME' on this instance")
    kinds: list[Kind] = Field(min_length=1)
    tags: Tags | None = Field(default=None, description="only rows carrying any of these tags")
    recipient: str | None = Field(
        default=None,
        pattern=RECIPIENT_PATTERN,
        description="who may use it on the peer ('user:alice@home'); default the owner's own label there",
    )
    expires_at: UtcDatetime | None = None
    expires_in: str | None = Field(default=None, description="instead of expires_at: 30d, 12h, 2w")

    @field_validator("expires_in")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class GrantOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [GRANT_EXAMPLE]})

    id: uuid.UUID
    peer: str
    owner: str
    recipient: str
    kinds: list[str]
    tags: list[str] | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool


class AuditOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [AUDIT_EXAMPLE]})

    id: uuid.UUID
    at: datetime
    peer: str
    grant_id: uuid.UUID | None
    owner: str | None
    recipient: str
    operation: str
    query_hash: str | None
    query_text: str | None
    hits: int
    latency_ms: float


class PeerSearchRequest(StrictModel):
    """What one instance asks another: the query text (the peer embeds it with its own model)."""

    query: str = Field(min_length=1, max_length=4096)
    k: int = Field(default=10, ge=1, le=100)
    kinds: list[Kind] | None = None
    mode: Mode = "hybrid"
    filters: SearchFilters = Field(default_factory=SearchFilters)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    # The caller's owners on the asking instance ("user:alice", "team:platform"); grants name one.
    recipients: list[str] = Field(min_length=1, max_length=256)


class PeerSearchResponse(BaseModel):
    instance: str
    grants: int = Field(description="how many grants covered the request; 0: nothing is shared with the caller")
    hits: list[Hit]


class PeerGrantsRequest(StrictModel):
    """A peer asking which grants it may use for these of its owners (before a pull)."""

    recipients: list[str] = Field(min_length=1, max_length=256)


class PeerGrant(BaseModel):
    id: uuid.UUID
    owner: str
    kinds: list[str]
    tags: list[str] | None
    expires_at: datetime


class PeerExportRequest(StrictModel):
    """A peer's pull: the memory one active grant covers, as an export stream (JSON Lines)."""

    recipients: list[str] = Field(min_length=1, max_length=256)
    grant_id: uuid.UUID
    kinds: list[Kind] | None = None
