"""The tools' backend outside the service process: each call goes to the REST API.

Used by ``mosaic-memory mcp`` (stdio), which runs beside an MCP host and reaches the service at
``MOSAIC_URL``. The REST API authenticates the key and checks its scopes on every call; its
``{error, detail}`` comes back as the ``ToolError`` ``"<error>: <detail>"``.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from mosaic_memory.client import AsyncMosaicClient, MosaicClientError
from mosaic_memory.context.schemas import ContextRequest, ContextResponse
from mosaic_memory.insights.schemas import InsightCreate, InsightOut
from mosaic_memory.logs.schemas import LogBatchIn, LogBatchOut
from mosaic_memory.mcp_server.tools import KeyScope
from mosaic_memory.preferences.schemas import PreferenceOut, PreferencePut
from mosaic_memory.search.schemas import Hit, SearchRequest, SearchResponse
from mosaic_memory.skills.schemas import SkillOut

__all__ = ["RestBackend"]


def _segment(value: str) -> str:
    """One URL path segment: a '/' in a key or id must not reach another route."""
    return quote(value, safe="")


def _body(model: BaseModel) -> dict[str, Any]:
    """The request body: only the fields the tool set, as JSON."""
    return model.model_dump(mode="json", exclude_unset=True)


class RestBackend:
    """Calls the REST API through one shared client (its key is the stdio server's key)."""

    def __init__(self, client: AsyncMosaicClient) -> None:
        self._client = client

    async def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            return await self._client.request(method, path, json=json, params=params)
        except MosaicClientError as exc:
            # status 0: the service could not be reached; the detail says where and why.
            raise ToolError(f"{exc.error}: {exc.detail}" if exc.status else exc.detail) from None

    async def authorize(self, ctx: Context, scope: KeyScope) -> None:
        """Nothing to do here: the REST API checks the key's scopes on each call."""

    async def create_insight(self, ctx: Context, data: InsightCreate) -> InsightOut:
        return InsightOut.model_validate(await self._call("POST", "/v1/insights", json=_body(data)))

    async def delete_insight(self, ctx: Context, insight_id: uuid.UUID) -> None:
        await self._call("DELETE", f"/v1/insights/{insight_id}")

    async def search(self, ctx: Context, request: SearchRequest) -> SearchResponse:
        return SearchResponse.model_validate(await self._call("POST", "/v1/search", json=_body(request)))

    async def get_preference(self, ctx: Context, key: str, scope: str) -> PreferenceOut:
        out = await self._call("GET", f"/v1/preferences/{_segment(key)}", params={"scope": scope})
        return PreferenceOut.model_validate(out)

    async def list_preferences(self, ctx: Context, scope: str | None, limit: int) -> list[PreferenceOut]:
        page = await self._call("GET", "/v1/preferences", params={"scope": scope, "limit": limit})
        return [PreferenceOut.model_validate(p) for p in page.get("items", [])]

    async def put_preference(self, ctx: Context, key: str, data: PreferencePut) -> PreferenceOut:
        out = await self._call("PUT", f"/v1/preferences/{_segment(key)}", json=_body(data))
        return PreferenceOut.model_validate(out)

    async def append_logs(self, ctx: Context, batch: LogBatchIn) -> LogBatchOut:
        return LogBatchOut.model_validate(await self._call("POST", "/v1/logs", json=_body(batch)))

    async def get_context(self, ctx: Context, request: ContextRequest) -> ContextResponse:
        return ContextResponse.model_validate(await self._call("POST", "/v1/context", json=_body(request)))

    async def find_skills(self, ctx: Context, request: SearchRequest) -> list[tuple[Hit, SkillOut]]:
        found = await self.search(ctx, request)
        skills = []
        for hit in found.hits:
            skills.append((hit, SkillOut.model_validate(await self._call("GET", f"/v1/skills/{hit.id}"))))
        return skills
