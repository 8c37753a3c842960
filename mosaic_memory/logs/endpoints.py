"""REST routes for agent logs."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from mosaic_memory.api.deps import Reader, SessionDep, StateDep, Writer
from mosaic_memory.api.docs import ERRORS
from mosaic_memory.api.docs import error_doc as _error
from mosaic_memory.common.schemas import Page
from mosaic_memory.logs.schemas import OUT_EXAMPLE, Level, LogBatchIn, LogBatchOut, LogOut, LogSessionOut

router = APIRouter(prefix="/v1/logs", tags=["logs"], responses=ERRORS)

_INVALID = _error("bad input; nothing is stored", "InvalidInput", "events.0.level: Input should be 'debug', ...")
_PAGE_EXAMPLE: dict[str, Any] = {
    "content": {"application/json": {"example": {"items": [OUT_EXAMPLE], "next_cursor": "WyIyMDI2LTExLTI1VDEwOjE1..."}}}
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=LogBatchOut,
    responses={
        403: _error(
            "the key is bound to another agent",
            "PermissionDenied",
            "this key is bound to agent 'coder' and cannot write events of agent 'other'",
        ),
        404: _error("the owner is not visible to this key", "OwnerNotFound", "owner 'team:x' not found ..."),
        413: _error(
            "an event's content is over max_content_bytes; nothing is stored",
            "ContentTooLarge",
            "content is 40000 bytes; the limit is 32768 bytes (MOSAIC_MAX_CONTENT_BYTES)",
        ),
        422: _INVALID,
    },
)
async def append_logs(body: LogBatchIn, state: StateDep, session: SessionDep, principal: Writer) -> LogBatchOut:
    """Append 1..5,000 events in one transaction (all or none). Found by keyword at once; by
    meaning at once for small batches, otherwise once the background embedder reaches them
    (``pending`` counts those). A key bound to an agent fills in ``agent_id`` and may not
    write another agent's events."""
    out = await state.logs.append(session, principal, body)
    await session.commit()
    if out.pending:
        state.logs.notify_pending()
    return out


@router.get("", response_model=Page[LogOut], responses={200: _PAGE_EXAMPLE, 422: _INVALID})
async def list_logs(
    state: StateDep,
    session: SessionDep,
    principal: Reader,
    session_id: Annotated[str | None, Query(max_length=256)] = None,
    agent_id: Annotated[str | None, Query(max_length=256)] = None,
    level: Level | None = None,
    owner: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[LogOut]:
    """Events oldest first (``occurred_at``, then insertion order), paginated by cursor."""
    page = await state.logs.list(
        session,
        principal,
        limit=limit,
        cursor=cursor,
        owner=owner,
        session_id=session_id,
        agent_id=agent_id,
        level=level,
    )
    await session.commit()
    return page


@router.get("/sessions", response_model=list[LogSessionOut])
async def list_sessions(
    state: StateDep,
    session: SessionDep,
    principal: Reader,
    owner: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[LogSessionOut]:
    """The caller's agent sessions, latest activity first: each with its owner, its event count
    and its first and last event's time (``session_id`` null: the events logged without one)."""
    out = await state.logs.sessions(session, principal, owner=owner, limit=limit)
    await session.commit()
    return out


@router.get(
    "/{log_id}",
    response_model=LogOut,
    responses={404: _error("no such event among the caller's owners", "LogNotFound", "log event ... not found")},
)
async def get_log(log_id: uuid.UUID, state: StateDep, session: SessionDep, principal: Reader) -> LogOut:
    """One event; 404 for an id that is not the caller's."""
    out = await state.logs.get(session, principal, log_id)
    await session.commit()
    return out
