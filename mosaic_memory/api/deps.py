"""Annotated dependencies shared by every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.container import AppState
from mosaic_memory.errors import AuthenticationFailed
from mosaic_memory.oauth.service import resources_of
from mosaic_memory.oauth.urls import base_url
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.owners.service import OwnerService

bearer = HTTPBearer(
    auto_error=False,
    description="an API key ('Authorization: Bearer mm_...') or an OAuth access token (docs/oauth.md)",
)


async def get_state(request: Request) -> AppState:
    """Async although it awaits nothing: FastAPI runs a plain function in its thread pool, a hand-off
    to a worker thread and back on every request."""
    state: AppState = request.app.state.mosaic
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """A session for this request. Routes commit explicitly; anything uncommitted rolls back."""
    async with state.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_principal(
    request: Request,
    state: StateDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller of an API key, or of an OAuth access token issued for this server. The look-up
    crosses owners (the caller is not known yet): it runs in the connecting role, and
    :class:`RequireScope` puts the session in the caller's scope after it."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed()
    audiences = resources_of(base_url(state.settings, request.scope))
    client = request.client.host if request.client else "unknown"
    return await state.authenticate(session, credentials.credentials, audiences, client)


class RequireScope:
    """The dependency of a route that needs one scope; ``scope`` names it (the auth matrix test
    reads it off every route, so a route's requirement is stated once, here)."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, principal: Annotated[Principal, Depends(get_principal)], session: SessionDep) -> Principal:
        OwnerService.require_scope(principal, self.scope)
        # The route's session (FastAPI gives every dependency of a request the same one) works
        # for this principal from here on: authentication above ran as the connecting role.
        await OwnerService.enter_scope(session, principal)
        return principal


def require(scope: str) -> RequireScope:
    return RequireScope(scope)


Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
Admin = Annotated[Principal, Depends(require("admin"))]
