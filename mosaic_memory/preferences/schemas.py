"""Request and response bodies for preferences."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator

from mosaic_memory.common.schemas import StrictModel

# Keys travel in the URL path, so no "/" and no spaces; they read like identifiers.
KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,255}$"
# "" (everywhere), "agent:ID" or "project:ID".
SCOPE_PATTERN = r"^$|^(agent|project):[A-Za-z0-9_][A-Za-z0-9_.:@/-]{0,240}$"

PreferenceKey = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=KEY_PATTERN)]
PreferenceScope = Annotated[str, StringConstraints(max_length=256, pattern=SCOPE_PATTERN)]
PreferenceSource = Literal["user", "agent"]

PUT_EXAMPLE: dict[str, Any] = {"value": "small PRs, tests first", "scope": "project:mosaic", "mutable": False}
OUT_EXAMPLE: dict[str, Any] = {
    "id": "5b0f8a9e-2f7c-4d35-9c43-0d6f3c1b2a10",
    "owner": "user:alice",
    "key": "code_review_style",
    "scope": "project:mosaic",
    "value": "small PRs, tests first",
    "mutable": False,
    "source": "user",
    "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
    "created_at": "2026-11-25T10:00:00Z",
    "updated_at": "2026-11-25T10:00:00Z",
    "created": True,
}
CHANGE_EXAMPLE: dict[str, Any] = {
    "id": "0c7e1d52-8a1b-4f6e-b1f2-6d2c9e0a7b33",
    "preference_id": "5b0f8a9e-2f7c-4d35-9c43-0d6f3c1b2a10",
    "owner": "user:alice",
    "key": "code_review_style",
    "scope": "project:mosaic",
    "action": "update",
    "old_value": "big PRs are fine",
    "new_value": "small PRs, tests first",
    "changed_by": "user:alice key:mm_1a2b3c4d",
    "source": "user",
    "changed_at": "2026-11-25T10:00:00Z",
}


def check_storable_json(value: Any) -> Any:
    """Refuse what PostgreSQL's jsonb cannot hold (NaN, infinities, NUL characters)."""
    try:
        text = json.dumps(value, allow_nan=False)
    except ValueError:
        raise ValueError("value must be finite JSON (no NaN or Infinity)") from None
    if "\\u0000" in text:
        raise ValueError("value must not contain NUL characters")
    return value


class PreferencePut(StrictModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [PUT_EXAMPLE]})

    value: Any = Field(description="any JSON value: a string, number, boolean, list, object or null")
    scope: PreferenceScope = Field(default="", description="'' (everywhere), 'agent:ID' or 'project:ID'")
    mutable: StrictBool | None = Field(
        default=None,
        description="false: agent-bound keys may read but not change or delete it. "
        "Default true on create; omitted on replace keeps the current setting",
    )
    source: PreferenceSource | None = Field(
        default=None, description="who stated it; default 'agent' for agent-bound keys, else 'user'"
    )
    owner: str | None = Field(default=None, description="'team:NAME' to write to a team; default the key's user")

    @field_validator("value")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return check_storable_json(value)


class PreferenceOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [OUT_EXAMPLE]})

    id: uuid.UUID
    owner: str
    key: str
    scope: str
    value: Any
    mutable: bool
    source: str
    embedding_model: str | None
    created_at: datetime
    updated_at: datetime
    created: bool = Field(default=False, description="true when this write created the preference")
    secrets_redacted: int = Field(
        default=0, description="credentials in the written text, stored as [REDACTED:<kind>] (MOSAIC_SECRETS__MODE)"
    )


class PreferenceChange(BaseModel):
    """One entry of a preference's history."""

    model_config = ConfigDict(json_schema_extra={"examples": [CHANGE_EXAMPLE]})

    id: uuid.UUID
    preference_id: uuid.UUID
    owner: str
    key: str
    scope: str
    action: Literal["create", "update", "delete"]
    old_value: Any = Field(description="null on create")
    new_value: Any = Field(description="null on delete")
    changed_by: str | None = Field(description="the writer: 'user:NAME key:PREFIX' plus 'agent:ID' when agent-bound")
    source: str
    changed_at: datetime
