"""Python client for the REST API: an async client and a thin sync wrapper with the same methods.

    async with AsyncMosaicClient("http://127.0.0.1:8765", api_key) as mm:
        await mm.remember("prefers dark themes", tags=["ui"])
        hits = (await mm.search("what colour scheme?")).hits

Errors from the service raise :class:`MosaicClientError` with the service's ``error`` and ``detail``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import urllib.parse
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx

from jobs.ledger.schemas import JobOut, JobRunOut
from mosaic_memory.client_core import MosaicClientError, RestClient, raise_for, unreachable
from mosaic_memory.common.schemas import Page
from mosaic_memory.context.schemas import ContextResponse
from mosaic_memory.federation.schemas import AuditOut, GrantOut, PeerOut
from mosaic_memory.insights.schemas import InsightBatchOut, InsightOut
from mosaic_memory.logs.schemas import LogBatchOut, LogOut, LogSessionOut
from mosaic_memory.oauth.schemas import GrantOut as OAuthGrantOut
from mosaic_memory.oauth.schemas import GrantRevoked
from mosaic_memory.owners.schemas import KeyCreated, KeyOut, OwnerOut, TeamOut, UserCreated
from mosaic_memory.portability.schemas import ImportReportOut
from mosaic_memory.preferences.schemas import PreferenceChange, PreferenceOut
from mosaic_memory.search.schemas import SearchResponse
from mosaic_memory.skills.schemas import SkillOut

__all__ = ["AsyncMosaicClient", "MosaicClient", "MosaicClientError"]

T = TypeVar("T")


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _seg(part: str) -> str:
    """One URL path segment, escaped (a key never turns into another route)."""
    return urllib.parse.quote(part, safe="")


class AsyncMosaicClient(RestClient):
    """Every route of the REST API as a typed method (the bodies validated into their schemas)."""

    # health --------------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/healthz")
        return result

    async def ready(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/readyz")
        return result

    async def me(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/v1/me")
        return result

    # insights ------------------------------------------------------------------------------
    async def remember(
        self,
        content: str,
        *,
        tags: list[str] | None = None,
        category: str | None = None,
        importance: float | None = None,
        metadata: dict[str, Any] | None = None,
        owner: str | None = None,
        **extra: Any,
    ) -> InsightOut:
        body = _clean(
            {
                "content": content,
                "tags": tags,
                "category": category,
                "importance": importance,
                "metadata": metadata,
                "owner": owner,
                **extra,
            }
        )
        return InsightOut.model_validate(await self.request("POST", "/v1/insights", json=body))

    async def remember_many(self, items: list[dict[str, Any]]) -> InsightBatchOut:
        return InsightBatchOut.model_validate(await self.request("POST", "/v1/insights/batch", json={"items": items}))

    async def get_insight(self, insight_id: uuid.UUID | str) -> InsightOut:
        return InsightOut.model_validate(await self.request("GET", f"/v1/insights/{insight_id}"))

    async def list_insights(self, *, limit: int = 50, cursor: str | None = None, **filters: Any) -> Page[InsightOut]:
        data = await self.request("GET", "/v1/insights", params={"limit": limit, "cursor": cursor, **filters})
        return Page[InsightOut].model_validate(data)

    async def update_insight(self, insight_id: uuid.UUID | str, **changes: Any) -> InsightOut:
        return InsightOut.model_validate(await self.request("PATCH", f"/v1/insights/{insight_id}", json=changes))

    async def delete_insight(self, insight_id: uuid.UUID | str) -> None:
        await self.request("DELETE", f"/v1/insights/{insight_id}")

    async def insight_sources(
        self, insight_id: uuid.UUID | str, *, limit: int = 100, cursor: str | None = None
    ) -> Page[LogOut]:
        """The agent logs an insight was summarized from, oldest first (one page)."""
        data = await self.request(
            "GET", f"/v1/insights/{insight_id}/sources", params={"limit": limit, "cursor": cursor}
        )
        return Page[LogOut].model_validate(data)

    async def insight_history(self, insight_id: uuid.UUID | str) -> list[InsightOut]:
        """The insights this one superseded (its correction history), oldest first."""
        return [InsightOut.model_validate(i) for i in await self.request("GET", f"/v1/insights/{insight_id}/history")]

    # search --------------------------------------------------------------------------------
    async def search(
        self,
        query: str,
        *,
        k: int = 10,
        kinds: list[str] | None = None,
        mode: str = "hybrid",
        filters: dict[str, Any] | None = None,
        **options: Any,
    ) -> SearchResponse:
        body = _clean({"query": query, "k": k, "kinds": kinds, "mode": mode, "filters": filters, **options})
        return SearchResponse.model_validate(await self.request("POST", "/v1/search", json=body))

    # context -------------------------------------------------------------------------------
    async def context(
        self,
        query: str | None = None,
        *,
        project: str | None = None,
        token_budget: int | None = None,
        kinds: list[str] | None = None,
    ) -> ContextResponse:
        """The block of memory for a session's start (``POST /v1/context``): preferences first,
        then what fits ``query`` (or ``project``), within ``token_budget`` tokens."""
        body = _clean({"query": query, "project": project, "token_budget": token_budget, "kinds": kinds})
        return ContextResponse.model_validate(await self.request("POST", "/v1/context", json=body))

    # agent logs ----------------------------------------------------------------------------
    async def log_events(self, events: list[dict[str, Any]], owner: str | None = None) -> LogBatchOut:
        """Append events (dicts with session_id, content, optional agent_id, level, metadata, occurred_at)."""
        body = _clean({"events": events, "owner": owner})
        return LogBatchOut.model_validate(await self.request("POST", "/v1/logs", json=body))

    async def log_event(self, session_id: str, content: str, **fields: Any) -> uuid.UUID:
        """Append one event; returns its id."""
        owner = fields.pop("owner", None)
        out = await self.log_events([_clean({"session_id": session_id, "content": content, **fields})], owner=owner)
        return out.ids[0]

    async def list_logs(
        self,
        *,
        session_id: str | None = None,
        agent_id: str | None = None,
        level: str | None = None,
        owner: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[LogOut]:
        params = {
            "session_id": session_id,
            "agent_id": agent_id,
            "level": level,
            "owner": owner,
            "limit": limit,
            "cursor": cursor,
        }
        return Page[LogOut].model_validate(await self.request("GET", "/v1/logs", params=params))

    async def get_log(self, log_id: uuid.UUID | str) -> LogOut:
        return LogOut.model_validate(await self.request("GET", f"/v1/logs/{log_id}"))

    async def log_sessions(self, *, owner: str | None = None, limit: int = 50) -> list[LogSessionOut]:
        """The caller's agent sessions with their event counts, latest activity first."""
        data = await self.request("GET", "/v1/logs/sessions", params={"owner": owner, "limit": limit})
        return [LogSessionOut.model_validate(s) for s in data]

    async def search_logs(
        self,
        query: str,
        *,
        session_id: str | None = None,
        agent_id: str | None = None,
        k: int = 10,
        mode: str = "hybrid",
        **options: Any,
    ) -> SearchResponse:
        filters = _clean({"session_id": session_id, "agent_id": agent_id, **options.pop("filters", {})})
        return await self.search(query, k=k, kinds=["logs"], mode=mode, filters=filters or None, **options)

    # admin ---------------------------------------------------------------------------------
    async def create_user(self, name: str, *, admin: bool = False) -> UserCreated:
        data = await self.request("POST", "/v1/admin/users", json={"name": name, "admin": admin})
        return UserCreated.model_validate(data)

    async def create_key(
        self, user: str, *, scopes: list[str] | None = None, agent_id: str | None = None, name: str = ""
    ) -> KeyCreated:
        body = _clean({"user": user, "scopes": scopes, "agent_id": agent_id, "name": name})
        return KeyCreated.model_validate(await self.request("POST", "/v1/admin/keys", json=body))

    async def list_keys(self, user: str | None = None) -> list[KeyOut]:
        return [KeyOut.model_validate(k) for k in await self.request("GET", "/v1/admin/keys", params={"user": user})]

    async def revoke_key(self, prefix: str) -> KeyOut:
        return KeyOut.model_validate(await self.request("DELETE", f"/v1/admin/keys/{prefix}"))

    async def oauth_grants(self) -> list[OAuthGrantOut]:
        """The applications this key's user approved through OAuth that still hold a usable token."""
        return [OAuthGrantOut.model_validate(g) for g in await self.request("GET", "/v1/oauth/grants")]

    async def revoke_oauth_grant(self, grant_id: uuid.UUID | str) -> GrantRevoked:
        """Revoke one OAuth approval; its tokens stop working at once."""
        return GrantRevoked.model_validate(await self.request("DELETE", f"/v1/oauth/grants/{_seg(str(grant_id))}"))

    async def create_team(self, name: str, members: list[str] | None = None) -> TeamOut:
        data = await self.request("POST", "/v1/admin/teams", json={"name": name, "members": members or []})
        return TeamOut.model_validate(data)

    async def add_team_member(self, team: str, user: str, role: str = "member") -> TeamOut:
        data = await self.request("POST", f"/v1/admin/teams/{team}/members", json={"user": user, "role": role})
        return TeamOut.model_validate(data)

    async def remove_team_member(self, team: str, user: str) -> TeamOut:
        """Take ``user`` out of ``team`` (admin); the team's memory stays the team's."""
        data = await self.request("DELETE", f"/v1/admin/teams/{_seg(team)}/members/{_seg(user)}")
        return TeamOut.model_validate(data)

    async def list_users(self) -> list[OwnerOut]:
        return [OwnerOut.model_validate(u) for u in await self.request("GET", "/v1/admin/users")]

    async def list_teams(self) -> list[TeamOut]:
        return [TeamOut.model_validate(t) for t in await self.request("GET", "/v1/admin/teams")]

    # jobs (admin) --------------------------------------------------------------------------
    async def list_jobs(self) -> list[JobOut]:
        return [JobOut.model_validate(j) for j in await self.request("GET", "/v1/jobs")]

    async def run_job(self, job_id: str, *, dry_run: bool = False) -> JobRunOut:
        """Run a job now and wait for it; the ledger entry comes back."""
        data = await self.request("POST", f"/v1/jobs/{_seg(job_id)}/runs", json={"dry_run": dry_run})
        return JobRunOut.model_validate(data)

    async def job_runs(self, *, job_id: str | None = None, limit: int = 50) -> list[JobRunOut]:
        data = await self.request("GET", "/v1/jobs/runs", params={"job": job_id, "limit": limit})
        return [JobRunOut.model_validate(r) for r in data]

    async def get_job_run(self, run_id: uuid.UUID | str) -> JobRunOut:
        return JobRunOut.model_validate(await self.request("GET", f"/v1/jobs/runs/{run_id}"))

    async def rollback_job_run(self, run_id: uuid.UUID | str) -> JobRunOut:
        return JobRunOut.model_validate(await self.request("POST", f"/v1/jobs/runs/{run_id}/rollback"))

    # federation ----------------------------------------------------------------------------
    async def federation_identity(self) -> dict[str, Any]:
        """This instance's federation name and certificate (409 FederationError before ``federation init``)."""
        result: dict[str, Any] = await self.request("GET", "/v1/federation/identity")
        return result

    async def add_peer(self, name: str, url: str) -> PeerOut:
        """Add (or re-point) a peer (admin): its certificate name and federation URL (https)."""
        return PeerOut.model_validate(
            await self.request("POST", "/v1/federation/peers", json={"name": name, "url": url})
        )

    async def list_peers(self) -> list[PeerOut]:
        return [PeerOut.model_validate(p) for p in await self.request("GET", "/v1/federation/peers")]

    async def remove_peer(self, name: str) -> None:
        """Remove a peer and every grant it held (admin)."""
        await self.request("DELETE", f"/v1/federation/peers/{_seg(name)}")

    async def create_grant(
        self,
        peer: str,
        owner: str,
        kinds: list[str],
        *,
        tags: list[str] | None = None,
        recipient: str | None = None,
        expires_in: str | None = None,
    ) -> GrantOut:
        """Grant ``peer`` read access to ``kinds`` of ``owner``'s memory (``expires_in``: 30d, 12h, 2w)."""
        body = _clean(
            {
                "peer": peer,
                "owner": owner,
                "kinds": kinds,
                "tags": tags,
                "recipient": recipient,
                "expires_in": expires_in,
            }
        )
        return GrantOut.model_validate(await self.request("POST", "/v1/federation/grants", json=body))

    async def list_grants(self, *, peer: str | None = None) -> list[GrantOut]:
        """The caller's grants (an admin key: every grant)."""
        data = await self.request("GET", "/v1/federation/grants", params={"peer": peer})
        return [GrantOut.model_validate(g) for g in data]

    async def revoke_grant(self, grant_id: uuid.UUID | str) -> GrantOut:
        return GrantOut.model_validate(await self.request("DELETE", f"/v1/federation/grants/{grant_id}"))

    async def federation_audit(self, *, peer: str | None = None, limit: int = 100) -> list[AuditOut]:
        """Federated reads served to peers, newest first (the caller's own memory; an admin key: all)."""
        data = await self.request("GET", "/v1/federation/audit", params={"peer": peer, "limit": limit})
        return [AuditOut.model_validate(a) for a in data]

    # preferences ---------------------------------------------------------------------------
    async def set_preference(
        self,
        key: str,
        value: Any,
        *,
        scope: str | None = None,
        mutable: bool | None = None,
        source: str | None = None,
        owner: str | None = None,
    ) -> PreferenceOut:
        """Create or replace ``key``; ``.created`` tells which. ``mutable`` omitted keeps the current setting."""
        body = {"value": value, **_clean({"scope": scope, "mutable": mutable, "source": source, "owner": owner})}
        return PreferenceOut.model_validate(await self.request("PUT", f"/v1/preferences/{_seg(key)}", json=body))

    async def get_preference(self, key: str, *, scope: str | None = None, owner: str | None = None) -> PreferenceOut:
        data = await self.request("GET", f"/v1/preferences/{_seg(key)}", params={"scope": scope, "owner": owner})
        return PreferenceOut.model_validate(data)

    async def list_preferences(
        self,
        *,
        scope: str | None = None,
        owner: str | None = None,
        prefix: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[PreferenceOut]:
        params = {"scope": scope, "owner": owner, "prefix": prefix, "limit": limit, "cursor": cursor}
        return Page[PreferenceOut].model_validate(await self.request("GET", "/v1/preferences", params=params))

    async def delete_preference(self, key: str, *, scope: str | None = None, owner: str | None = None) -> None:
        await self.request("DELETE", f"/v1/preferences/{_seg(key)}", params={"scope": scope, "owner": owner})

    async def preference_history(
        self, key: str, *, scope: str | None = None, owner: str | None = None, limit: int = 100
    ) -> list[PreferenceChange]:
        params = {"scope": scope, "owner": owner, "limit": limit}
        data = await self.request("GET", f"/v1/preferences/{_seg(key)}/history", params=params)
        return [PreferenceChange.model_validate(x) for x in data]

    # skills --------------------------------------------------------------------------------
    async def create_skill(
        self,
        name: str,
        description: str,
        *,
        instructions: str | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> SkillOut:
        body = _clean(
            {
                "name": name,
                "description": description,
                "instructions": instructions,
                "tags": tags,
                "metadata": metadata,
                "owner": owner,
            }
        )
        return SkillOut.model_validate(await self.request("POST", "/v1/skills", json=body))

    async def get_skill(self, skill_id: uuid.UUID | str) -> SkillOut:
        return SkillOut.model_validate(await self.request("GET", f"/v1/skills/{_seg(str(skill_id))}"))

    async def list_skills(
        self, *, limit: int = 50, cursor: str | None = None, owner: str | None = None, tag: str | None = None
    ) -> Page[SkillOut]:
        params = {"limit": limit, "cursor": cursor, "owner": owner, "tag": tag}
        return Page[SkillOut].model_validate(await self.request("GET", "/v1/skills", params=params))

    async def update_skill(self, skill_id: uuid.UUID | str, **changes: Any) -> SkillOut:
        data = await self.request("PATCH", f"/v1/skills/{_seg(str(skill_id))}", json=changes)
        return SkillOut.model_validate(data)

    async def delete_skill(self, skill_id: uuid.UUID | str) -> None:
        await self.request("DELETE", f"/v1/skills/{_seg(str(skill_id))}")

    async def find_skills(self, task: str, *, k: int = 5, mode: str = "hybrid", **options: Any) -> SearchResponse:
        """The skills that best fit ``task`` (``/v1/search`` with ``kinds: ["skills"]``)."""
        return await self.search(task, k=k, kinds=["skills"], mode=mode, **options)

    # export / import -----------------------------------------------------------------------
    async def export_stream(
        self,
        *,
        owners: list[str] | None = None,
        kinds: list[str] | None = None,
        tags: list[str] | None = None,
        with_vectors: bool = False,
    ) -> AsyncIterator[bytes]:
        """The lines of ``GET /v1/export`` (each ending in a newline) as they arrive."""
        from mosaic_memory.portability.format import split_lines  # numpy: loaded only for exports

        params: dict[str, Any] = {"with_vectors": str(with_vectors).lower()}
        if owners:
            params["owner"] = owners
        if kinds:
            params["kinds"] = ",".join(kinds)
        if tags:
            params["tags"] = tags
        try:
            async with self._http.stream(
                "GET", "/v1/export", params=params, timeout=httpx.Timeout(self._http.timeout.connect, read=None)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise_for(response)
                # Split on b"\n" only: aiter_lines would also cut at U+2028 and friends, which
                # the export writes unescaped inside JSON strings.
                async for line in split_lines(response.aiter_bytes()):
                    if isinstance(line, bytes) and line:
                        yield line + b"\n"
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from None

    async def export_file(
        self,
        path: str | Path,
        *,
        owners: list[str] | None = None,
        kinds: list[str] | None = None,
        tags: list[str] | None = None,
        with_vectors: bool = False,
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """Write an export to ``path`` (gzip when it ends in ``.gz``); returns the records written.

        The file is written to ``path + ".part"`` and renamed once complete, so an interrupted
        export never leaves a file that looks whole. ``on_progress(done, total)`` after each record."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        done, total = 0, None
        opener = gzip.open if target.name.endswith(".gz") else open
        try:
            with opener(partial, "wb") as out:
                async for line in self.export_stream(owners=owners, kinds=kinds, tags=tags, with_vectors=with_vectors):
                    out.write(line)
                    if total is None and line.startswith(b'{"type":"header"'):
                        total = sum(json.loads(line).get("counts", {}).values())
                    elif not line.startswith(b'{"type":"end"'):
                        done += 1
                    if on_progress is not None:
                        on_progress(done, total)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return done

    async def import_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        as_owner: str | None = None,
        owner_map: dict[str, str] | None = None,
        dry_run: bool = False,
        gzipped: bool = False,
    ) -> ImportReportOut:
        """``POST /v1/import`` with ``chunks`` (an export file's bytes) streamed as the body."""
        headers = {"Content-Type": "application/x-ndjson"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        params: dict[str, Any] = {"dry_run": str(dry_run).lower()}
        if as_owner is not None:
            params["as"] = as_owner
        if owner_map:
            params["map"] = [f"{source}={target}" for source, target in owner_map.items()]
        try:
            response = await self._http.post(
                "/v1/import",
                content=chunks,
                headers=headers,
                params=params,
                timeout=httpx.Timeout(self._http.timeout.connect, read=None, write=None),
            )
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from None
        if response.status_code >= 400:
            raise_for(response)
        return ImportReportOut.model_validate(response.json())

    async def import_file(
        self,
        path: str | Path,
        *,
        as_owner: str | None = None,
        owner_map: dict[str, str] | None = None,
        dry_run: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ImportReportOut:
        """Import the export at ``path`` (a ``.gz`` one is sent compressed); ``on_progress(bytes, size)``."""
        source = Path(path)
        size = source.stat().st_size

        async def chunks() -> AsyncIterator[bytes]:
            sent = 0
            with source.open("rb") as handle:
                while chunk := handle.read(256 * 1024):
                    sent += len(chunk)
                    yield chunk
                    if on_progress is not None:
                        on_progress(sent, size)

        return await self.import_stream(
            chunks(), as_owner=as_owner, owner_map=owner_map, dry_run=dry_run, gzipped=source.name.endswith(".gz")
        )


class MosaicClient:
    """Blocking twin of :class:`AsyncMosaicClient`: every async method, called synchronously."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = AsyncMosaicClient(base_url, api_key, timeout=timeout)

    def __enter__(self) -> MosaicClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.aclose())
            self._loop.close()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        attr = getattr(self._client, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr  # type: ignore[no-any-return]

        def call(*args: Any, **kwargs: Any) -> Any:
            coro: Coroutine[Any, Any, Any] = attr(*args, **kwargs)
            return self._loop.run_until_complete(coro)

        return call
