"""POST /v1/context."""

from __future__ import annotations

from fastapi import APIRouter

from mosaic_memory.api.deps import Reader, SessionDep, StateDep
from mosaic_memory.api.docs import ERRORS
from mosaic_memory.context.schemas import ContextRequest, ContextResponse

router = APIRouter(prefix="/v1", tags=["context"], responses=ERRORS)


@router.post("/context", response_model=ContextResponse)
async def context(body: ContextRequest, state: StateDep, session: SessionDep, principal: Reader) -> ContextResponse:
    """One block of the caller's memory for the start of an agent session, within ``token_budget``
    tokens: preferences first (global, the project's), then the insights and skills that fit the
    query (or the project), wrapped in ``<mosaic-memory-context>`` marker lines; its last line and
    ``omitted`` say what did not fit."""
    out = await state.context.build(session, principal, body)
    await session.commit()
    return out
