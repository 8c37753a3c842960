"""The tools' backend inside the service process: each call runs on the services directly.

The principal was authenticated once for the HTTP request that carries the call (see
``http.McpHttp``) and travels in that request's ASGI state; each call opens its own session and
commits it at the end, as a REST route does, so a failed call stores nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from mcp.server.mcpserver import Context
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.container import AppState
from mosaic_memory.context.schemas import ContextRequest, ContextResponse
from mosaic_memory.errors import AuthenticationFailed
from mosaic_memory.insights.schemas import InsightCreate, InsightOut
from mosaic_memory.logs.schemas import LogBatchIn, LogBatchOut
from mosaic_memory.mcp_server.tools import KeyScope
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.preferences.schemas import PreferenceOut, PreferencePut
from mosaic_memory.search.schemas import Hit, SearchRequest, SearchResponse
from mosaic_memory.skills.schemas import SkillOut

__all__ = ["PRINCIPAL_STATE_KEY", "ServiceBackend"]

PRINCIPAL_STATE_KEY = "mosaic_principal"
"""Where the HTTP gate leaves the authenticated principal in the request's ASGI ``state``."""


def principal_of(ctx: Context) -> Principal:
    """The principal the gate authenticated for the request carrying this call.

    Raises AuthenticationFailed when there is none (a call that did not come through the gate)."""
    request = ctx.request_context.request
    state = getattr(request, "scope", {}).get("state") or {}
    principal = state.get(PRINCIPAL_STATE_KEY)
    if not isinstance(principal, Principal):
        raise AuthenticationFailed()
    return principal


class ServiceBackend:
    """Runs each tool on the services of ``state()`` (read at call time: the app's lifespan sets it)."""

    def __init__(self, state: Callable[[], AppState]) -> None:
        self._state = state

    @asynccontextmanager
    async def _unit(self, ctx: Context) -> AsyncIterator[tuple[AppState, AsyncSession]]:
        """One unit of work for the caller of ``ctx``: the caller commits; anything uncommitted
        rolls back on exit."""
        state = self._state()
        async with state.sessionmaker() as session:
            await OwnerService.enter_scope(session, principal_of(ctx))
            yield state, session

    async def authorize(self, ctx: Context, scope: KeyScope) -> None:
        OwnerService.require_scope(principal_of(ctx), scope)

    async def create_insight(self, ctx: Context, data: InsightCreate) -> InsightOut:
        async with self._unit(ctx) as (state, session):
            out = await state.insights.create(session, principal_of(ctx), data)
            await session.commit()
        return out

    async def delete_insight(self, ctx: Context, insight_id: uuid.UUID) -> None:
        async with self._unit(ctx) as (state, session):
            await state.insights.delete(session, principal_of(ctx), insight_id)
            await session.commit()

    async def search(self, ctx: Context, request: SearchRequest) -> SearchResponse:
        async with self._unit(ctx) as (state, session):
            out = await state.federation.search(session, principal_of(ctx), request)
            await session.commit()  # search records insights' access counts
        return out

    async def get_preference(self, ctx: Context, key: str, scope: str) -> PreferenceOut:
        async with self._unit(ctx) as (state, session):
            out = await state.preferences.get(session, principal_of(ctx), key, scope=scope)
            await session.commit()
        return out

    async def list_preferences(self, ctx: Context, scope: str | None, limit: int) -> list[PreferenceOut]:
        async with self._unit(ctx) as (state, session):
            page = await state.preferences.list(session, principal_of(ctx), limit=limit, scope=scope)
            await session.commit()
        return page.items

    async def put_preference(self, ctx: Context, key: str, data: PreferencePut) -> PreferenceOut:
        async with self._unit(ctx) as (state, session):
            out = await state.preferences.put(session, principal_of(ctx), key, data)
            await session.commit()
        return out

    async def append_logs(self, ctx: Context, batch: LogBatchIn) -> LogBatchOut:
        async with self._unit(ctx) as (state, session):
            out = await state.logs.append(session, principal_of(ctx), batch)
            await session.commit()
        if out.pending:
            state.logs.notify_pending()
        return out

    async def get_context(self, ctx: Context, request: ContextRequest) -> ContextResponse:
        async with self._unit(ctx) as (state, session):
            out = await state.context.build(session, principal_of(ctx), request)
            await session.commit()
        return out

    async def find_skills(self, ctx: Context, request: SearchRequest) -> list[tuple[Hit, SkillOut]]:
        principal = principal_of(ctx)
        # One session for the search and its k skills: no round trip per hit.
        async with self._unit(ctx) as (state, session):
            found = await state.search.search(session, principal, request)
            skills = [(hit, await state.skills.get(session, principal, hit.id)) for hit in found.hits]
            await session.commit()
        return skills
