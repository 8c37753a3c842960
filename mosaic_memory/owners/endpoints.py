"""Admin routes: users, teams, API keys. Every route needs an admin-scoped key."""

from __future__ import annotations

from fastapi import APIRouter, status

from mosaic_memory.api.deps import Admin, Reader, SessionDep, StateDep
from mosaic_memory.api.docs import ERRORS, error_doc, example_response, list_response
from mosaic_memory.owners.schemas import (
    KeyCreate,
    KeyCreated,
    KeyOut,
    OwnerOut,
    TeamCreate,
    TeamMemberAdd,
    TeamOut,
    UserCreate,
    UserCreated,
)

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=ERRORS)
me_router = APIRouter(prefix="/v1", tags=["admin"], responses=ERRORS)
ME_EXAMPLE = {
    "user": "alice",
    "owners": ["user:alice", "team:platform"],
    "scopes": ["read", "write"],
    "agent_id": "coder",
}


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=UserCreated,
    responses={409: error_doc("the name is taken", "Conflict", "user 'alice' already exists")},
)
async def create_user(body: UserCreate, state: StateDep, session: SessionDep, _: Admin) -> UserCreated:
    """Create a user and its first key (shown once)."""
    user, token = await state.owners.create_user(session, body.name, admin=body.admin)
    await session.commit()
    return UserCreated(user=user, api_key=token)


@router.get("/users", response_model=list[OwnerOut], responses={200: list_response(OwnerOut)})
async def list_users(state: StateDep, session: SessionDep, _: Admin) -> list[OwnerOut]:
    users = await state.owners.list_users(session)
    await session.commit()
    return users


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
async def create_key(body: KeyCreate, state: StateDep, session: SessionDep, _: Admin) -> KeyCreated:
    """Issue a key for a user, optionally bound to an agent id (shown once)."""
    key, token = await state.owners.create_key(
        session, body.user, name=body.name, scopes=body.scopes, agent_id=body.agent_id
    )
    await session.commit()
    return KeyCreated(key=key, api_key=token)


@router.get("/keys", response_model=list[KeyOut], responses={200: list_response(KeyOut)})
async def list_keys(state: StateDep, session: SessionDep, _: Admin, user: str | None = None) -> list[KeyOut]:
    keys = await state.owners.list_keys(session, user)
    await session.commit()
    return keys


@router.delete("/keys/{prefix}", response_model=KeyOut)
async def revoke_key(prefix: str, state: StateDep, session: SessionDep, _: Admin) -> KeyOut:
    """Revoke a key by its prefix (or id); it stops working at once."""
    key = await state.owners.revoke_key(session, prefix)
    await session.commit()
    return key


@router.post(
    "/teams",
    status_code=status.HTTP_201_CREATED,
    response_model=TeamOut,
    responses={409: error_doc("the name is taken", "Conflict", "team 'platform' already exists")},
)
async def create_team(body: TeamCreate, state: StateDep, session: SessionDep, _: Admin) -> TeamOut:
    team = await state.owners.create_team(session, body.name, body.members)
    await session.commit()
    return team


@router.get("/teams", response_model=list[TeamOut], responses={200: list_response(TeamOut)})
async def list_teams(state: StateDep, session: SessionDep, _: Admin) -> list[TeamOut]:
    teams = await state.owners.list_teams(session)
    await session.commit()
    return teams


@router.post("/teams/{team}/members", response_model=TeamOut)
async def add_member(team: str, body: TeamMemberAdd, state: StateDep, session: SessionDep, _: Admin) -> TeamOut:
    result = await state.owners.add_member(session, team, body.user, body.role)
    await session.commit()
    return result


@router.delete("/teams/{team}/members/{user}", response_model=TeamOut)
async def remove_member(team: str, user: str, state: StateDep, session: SessionDep, _: Admin) -> TeamOut:
    """Take a user out of a team; its keys stop reaching the team's memory on the next request.
    404 when the team, the user or the membership does not exist."""
    result = await state.owners.remove_member(session, team, user)
    await session.commit()
    return result


@me_router.get("/me", responses={200: example_response(ME_EXAMPLE)})
async def whoami(principal: Reader, session: SessionDep) -> dict[str, object]:
    """The caller: its user, teams, scopes and agent binding."""
    await session.commit()
    return {
        "user": principal.user.name,
        "owners": [o.label for o in principal.owners],
        "scopes": sorted(principal.scopes),
        "agent_id": principal.agent_id,
    }
