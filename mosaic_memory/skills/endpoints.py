"""REST routes for skills."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from mosaic_memory.api.deps import Reader, SessionDep, StateDep, Writer
from mosaic_memory.api.docs import ERRORS, error_doc
from mosaic_memory.common.schemas import Page
from mosaic_memory.skills.schemas import SkillCreate, SkillOut, SkillUpdate

router = APIRouter(prefix="/v1/skills", tags=["skills"], responses=ERRORS)


SKILL_EXISTS = error_doc(
    "the owner already has a skill of that name",
    "SkillExists",
    "user:alice already has a skill named 'deploy-to-staging'; rename it or PATCH the existing one",
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SkillOut,
    summary="Store a skill",
    responses={409: SKILL_EXISTS},
)
async def create_skill(body: SkillCreate, state: StateDep, session: SessionDep, principal: Writer) -> SkillOut:
    """Store a skill; ``name: description`` is embedded so ``/v1/search`` with ``kinds: ["skills"]``
    finds it by the task at hand. 409 when the owner already has a skill of that name."""
    out = await state.skills.create(session, principal, body)
    await session.commit()
    return out


@router.get("", response_model=Page[SkillOut], summary="List skills")
async def list_skills(
    state: StateDep,
    session: SessionDep,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    owner: Annotated[str | None, Query(max_length=200, description="only this owner ('team:NAME')")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[SkillOut]:
    """Newest first, paginated by cursor."""
    page = await state.skills.list(session, principal, limit=limit, cursor=cursor, owner=owner, tag=tag)
    await session.commit()
    return page


@router.get("/{skill_id}", response_model=SkillOut, summary="Read a skill")
async def get_skill(skill_id: uuid.UUID, state: StateDep, session: SessionDep, principal: Reader) -> SkillOut:
    out = await state.skills.get(session, principal, skill_id)
    await session.commit()
    return out


@router.patch("/{skill_id}", response_model=SkillOut, summary="Edit a skill", responses={409: SKILL_EXISTS})
async def update_skill(
    skill_id: uuid.UUID, body: SkillUpdate, state: StateDep, session: SessionDep, principal: Writer
) -> SkillOut:
    """Change any of name, description, instructions, tags, metadata; re-embedded only when
    the name or description changed."""
    out = await state.skills.update(session, principal, skill_id, body)
    await session.commit()
    return out


@router.delete("/{skill_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a skill")
async def delete_skill(skill_id: uuid.UUID, state: StateDep, session: SessionDep, principal: Writer) -> Response:
    await state.skills.delete(session, principal, skill_id)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
