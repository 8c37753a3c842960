"""REST routes for preferences."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from mosaic_memory.api.deps import Reader, SessionDep, StateDep, Writer
from mosaic_memory.api.docs import ERRORS, error_doc, list_response
from mosaic_memory.common.schemas import Page
from mosaic_memory.preferences.schemas import KEY_PATTERN, SCOPE_PATTERN, PreferenceChange, PreferenceOut, PreferencePut

router = APIRouter(prefix="/v1/preferences", tags=["preferences"], responses=ERRORS)
IMMUTABLE = error_doc(
    "an agent-bound key changing an immutable preference",
    "ImmutablePreference",
    "preference 'editor.theme' is immutable: agents may read it but only the user may change it",
)

KeyPath = Annotated[str, Path(min_length=1, max_length=256, pattern=KEY_PATTERN, description="e.g. code_review_style")]
ScopeQuery = Annotated[
    str, Query(max_length=256, pattern=SCOPE_PATTERN, description="'' (everywhere), 'agent:ID' or 'project:ID'")
]
OwnerQuery = Annotated[
    str | None, Query(max_length=200, description="'team:NAME' or 'user:NAME'; default the user's, then a team's")
]


@router.put(
    "/{key}",
    status_code=status.HTTP_201_CREATED,
    response_model=PreferenceOut,
    summary="Create or replace a preference",
    responses={200: {"model": PreferenceOut, "description": "an existing preference was replaced"}, 409: IMMUTABLE},
)
async def put_preference(
    key: KeyPath, body: PreferencePut, state: StateDep, session: SessionDep, principal: Writer, response: Response
) -> PreferenceOut:
    """Set ``key`` to any JSON value (201 on create, 200 on replace). An immutable preference
    (``mutable: false``) answers 409 to agent-bound keys; a user key may change it."""
    out = await state.preferences.put(session, principal, key, body)
    await session.commit()
    if not out.created:
        response.status_code = status.HTTP_200_OK
    return out


@router.get("", response_model=Page[PreferenceOut], summary="List preferences")
async def list_preferences(
    state: StateDep,
    session: SessionDep,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
    scope: Annotated[
        str | None, Query(max_length=256, pattern=SCOPE_PATTERN, description="only this scope; '' = unscoped")
    ] = None,
    owner: Annotated[str | None, Query(max_length=200, description="only this owner ('team:NAME')")] = None,
    prefix: Annotated[str | None, Query(max_length=256, description="keys starting with this")] = None,
) -> Page[PreferenceOut]:
    """Ordered by key, then scope; paginated by cursor."""
    page = await state.preferences.list(
        session, principal, limit=limit, cursor=cursor, scope=scope, owner=owner, prefix=prefix
    )
    await session.commit()
    return page


@router.get("/{key}", response_model=PreferenceOut, summary="Read one preference")
async def get_preference(
    key: KeyPath,
    state: StateDep,
    session: SessionDep,
    principal: Reader,
    scope: ScopeQuery = "",
    owner: OwnerQuery = None,
) -> PreferenceOut:
    """The preference in ``scope`` of ``owner``; without ``owner`` the user's own, else a team's."""
    out = await state.preferences.get(session, principal, key, scope=scope, owner=owner)
    await session.commit()
    return out


@router.delete(
    "/{key}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a preference", responses={409: IMMUTABLE}
)
async def delete_preference(
    key: KeyPath,
    state: StateDep,
    session: SessionDep,
    principal: Writer,
    scope: ScopeQuery = "",
    owner: OwnerQuery = None,
) -> Response:
    """Delete the preference of ``owner`` (default the key's user); its history is kept.
    An immutable preference answers 409 to agent-bound keys."""
    await state.preferences.delete(session, principal, key, scope=scope, owner=owner)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{key}/history",
    response_model=list[PreferenceChange],
    summary="A preference's changes",
    responses={200: list_response(PreferenceChange)},
)
async def preference_history(
    key: KeyPath,
    state: StateDep,
    session: SessionDep,
    principal: Reader,
    scope: ScopeQuery = "",
    owner: OwnerQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[PreferenceChange]:
    """Every create, update and delete, newest first: old and new value, who, and source."""
    out = await state.preferences.history(session, principal, key, scope=scope, owner=owner, limit=limit)
    await session.commit()
    return out
