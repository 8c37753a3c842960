"""Owners, keys and the authenticated principal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mosaic_memory.common.owner_id_list import OwnerIdList

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$"

# OpenAPI examples: user alice (member of team platform) and her laptop key, used by every kind's examples.
USER_EXAMPLE: dict[str, Any] = {
    "id": "3f6c1a2e-9b4d-4e8a-a1c7-2d5e8f0b6c14",
    "kind": "user",
    "name": "alice",
    "is_admin": False,
    "created_at": "2026-11-25T09:00:00Z",
}
TEAM_EXAMPLE: dict[str, Any] = {
    "id": "7a2d4c6e-1b3f-4a5c-8e9d-0f1a2b3c4d5e",
    "kind": "team",
    "name": "platform",
    "is_admin": False,
    "created_at": "2026-11-25T09:05:00Z",
    "members": ["alice"],
}
KEY_EXAMPLE: dict[str, Any] = {
    "id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
    "user": "alice",
    "name": "laptop",
    "prefix": "mm_1a2b3c4d",
    "scopes": ["read", "write"],
    "agent_id": "coder",
    "created_at": "2026-11-25T09:10:00Z",
    "last_used_at": "2026-11-25T10:15:01Z",
    "revoked_at": None,
}
API_KEY_EXAMPLE = "mm_1a2b3c4d_Zk3vQ9rT1xWb7YpL2mN8sHc4JdF6gKa0"


@dataclass(frozen=True)
class OwnerRef:
    id: uuid.UUID
    kind: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's user, the owners it may read and write, its scopes."""

    user: OwnerRef
    key_id: uuid.UUID | None
    scopes: frozenset[str]
    agent_id: str | None = None
    teams: tuple[OwnerRef, ...] = field(default=())

    @property
    def owners(self) -> tuple[OwnerRef, ...]:
        return (self.user, *self.teams)

    @cached_property
    def owner_ids(self) -> OwnerIdList:
        """Kept: every statement of a request binds them (their text is written once)."""
        return OwnerIdList([o.id for o in self.owners])

    def owner_by_id(self, owner_id: uuid.UUID) -> OwnerRef:
        for owner in self.owners:
            if owner.id == owner_id:
                return owner
        raise KeyError(owner_id)


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "alice", "admin": False}]})
    name: str = Field(pattern=NAME_PATTERN, examples=["alice"])
    admin: bool = False


class TeamCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "platform", "members": ["alice"]}]}
    )
    name: str = Field(pattern=NAME_PATTERN, examples=["platform"])
    members: list[str] = Field(default_factory=list, examples=[["alice"]])


class TeamMemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"user": "alice", "role": "maintainer"}]})
    user: str = Field(pattern=NAME_PATTERN)
    role: Literal["member", "maintainer"] = "member"


class KeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"user": "alice", "name": "laptop", "scopes": ["read", "write"], "agent_id": "coder"}]
        },
    )
    user: str = Field(pattern=NAME_PATTERN, examples=["alice"])
    name: str = Field(default="", max_length=128)
    scopes: list[Scope] = Field(default=["read", "write"], min_length=1)
    agent_id: str | None = Field(default=None, max_length=128)


class OwnerOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [USER_EXAMPLE]})

    id: uuid.UUID
    kind: str
    name: str
    is_admin: bool = False
    created_at: datetime


class TeamOut(OwnerOut):
    model_config = ConfigDict(json_schema_extra={"examples": [TEAM_EXAMPLE]})

    members: list[str] = Field(default_factory=list)


class KeyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [KEY_EXAMPLE]})

    id: uuid.UUID
    user: str
    name: str
    prefix: str
    scopes: list[str]
    agent_id: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class UserCreated(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"user": USER_EXAMPLE, "api_key": API_KEY_EXAMPLE}]})

    user: OwnerOut
    api_key: str = Field(description="shown once; only its prefix is stored in the clear")


class KeyCreated(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"key": KEY_EXAMPLE, "api_key": API_KEY_EXAMPLE}]})

    key: KeyOut
    api_key: str = Field(description="shown once; only its prefix is stored in the clear")
