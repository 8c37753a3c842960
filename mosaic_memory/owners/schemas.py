"""Owners, keys and the authenticated principal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$"


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

    @property
    def owner_ids(self) -> list[uuid.UUID]:
        return [o.id for o in self.owners]

    def owner_by_id(self, owner_id: uuid.UUID) -> OwnerRef:
        for owner in self.owners:
            if owner.id == owner_id:
                return owner
        raise KeyError(owner_id)


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, examples=["alice"])
    admin: bool = False


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, examples=["platform"])
    members: list[str] = Field(default_factory=list, examples=[["alice"]])


class TeamMemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(pattern=NAME_PATTERN)
    role: Literal["member", "maintainer"] = "member"


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(pattern=NAME_PATTERN, examples=["alice"])
    name: str = Field(default="", max_length=128)
    scopes: list[Scope] = Field(default=["read", "write"], min_length=1)
    agent_id: str | None = Field(default=None, max_length=128)


class OwnerOut(BaseModel):
    id: uuid.UUID
    kind: str
    name: str
    is_admin: bool = False
    created_at: datetime


class TeamOut(OwnerOut):
    members: list[str] = Field(default_factory=list)


class KeyOut(BaseModel):
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
    user: OwnerOut
    api_key: str = Field(description="shown once; only its prefix is stored in the clear")


class KeyCreated(BaseModel):
    key: KeyOut
    api_key: str = Field(description="shown once; only its prefix is stored in the clear")
