"""Request and response bodies for skills."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from mosaic_memory.common.schemas import StrictModel, Tags

# Printable text: no control characters (PostgreSQL text cannot hold NUL at all).
SkillName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")
]

CREATE_EXAMPLE: dict[str, Any] = {
    "name": "deploy-to-staging",
    "description": "Deploy the current branch to the staging environment",
    "instructions": "1. Run the tests. 2. Build and push the image. 3. kubectl rollout restart -n staging.",
    "tags": ["deploy", "k8s"],
}
UPDATE_EXAMPLE: dict[str, Any] = {"description": "Deploy any branch to the staging cluster and check its health"}
OUT_EXAMPLE: dict[str, Any] = {
    "id": "8d3c2b1a-6f5e-4d3c-9b2a-1f0e9d8c7b6a",
    "owner": "team:platform",
    **CREATE_EXAMPLE,
    "metadata": {},
    "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
    "created_at": "2026-11-25T10:00:00Z",
    "updated_at": "2026-11-25T10:00:00Z",
}


def _no_nul(*texts: str | None) -> None:
    if any(t is not None and "\x00" in t for t in texts):
        raise ValueError("text must not contain NUL characters")


class SkillCreate(StrictModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [CREATE_EXAMPLE]})

    name: SkillName = Field(description="unique per owner")
    description: str = Field(min_length=1, description="what the skill does; embedded with the name")
    instructions: str = Field(default="", description="how to do it (found by keyword search, not embedded)")
    tags: Tags = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    owner: str | None = Field(default=None, description="'team:NAME' to write to a team; default the key's user")

    @model_validator(mode="after")
    def _check(self) -> SkillCreate:
        if not self.description.strip():
            raise ValueError("description must not be blank")
        _no_nul(self.description, self.instructions)
        return self


class SkillUpdate(StrictModel):
    # minProperties: an empty update is refused (below), and the document says so.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [UPDATE_EXAMPLE], "minProperties": 1})

    name: SkillName | None = None
    description: str | None = Field(default=None, min_length=1)
    instructions: str | None = None
    tags: Tags | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> SkillUpdate:
        if not self.model_fields_set:
            raise ValueError("nothing to update: give at least one field")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        if self.description is not None and not self.description.strip():
            raise ValueError("description must not be blank")
        _no_nul(self.description, self.instructions)
        return self


class SkillOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [OUT_EXAMPLE]})

    id: uuid.UUID
    owner: str
    name: str
    description: str
    instructions: str
    tags: list[str]
    metadata: dict[str, Any]
    embedding_model: str | None
    created_at: datetime
    updated_at: datetime
    secrets_redacted: int = Field(
        default=0, description="credentials in the written text, stored as [REDACTED:<kind>] (MOSAIC_SECRETS__MODE)"
    )
