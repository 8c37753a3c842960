"""REST routes for insights."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from mosaic_memory.api.deps import Reader, SessionDep, StateDep, Writer
from mosaic_memory.api.docs import ERRORS
from mosaic_memory.common.schemas import Page
from mosaic_memory.insights.schemas import (
    InsightBatch,
    InsightBatchOut,
    InsightCreate,
    InsightOut,
    InsightUpdate,
)
from mosaic_memory.logs.schemas import LogOut

router = APIRouter(prefix="/v1/insights", tags=["insights"], responses=ERRORS)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=InsightOut,
    responses={200: {"model": InsightOut, "description": "identical or near-identical content: the existing insight"}},
)
async def create_insight(
    body: InsightCreate, state: StateDep, session: SessionDep, principal: Writer, response: Response
) -> InsightOut:
    """Store an insight. Identical or near-identical content answers with the existing insight
    (``deduplicated`` / ``merged`` true, status 200)."""
    out = await state.insights.create(session, principal, body)
    await session.commit()
    if out.merged or out.deduplicated:
        response.status_code = status.HTTP_200_OK
    return out


@router.post("/batch", status_code=status.HTTP_201_CREATED, response_model=InsightBatchOut)
async def create_insights(
    body: InsightBatch, state: StateDep, session: SessionDep, principal: Writer
) -> InsightBatchOut:
    """Store up to 1,000 insights in one transaction, embedded in batches."""
    out = await state.insights.create_many(session, principal, body.items)
    await session.commit()
    return out


@router.get("", response_model=Page[InsightOut])
async def list_insights(
    state: StateDep,
    session: SessionDep,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    owner: str | None = None,
    tag: str | None = None,
    category: str | None = None,
    include_history: bool = True,
) -> Page[InsightOut]:
    """Newest first, paginated by cursor."""
    page = await state.insights.list_page(
        session,
        principal,
        limit=limit,
        cursor=cursor,
        owner=owner,
        tag=tag,
        category=category,
        include_history=include_history,
    )
    await session.commit()
    return page


@router.get("/{insight_id}", response_model=InsightOut)
async def get_insight(insight_id: uuid.UUID, state: StateDep, session: SessionDep, principal: Reader) -> InsightOut:
    out = await state.insights.get(session, principal, insight_id)
    await session.commit()
    return out


@router.get("/{insight_id}/sources", response_model=Page[LogOut])
async def insight_sources(
    insight_id: uuid.UUID,
    state: StateDep,
    session: SessionDep,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[LogOut]:
    """The agent logs this insight was summarized from (id, session, agent, time, content…),
    oldest first, paginated by cursor like ``GET /v1/logs``. 404 when the insight is not the
    caller's."""
    await state.insights.get(session, principal, insight_id)  # 404 unless the caller may read it
    out = await state.logs.list(session, principal, limit=limit, cursor=cursor, cited_by=insight_id)
    await session.commit()
    return out


@router.get("/{insight_id}/history", response_model=list[InsightOut])
async def insight_history(
    insight_id: uuid.UUID, state: StateDep, session: SessionDep, principal: Reader
) -> list[InsightOut]:
    """The insights this one superseded, oldest first (its correction history); 404 when the
    insight is not the caller's."""
    out = await state.insights.replaced(session, principal, insight_id)
    await session.commit()
    return out


@router.patch("/{insight_id}", response_model=InsightOut)
async def update_insight(
    insight_id: uuid.UUID, body: InsightUpdate, state: StateDep, session: SessionDep, principal: Writer
) -> InsightOut:
    out = await state.insights.update(session, principal, insight_id, body)
    await session.commit()
    return out


@router.delete("/{insight_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_insight(insight_id: uuid.UUID, state: StateDep, session: SessionDep, principal: Writer) -> Response:
    await state.insights.delete(session, principal, insight_id)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
