"""The context request and the packed block it answers with."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from mosaic_memory.common.schemas import StrictModel

ContextKind = Literal["preferences", "insights", "skills"]
CONTEXT_KINDS: tuple[ContextKind, ...] = ("preferences", "insights", "skills")

DEFAULT_TOKEN_BUDGET = 1500
MIN_TOKEN_BUDGET = 50
MAX_TOKEN_BUDGET = 20_000

# A project id as preference scopes name it ("project:<id>").
ProjectId = Annotated[str, StringConstraints(min_length=1, max_length=240, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:@/-]*$")]

REQUEST_EXAMPLE: dict[str, Any] = {"query": "review this pull request", "project": "mosaic", "token_budget": 1500}
TEXT_EXAMPLE = (
    "<mosaic-memory-context>\n"
    "## Preferences\n"
    "- code_review_style (project:mosaic): small PRs, tests first\n"
    "- editor_theme: dark\n"
    "## Insights\n"
    "- Reviews of the search module need a benchmark run before merging\n"
    "## Skills\n"
    "- review-checklist: How to review a pull request in this repository\n"
    "  1. Read the linked issue. 2. Run scripts/test. 3. Check the docs changed with the code.\n"
    "[left out to fit the token budget: 2 insights]\n"
    "</mosaic-memory-context>"
)
RESPONSE_EXAMPLE: dict[str, Any] = {
    "text": TEXT_EXAMPLE,
    "tokens": 96,
    "token_budget": 1500,
    "tokenizer": "all-MiniLM-L6-v2 WordPiece",
    "included": {"preferences": 2, "insights": 1, "skills": 1},
    "omitted": {"preferences": 0, "insights": 2, "skills": 0},
    "items": [
        {"kind": "preferences", "id": "5b0f8a9e-2f7c-4d35-9c43-0d6f3c1b2a10", "tokens": 17},
        {"kind": "preferences", "id": "6c1a9b0f-3a8d-4e46-8d54-1e7a4d2c3b21", "tokens": 7},
        {"kind": "insights", "id": "2b9e4f71-6c3a-4d8e-9f12-a7b5c3d1e0f4", "tokens": 12},
        {"kind": "skills", "id": "8d3c2b1a-6f5e-4d3c-9b2a-1f0e9d8c7b6a", "tokens": 33},
    ],
}


class ContextRequest(StrictModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [REQUEST_EXAMPLE]})

    query: str | None = Field(
        default=None, max_length=4096, description="what the session is about; insights and skills are ranked for it"
    )
    project: ProjectId | None = Field(
        default=None,
        description="the project's id: adds the preferences of scope 'project:<id>' to the global ones, and "
        "ranks insights and skills for it when there is no query",
    )
    token_budget: int = Field(
        default=DEFAULT_TOKEN_BUDGET,
        ge=MIN_TOKEN_BUDGET,
        le=MAX_TOKEN_BUDGET,
        description="the most tokens the block may take, markers included",
    )
    kinds: list[ContextKind] | None = Field(
        default=None, min_length=1, description=f"any of {list(CONTEXT_KINDS)}; default all"
    )

    @field_validator("query")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value is None or value.strip() else None


class ContextCounts(BaseModel):
    preferences: int = 0
    insights: int = 0
    skills: int = 0


class ContextItem(BaseModel):
    """One memory in the block, and the tokens its lines take."""

    kind: ContextKind
    id: uuid.UUID
    tokens: int


class ContextResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [RESPONSE_EXAMPLE]})

    text: str = Field(
        description="the block to put in the agent's context, wrapped in <mosaic-memory-context> marker lines; "
        "empty when no memory matched"
    )
    tokens: int = Field(description="tokens of the text, never more than token_budget")
    token_budget: int
    tokenizer: str = Field(description="what counted the tokens")
    included: ContextCounts
    omitted: ContextCounts = Field(
        description="memories that matched but did not fit the budget (the text's last line says so too)"
    )
    items: list[ContextItem] = Field(description="what the block holds, in the order of the text")
