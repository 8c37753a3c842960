"""The search request and its hits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mosaic_memory.common.schemas import KINDS, Kind, StrictModel, Tags, UtcDatetime

Mode = Literal["semantic", "keyword", "hybrid"]

# The hit is the insight of insights/schemas.py's example, found by the search request's example.
HIT_EXAMPLE: dict[str, Any] = {
    "id": "2b9e4f71-6c3a-4d8e-9f12-a7b5c3d1e0f4",
    "kind": "insights",
    "content": "The user prefers dark themes in every editor",
    "score": 0.83,
    "scores": {"semantic": 0.71, "keyword": 0.42},
    "tags": ["ui", "editor"],
    "metadata": {},
    "owner": "user:alice",
    "origin": "local",
    "created_at": "2026-11-25T10:00:00Z",
}


class SearchFilters(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tags": ["ui"], "created_after": "2026-11-01T00:00:00Z"}]},
    )

    tags: Tags | None = Field(default=None, description="rows carrying any of these tags")
    tags_all: Tags | None = Field(default=None, description="rows carrying all of these tags")
    category: str | None = Field(default=None, max_length=128)
    metadata: dict[str, Any] | None = Field(default=None, description="JSON containment (@>) on metadata")
    agent_id: str | None = Field(default=None, max_length=256)
    session_id: str | None = Field(default=None, max_length=256)
    created_after: UtcDatetime | None = None
    created_before: UtcDatetime | None = None

    @model_validator(mode="after")
    def _range(self) -> SearchFilters:
        if self.created_after and self.created_before and self.created_after >= self.created_before:
            raise ValueError("created_after must be earlier than created_before")
        return self


class SearchRequest(StrictModel):
    model_config = StrictModel.model_config | {
        "json_schema_extra": {"examples": [{"query": "what colour scheme does she prefer?", "k": 5, "mode": "hybrid"}]}
    }

    query: str = Field(min_length=1, max_length=4096)
    k: int = Field(default=10, ge=1, le=100)
    kinds: list[Kind] | None = Field(default=None, min_length=1, description=f"any of {list(KINDS)}; default all")
    mode: Mode = "hybrid"
    filters: SearchFilters = Field(default_factory=SearchFilters)
    owner: str | None = Field(default=None, description="restrict to one owner ('team:NAME'); default all visible")
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    include_history: bool = Field(default=False, description="include superseded and expired insights")
    recency_weight: float = Field(default=0.0, ge=0.0, le=1.0, description="0 = pure relevance")
    recency_half_life_days: float = Field(default=30.0, gt=0)
    importance_weight: float = Field(default=0.0, ge=0.0, le=1.0, description="0 = pure relevance")
    diversity: float = Field(default=0.0, ge=0.0, le=1.0, description="MMR: 0 = off, 1 = most diverse")
    federated: bool = Field(
        default=False, description="also search every federation peer holding a grant for the caller"
    )

    @model_validator(mode="after")
    def _not_blank(self) -> SearchRequest:
        if not self.query.strip():
            raise ValueError("query must not be blank")
        return self


class Hit(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [HIT_EXAMPLE]})

    id: uuid.UUID
    kind: Kind
    content: str
    score: float = Field(
        description="calibrated relevance in 0..1, one scale in every mode; 0.5 (search.relevance_cut) "
        "separates unrelated from relevant"
    )
    scores: dict[str, float] = Field(
        default_factory=dict, description="raw signals: semantic (cosine), keyword (IDF-weighted coverage), rerank"
    )
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    owner: str
    origin: str = Field(default="local", description="the instance the hit comes from (federated search)")
    created_at: datetime


class PeerFailure(BaseModel):
    """A federation peer that gave no answer to a federated search, and why."""

    peer: str
    reason: str


class SearchResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"hits": [HIT_EXAMPLE], "mode": "hybrid"}]})

    hits: list[Hit]
    mode: Mode
    federated: bool = False
    peers_failed: list[PeerFailure] = Field(
        default_factory=list, description="federated search: the peers that did not answer (the rest did)"
    )
