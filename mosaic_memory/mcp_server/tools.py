"""The MCP tools: each one is a thin call onto the REST API through :class:`AsyncMosaicClient`.

Authentication, scopes, owner isolation and validation live in the REST layer only; a tool
forwards its arguments, and a REST error ``{error, detail}`` comes back as a ``ToolError``
whose text is ``"<error>: <detail>"``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Literal, NotRequired
from urllib.parse import quote

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from mosaic_memory import __version__
from mosaic_memory.client import AsyncMosaicClient, MosaicClientError

__all__ = ["TOOL_NAMES", "ClientSource", "build_server"]

ClientSource = Callable[[Context], AbstractAsyncContextManager[AsyncMosaicClient]]
"""Gives the REST client a tool call should use: the caller's key, in-process or remote."""

Kind = Literal["insights", "preferences", "logs", "skills"]
Mode = Literal["semantic", "keyword", "hybrid"]

INSTRUCTIONS = """\
Mosaic Memory is this user's long-term memory. Use it to remember durable facts and decisions
(`remember`), to look up what you learned before starting a task or answering a question
about the user, their projects or past sessions (`recall`), to respect the user's stated
preferences (`get_preferences`, `set_preference`), to record what happened in a session
(`log_events`, `search_logs`) and to find a stored procedure for a task (`find_skill`).
Everything is private to the API key's user and their teams."""

# Fields of a search hit worth a model's tokens; scores per mode and empty fields are dropped.
_HIT_FIELDS = ("id", "kind", "content", "score", "tags", "metadata", "owner", "created_at")


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None and v != [] and v != {}}


def _segment(value: str) -> str:
    """One URL path segment: a '/' in a key or id must not reach another route."""
    return quote(value, safe="")


def _preference(out: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in out.items() if k not in ("embedding_model", "created")}


def _hits(response: dict[str, Any]) -> dict[str, Any]:
    hits = [_compact({k: hit.get(k) for k in _HIT_FIELDS}) for hit in response.get("hits", [])]
    return {"hits": hits, "count": len(hits)}


def build_server(clients: ClientSource, *, log_level: str = "INFO") -> MCPServer:
    """An MCPServer with the memory tools, each calling the REST API through ``clients(ctx)``.

    Every REST error becomes a ``ToolError`` (an ``is_error`` result the model can read);
    nothing is validated or stored here.
    """
    server: MCPServer = MCPServer(
        "mosaic-memory",
        title="Mosaic Memory",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level=log_level.upper(),  # type: ignore[arg-type]
    )

    async def call(ctx: Context, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        try:
            async with clients(ctx) as client:
                return await client.request(method, path, json=json, params=params)
        except MosaicClientError as exc:
            raise ToolError(f"{exc.error}: {exc.detail}" if exc.status else exc.detail) from None

    def tool(*, read_only: bool = False, destructive: bool = False, idempotent: bool = False) -> Callable[[Any], Any]:
        def register(fn: Any) -> Any:
            server.add_tool(
                fn,
                description=inspect.cleandoc(fn.__doc__ or ""),
                annotations=ToolAnnotations(
                    read_only_hint=read_only,
                    destructive_hint=destructive,
                    idempotent_hint=idempotent,
                    open_world_hint=False,
                ),
            )
            return fn

        return register

    # insights and search -------------------------------------------------------------------
    @tool()
    async def remember(
        content: Annotated[str, Field(description="the fact, decision or observation, as one self-contained sentence")],
        ctx: Context,
        tags: Annotated[list[str] | None, Field(description="short labels for filtering later, e.g. ['ui']")] = None,
        category: Annotated[str | None, Field(description="a coarse class, e.g. 'preference', 'fact'")] = None,
        importance: Annotated[float | None, Field(description="0.0 (trivia) to 1.0 (critical); default 0.5")] = None,
        owner: Annotated[str | None, Field(description="'team:NAME' to share with a team; default yours")] = None,
    ) -> dict[str, Any]:
        """Store a durable insight in long-term memory.

        Use it when you learn something worth knowing in a later session: a fact about the
        user or their project, a decision and its reason, a lesson from a mistake. Write the
        content so it makes sense on its own. A near-duplicate of an existing insight is merged
        into it instead of stored twice.

        Returns {id, status, owner, content, tags, category, importance}; status is "stored",
        "merged" (folded into the existing insight `id`) or "duplicate" (already stored as `id`).
        """
        out = await call(
            ctx,
            "POST",
            "/v1/insights",
            json=_compact(
                {"content": content, "tags": tags, "category": category, "importance": importance, "owner": owner}
            ),
        )
        status = "merged" if out.get("merged") else "duplicate" if out.get("deduplicated") else "stored"
        keep = ("id", "owner", "content", "tags", "category", "importance")
        return {"status": status, **_compact({k: out.get(k) for k in keep})}

    @tool(read_only=True)
    async def recall(
        query: Annotated[str, Field(description="what you want to know, in natural language")],
        ctx: Context,
        k: Annotated[int, Field(description="how many results, 1 to 100")] = 10,
        kinds: Annotated[
            list[Kind] | None, Field(description="which memory kinds to search; default all of them")
        ] = None,
        mode: Annotated[
            Mode,
            Field(description="'hybrid' (default, best in general), 'semantic' (meaning) or 'keyword' (exact words)"),
        ] = "hybrid",
        tags: Annotated[list[str] | None, Field(description="only results carrying any of these tags")] = None,
        category: Annotated[str | None, Field(description="only insights of this category")] = None,
    ) -> dict[str, Any]:
        """Search long-term memory for what is relevant to a question or task.

        Use it before answering questions about the user, their preferences, projects or past
        work, and before starting a task that earlier sessions may have informed. Searches
        insights, preferences, agent logs and skills unless `kinds` narrows it.

        Returns {hits: [{id, kind, content, score, tags, metadata, owner, created_at}], count},
        best first; score is relevance in 0..1. An empty list means nothing relevant is stored.
        """
        filters = _compact({"tags": tags, "category": category})
        body = _compact({"query": query, "k": k, "kinds": kinds, "mode": mode, "filters": filters})
        return _hits(await call(ctx, "POST", "/v1/search", json=body))

    @tool(destructive=True, idempotent=True)
    async def forget(
        id: Annotated[str, Field(description="the insight id, as returned by remember or recall")],
        ctx: Context,
    ) -> dict[str, Any]:
        """Delete one insight from long-term memory for good.

        Use it when the user asks you to forget something, or an insight is plainly wrong and
        no longer useful (to correct a fact, prefer `remember` with the corrected content).

        Returns {id, deleted: true}; an unknown id is an error (InsightNotFound).
        """
        await call(ctx, "DELETE", f"/v1/insights/{_segment(id)}")
        return {"id": id, "deleted": True}

    # preferences ---------------------------------------------------------------------------
    @tool(read_only=True)
    async def get_preferences(
        ctx: Context,
        key: Annotated[
            str | None, Field(description="one preference key, e.g. 'code_review_style'; omit for all")
        ] = None,
        scope: Annotated[
            str | None,
            Field(
                description="'agent:ID' or 'project:ID'. With a key: that scope's value (omit for the global one); "
                "without a key: only that scope ('' for global ones; omit for every scope)"
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Read the user's stated preferences (key -> value settings).

        Use it at the start of a task to follow how the user wants things done (tone, code
        style, tools, formats). Give `key` to read one preference; to find preferences by
        meaning instead of by key, use `recall` with kinds ["preferences"].

        Returns one preference {key, value, scope, mutable, owner, ...} when `key` is given (an
        unknown key is an error, PreferenceNotFound), else {items: [...]} with every preference.
        """
        if key is not None:
            return _preference(await call(ctx, "GET", f"/v1/preferences/{_segment(key)}", params={"scope": scope}))
        page = await call(ctx, "GET", "/v1/preferences", params={"scope": scope, "limit": 500})
        items = page.get("items", []) if isinstance(page, dict) else page
        return {"items": [_preference(p) for p in items]}

    @tool(idempotent=True)
    async def set_preference(
        key: Annotated[
            str, Field(description="the preference name, e.g. 'code_review_style' (letters, digits, _.:@-)")
        ],
        value: Annotated[Any, Field(description="the value: a string, number, boolean, list or object")],
        ctx: Context,
        scope: Annotated[
            str | None, Field(description="'agent:ID' or 'project:ID' to narrow it; omit for a global preference")
        ] = None,
    ) -> dict[str, Any]:
        """Set one of the user's preferences, replacing its previous value (the old one is kept
        in the preference's history).

        Use it when the user states how they want something done from now on. A preference the
        user marked immutable cannot be changed by an agent's key (an error says so).

        Returns the stored preference {key, value, scope, mutable, owner, ...}.
        """
        body = {"value": value} if scope is None else {"value": value, "scope": scope}
        return _preference(await call(ctx, "PUT", f"/v1/preferences/{_segment(key)}", json=body))

    # agent logs ----------------------------------------------------------------------------
    @tool()
    async def log_events(
        events: Annotated[
            list[LogEvent], Field(description="the events, oldest first; each needs session_id and content")
        ],
        ctx: Context,
    ) -> dict[str, Any]:
        """Append events from this agent session to the user's agent log.

        Use it to record what happened: steps taken, results, errors, decisions. Logs are
        append-only and searchable with `search_logs`; a nightly job distils them into insights.

        Returns {ids, count}: the ids of the stored events, in order.
        """
        return dict(await call(ctx, "POST", "/v1/logs", json={"events": [_compact(dict(e)) for e in events]}))

    @tool(read_only=True)
    async def search_logs(
        query: Annotated[str, Field(description="what happened, in natural language or keywords")],
        ctx: Context,
        session_id: Annotated[str | None, Field(description="only events of this session")] = None,
        agent_id: Annotated[str | None, Field(description="only events of this agent")] = None,
        k: Annotated[int, Field(description="how many results, 1 to 100")] = 10,
        mode: Annotated[Mode, Field(description="'hybrid' (default), 'semantic' or 'keyword'")] = "hybrid",
    ) -> dict[str, Any]:
        """Search the agent logs (events recorded by `log_events`) of past sessions.

        Use it to find out what an agent did or saw before: an earlier error, a command that
        worked, what happened in a given session.

        Returns {hits: [{id, kind, content, score, metadata, owner, created_at}], count}, best first.
        """
        filters = _compact({"session_id": session_id, "agent_id": agent_id})
        body = _compact({"query": query, "k": k, "kinds": ["logs"], "mode": mode, "filters": filters})
        return _hits(await call(ctx, "POST", "/v1/search", json=body))

    # skills --------------------------------------------------------------------------------
    @tool(read_only=True)
    async def find_skill(
        task: Annotated[str, Field(description="the task you are about to do, in a sentence")],
        ctx: Context,
        k: Annotated[int, Field(description="how many skills, 1 to 100")] = 3,
    ) -> dict[str, Any]:
        """Find stored skills (named procedures with step-by-step instructions) that fit a task.

        Use it before a task that may have a known procedure: a release, a deployment, a review
        checklist. Follow the instructions of a good match.

        Returns {hits: [{id, content ("name: description"), score, tags, instructions, ...}], count},
        best first; an empty list means no skill fits.
        """
        found = _hits(await call(ctx, "POST", "/v1/search", json={"query": task, "k": k, "kinds": ["skills"]}))
        for hit in found["hits"]:
            skill = await call(ctx, "GET", f"/v1/skills/{_segment(hit['id'])}")
            hit["name"] = skill.get("name")
            hit["instructions"] = skill.get("instructions", "")
        return found

    return server


class LogEvent(TypedDict):
    """One agent-log event."""

    session_id: Annotated[str, Field(description="the agent session this event belongs to")]
    content: Annotated[str, Field(description="what happened, in plain text")]
    level: NotRequired[Annotated[str, Field(description="'debug', 'info' (default), 'warning' or 'error'")]]
    agent_id: NotRequired[Annotated[str, Field(description="which agent produced it")]]
    metadata: NotRequired[Annotated[dict[str, Any], Field(description="any structured details")]]


TOOL_NAMES = (
    "remember",
    "recall",
    "forget",
    "get_preferences",
    "set_preference",
    "log_events",
    "search_logs",
    "find_skill",
)
