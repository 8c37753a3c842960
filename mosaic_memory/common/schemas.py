"""Schemas shared by several kinds: filters, pagination, provenance."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from mosaic_memory.errors import InvalidInput


def _utc(value: datetime) -> datetime:
    """Naive means UTC (never the database session's zone); the instant must exist in UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # Stored, PostgreSQL would keep it, but no later read of the row could load it.
        raise ValueError("datetime out of range: it must fall within years 1 to 9999 in UTC") from None


# A request datetime: time zone aware, in UTC, and representable when read back.
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Tags = Annotated[list[Tag], Field(max_length=64)]
Kind = Literal["insights", "preferences", "logs", "skills"]
KINDS: tuple[Kind, ...] = ("insights", "preferences", "logs", "skills")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(StrictModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"type": "import", "ref": "wiki/deploys.md"}]}
    )

    type: Literal["api", "log", "import", "job"] = "api"
    ref: str | None = Field(default=None, max_length=1024)


T = TypeVar("T")
CURSOR_EXAMPLE = "WyIyMDI2LTExLTI1VDEwOjAwOjAwKzAwOjAwIiwgIjNmNmMxYTJlLTliNGQtNGU4YS1hMWM3LTJkNWU4ZjBiNmMxNCJd"


def item_examples(model: Any) -> list[Any]:
    """The ``examples`` a pydantic model declares in ``json_schema_extra`` (empty when none)."""
    extra = getattr(model, "model_config", {}).get("json_schema_extra")
    return list(extra.get("examples", [])) if isinstance(extra, dict) else []


def _page_example(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """Document ``Page[X]`` with X's first example as its one item; the bare ``Page`` gets none."""
    args = cls.__pydantic_generic_metadata__["args"]
    examples = item_examples(args[0]) if args else []
    if examples:
        schema["examples"] = [{"items": examples[:1], "next_cursor": CURSOR_EXAMPLE}]


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(json_schema_extra=_page_example)

    items: list[T]
    next_cursor: str | None = Field(default=None, description="pass as ?cursor= for the next page")


R = TypeVar("R")


def make_page(rows: Sequence[R], limit: int, *, item: Callable[[R], T], cursor: Callable[[R], str]) -> Page[T]:
    """A page from ``limit + 1`` fetched rows: the extra row only says whether a next page exists."""
    page = list(rows[:limit])
    next_cursor = cursor(page[-1]) if page and len(rows) > limit else None
    return Page[T](items=[item(r) for r in page], next_cursor=next_cursor)


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(created), uuid.UUID(row_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidInput("cursor is malformed; pass the next_cursor of a previous page") from None


# Deep enough for any real document; far under what a response can serialize (pydantic stops
# near 255 levels, counted from the response's root), so a stored value can always be read back.
MAX_JSON_DEPTH = 64


def _json_depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            break
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
    return depth


def check_json_size(value: Any, limit: int, what: str) -> None:
    """Raises InvalidInput when ``value`` is over ``limit`` bytes as JSON or nested deeper than
    MAX_JSON_DEPTH levels."""
    if _json_depth(value) > MAX_JSON_DEPTH:
        raise InvalidInput(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
    size = len(json.dumps(value, default=str).encode())
    if size > limit:
        raise InvalidInput(f"{what} is {size} bytes as JSON; the limit is {limit} bytes")
