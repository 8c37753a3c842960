"""Federation: peers, grants, audit, serving peers' reads, and the federated search fan-out.

The serving side answers only through grants that ``GrantRepository.active_for`` returns (peer,
recipient, not revoked, not expired), and reads through the search repository scoped to the
grant's owner, kinds and tags; so a row no grant covers is never read. The asking side fans out
concurrently with a per-peer timeout and reports the peers that failed instead of failing.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.common.schemas import KINDS, Kind
from mosaic_memory.config import Settings
from mosaic_memory.errors import (
    FederationError,
    GrantNotFound,
    InvalidInput,
    OwnerNotFound,
    PeerNotFound,
    PermissionDenied,
)
from mosaic_memory.federation.client import PeerClient, PeerResult
from mosaic_memory.federation.identity import FederationPaths, instance_name
from mosaic_memory.federation.repository import AuditRepository, GrantRepository, PeerRepository
from mosaic_memory.federation.schemas import (
    AuditOut,
    GrantCreate,
    GrantOut,
    PeerCreate,
    PeerFailure,
    PeerOut,
    PeerSearchRequest,
    PeerSearchResponse,
    parse_duration,
)
from mosaic_memory.models import FederationAudit, FederationGrant, FederationPeer, Owner, utc_now
from mosaic_memory.owners.schemas import OwnerRef, Principal
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.search.schemas import Hit, SearchRequest, SearchResponse
from mosaic_memory.search.service import SearchService

# How often a federated search writes a healthy peer's last contact and latency (``peer list``).
CONTACT_EVERY_S = 10.0

__all__ = ["FederationService", "merge_hits", "query_hash"]


def merge_hits(lists: Sequence[Sequence[Hit]], k: int) -> list[Hit]:
    """Merge hits from several instances by score, best first, ``k`` at most, each memory once.

    Scores are calibrated to 0..1 and comparable across queries and instances (the search
    service's contract), so the merge is a sort; ties keep the order of ``lists`` (local first).
    A row pulled from a peer keeps its id, so after ``federation pull`` the peer's original and the
    local copy are one memory: the hit of the earlier list (local) stands. Two rows that only share
    their text (the same words logged in two sessions) stay two hits."""
    seen: set[tuple[str, object]] = set()
    merged: list[Hit] = []
    for hits in lists:
        for hit in hits:
            if (hit.kind, hit.id) not in seen:
                seen.add((hit.kind, hit.id))
                merged.append(hit)
    merged.sort(key=lambda hit: hit.score, reverse=True)  # stable: earlier lists win ties
    return merged[:k]


def query_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _grant_out(grant: FederationGrant, owner: Owner | OwnerRef, now: datetime) -> GrantOut:
    return GrantOut(
        id=grant.id,
        peer=grant.peer,
        owner=f"{owner.kind}:{owner.name}",
        recipient=f"{grant.recipient}@{grant.peer}",
        kinds=list(grant.kinds),
        tags=list(grant.tags) if grant.tags else None,
        created_at=grant.created_at,
        expires_at=grant.expires_at,
        revoked_at=grant.revoked_at,
        active=grant.revoked_at is None and grant.expires_at > now,
    )


def _peer_out(peer: FederationPeer) -> PeerOut:
    return PeerOut(
        name=peer.name,
        url=peer.url,
        created_at=peer.created_at,
        last_contact_at=peer.last_contact_at,
        last_latency_ms=peer.last_latency_ms,
        cert_not_after=peer.cert_not_after,
        last_error=peer.last_error,
    )


def _grant_principal(owner: Owner) -> Principal:
    """A read-only principal that sees exactly one owner: the grant's (no teams, no other users)."""
    return Principal(user=OwnerRef(owner.id, owner.kind, owner.name), key_id=None, scopes=frozenset({"read"}))


class FederationService:
    """Peers, grants, audit and federated search for one instance.

    Built once per process with the search service it fans out beside; never commits."""

    def __init__(
        self,
        *,
        settings: Settings,
        search: SearchService,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.search_service = search
        self.owners = OwnerService(clock=clock)
        self.clock = clock
        self.paths = FederationPaths.for_data_dir(settings.data_dir)
        self._client: PeerClient | None = None
        self.server_ssl: ssl.SSLContext | None = None  # the listener's, when it runs in this process
        self._contacts: dict[str, tuple[float, str | None]] = {}  # peer -> (when written, its error)

    # identity ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """This instance's name; raises FederationError before ``federation init``."""
        return instance_name(self.paths)

    def origin(self) -> str:
        """The label local hits carry: the instance name, or ``local`` before ``federation init``."""
        try:
            return self.name
        except FederationError:
            return "local"

    def _contact_due(self, result: PeerResult) -> bool:
        """Whether to write this answer to the peer's row (``peer list``): at once when the peer's
        state changes (it failed, or recovered), else at most every ``CONTACT_EVERY_S`` seconds,
        so a busy federated search does not write a row per peer per query."""
        now = time.monotonic()
        last = self._contacts.get(result.peer)
        if last is not None and last[1] == result.error and now - last[0] < CONTACT_EVERY_S:
            return False
        self._contacts[result.peer] = (now, result.error)
        return True

    def client(self) -> PeerClient:
        """The fan-out client (one connection pool), rebuilt when the certificate files change."""
        if self._client is None or self._client.stale():
            old, self._client = self._client, PeerClient(self.paths)
            if old is not None:
                old.retire()
        return self._client

    def reload_certificates(self) -> None:
        """Use renewed certificate files from now on: new handshakes of the listener, a new client pool."""
        if self.server_ssl is not None:
            self.server_ssl.load_cert_chain(self.paths.cert, self.paths.key)
            self.server_ssl.load_verify_locations(cafile=self.paths.trusted)
        if self._client is not None:
            self._client.retire()
            self._client = None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # peers ------------------------------------------------------------------------------------
    async def add_peer(self, session: AsyncSession, data: PeerCreate) -> PeerOut:
        repo = PeerRepository(session)
        peer = await repo.get(data.name)
        if peer is None:
            peer = await repo.add(FederationPeer(name=data.name, url=data.url.rstrip("/"), created_at=self.clock()))
        else:
            peer.url = data.url.rstrip("/")
            await session.flush()
        return _peer_out(peer)

    @staticmethod
    async def list_peers(session: AsyncSession) -> list[PeerOut]:
        """Every peer entry (static: the health probes list peers without a running service)."""
        return [_peer_out(p) for p in await PeerRepository(session).list()]

    async def remove_peer(self, session: AsyncSession, name: str) -> None:
        """Remove the peer and (cascade) every grant it held. Raises PeerNotFound."""
        if not await PeerRepository(session).remove(name):
            raise PeerNotFound(name)

    async def require_peer(self, session: AsyncSession, names: Sequence[str]) -> FederationPeer:
        """The peer entry matching one of a verified certificate's names; PermissionDenied otherwise."""
        repo = PeerRepository(session)
        for name in names:
            peer = await repo.get(name)
            if peer is not None:
                return peer
        raise PermissionDenied(f"certificate name {', '.join(names) or '(none)'} is not a peer of this instance")

    # grants -----------------------------------------------------------------------------------
    async def _grant_owner(self, session: AsyncSession, principal: Principal, label: str) -> OwnerRef:
        kind, _, name = label.partition(":")
        if kind not in ("user", "team") or not name:
            raise InvalidInput(f"owner must look like 'user:NAME' or 'team:NAME', got {label!r}")
        is_admin = "admin" in principal.scopes
        # A user grants their own memory; a team's memory (or anyone else's) needs an admin key.
        if not is_admin and not (kind == "user" and name == principal.user.name):
            raise PermissionDenied(f"only an admin key may grant access to {label}'s memory")
        owner = await self.owners.owner_by_label(session, label)
        if owner is None:
            raise OwnerNotFound(label)
        return owner

    async def create_grant(self, session: AsyncSession, principal: Principal, data: GrantCreate) -> GrantOut:
        """Grant ``data.peer`` read access. Raises PeerNotFound, OwnerNotFound, PermissionDenied, InvalidInput."""
        now = self.clock()
        if await PeerRepository(session).get(data.peer) is None:
            raise PeerNotFound(data.peer)
        owner = await self._grant_owner(session, principal, data.owner)
        if data.expires_at is not None and data.expires_in is not None:
            raise InvalidInput("give expires_at or expires_in, not both")
        expires = data.expires_at if data.expires_at is not None else now + parse_duration(data.expires_in or "30d")
        if expires <= now:
            raise InvalidInput("the grant would expire before it starts; give a future expiry")
        recipient = data.recipient or f"{owner.kind}:{owner.name}"
        base, _, at = recipient.partition("@")
        if at and at != data.peer:
            raise InvalidInput(
                f"recipient {recipient!r} is on instance {at!r}, but the grant is for peer {data.peer!r}"
            )
        grant = await GrantRepository(session).add(
            FederationGrant(
                peer=data.peer,
                owner_id=owner.id,
                recipient=base,
                kinds=list(dict.fromkeys(data.kinds)),
                tags=list(dict.fromkeys(data.tags)) if data.tags else None,
                created_at=now,
                expires_at=expires,
            )
        )
        return _grant_out(grant, owner, now)

    @staticmethod
    def _visible_owner_ids(principal: Principal) -> list[uuid.UUID] | None:
        return None if "admin" in principal.scopes else [principal.user.id]

    async def list_grants(self, session: AsyncSession, principal: Principal, peer: str | None = None) -> list[GrantOut]:
        now = self.clock()
        rows = await GrantRepository(session).list(self._visible_owner_ids(principal), peer=peer)
        return [_grant_out(g, o, now) for g, o in rows]

    async def revoke_grant(self, session: AsyncSession, principal: Principal, grant_id: uuid.UUID) -> GrantOut:
        """Revoke at once: the next request of the peer no longer finds the grant. Raises GrantNotFound."""
        repo = GrantRepository(session)
        grant = await repo.get(grant_id, self._visible_owner_ids(principal))
        if grant is None:
            raise GrantNotFound(grant_id)
        now = self.clock()
        await repo.revoke(grant, now)
        owner = await self.owners.owner_by_id(session, grant.owner_id)
        assert owner is not None  # the foreign key cascades
        return _grant_out(grant, owner, now)

    # audit ------------------------------------------------------------------------------------
    async def list_audit(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        peer: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditOut]:
        rows = await AuditRepository(session).list(
            peer=peer, since=since, owner_ids=self._visible_owner_ids(principal), limit=limit
        )
        return [
            AuditOut(
                id=a.id,
                at=a.at,
                peer=a.peer,
                grant_id=a.grant_id,
                owner=f"{o.kind}:{o.name}" if o is not None else None,
                recipient=a.recipient,
                operation=a.operation,
                query_hash=a.query_hash,
                query_text=a.query_text,
                hits=a.hits,
                latency_ms=a.latency_ms,
            )
            for a, o in rows
        ]

    async def _audit(
        self,
        session: AsyncSession,
        *,
        peer: str,
        grant: FederationGrant,
        operation: str,
        query: str | None,
        hits: int,
        started: float,
    ) -> None:
        await AuditRepository(session).add(
            FederationAudit(
                at=self.clock(),
                peer=peer,
                grant_id=grant.id,
                owner_id=grant.owner_id,
                recipient=grant.recipient,
                operation=operation,
                query_hash=query_hash(query) if query is not None else None,
                query_text=query if (query is not None and self.settings.federation.store_query_text) else None,
                hits=hits,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
            )
        )

    # the serving side -------------------------------------------------------------------------
    async def serve_search(self, session: AsyncSession, peer: str, req: PeerSearchRequest) -> PeerSearchResponse:
        """Answer a verified peer's search with the rows its active grants cover, audited per grant."""
        now = self.clock()
        grants = await GrantRepository(session).active_for(peer, req.recipients, now)
        origin = self.name
        found: list[list[Hit]] = []
        for grant, owner in grants:
            started = time.perf_counter()
            kinds: list[Kind] = [k for k in (req.kinds or KINDS) if k in grant.kinds]
            filters = req.filters
            if grant.tags:
                wanted = set(grant.tags) if not filters.tags else set(grant.tags) & set(filters.tags)
                kinds = kinds if wanted else []
                filters = filters.model_copy(update={"tags": sorted(wanted)})
            hits: list[Hit] = []
            if kinds:
                local = SearchRequest(
                    query=req.query, k=req.k, kinds=kinds, mode=req.mode, filters=filters, min_score=req.min_score
                )
                out = await self.search_service.search(session, _grant_principal(owner), local)
                hits = [h.model_copy(update={"origin": origin}) for h in out.hits]
            await self._audit(
                session, peer=peer, grant=grant, operation="search", query=req.query, hits=len(hits), started=started
            )
            found.append(hits)
        return PeerSearchResponse(instance=origin, grants=len(grants), hits=merge_hits(found, req.k))

    async def peer_grants(
        self, session: AsyncSession, peer: str, recipients: Sequence[str]
    ) -> list[tuple[FederationGrant, Owner]]:
        """The active grants ``peer`` holds for ``recipients`` (what a pull may copy)."""
        return list(await GrantRepository(session).active_for(peer, recipients, self.clock()))

    async def export_grant(
        self,
        session: AsyncSession,
        peer: str,
        recipients: Sequence[str],
        grant_id: uuid.UUID,
        kinds: Sequence[Kind] | None,
    ) -> tuple[FederationGrant, Owner, list[Kind]]:
        """The grant a pull asks for, if active for this peer and recipient, with the kinds it covers.

        Raises GrantNotFound when it is not (revoked, expired, another peer's or recipient's)."""
        for grant, owner in await self.peer_grants(session, peer, recipients):
            if grant.id == grant_id:
                return grant, owner, [k for k in (kinds or KINDS) if k in grant.kinds]
        raise GrantNotFound(grant_id)

    async def audit_export(
        self, session: AsyncSession, peer: str, grant: FederationGrant, rows: int, started: float
    ) -> None:
        await self._audit(session, peer=peer, grant=grant, operation="export", query=None, hits=rows, started=started)

    # the asking side --------------------------------------------------------------------------
    async def search(self, session: AsyncSession, principal: Principal, req: SearchRequest) -> SearchResponse:
        """The one search entry of the edges (REST, MCP): local, or local plus peers when ``req.federated``."""
        if req.federated:
            return await self.federated_search(session, principal, req)
        return await self.search_service.search(session, principal, req)

    async def federated_search(self, session: AsyncSession, principal: Principal, req: SearchRequest) -> SearchResponse:
        """Local search plus every peer's, merged by score; peers that fail are named, never fatal.

        The local search and the peers' run at the same time, so a federated search costs about
        the slower of the two, not their sum. Scores are calibrated relevance in [0, 1] on every
        instance (search/fusion.py), so merging by score is the local fusion's own order."""
        peers = list(await PeerRepository(session).list())
        body = PeerSearchRequest(
            query=req.query,
            k=req.k,
            kinds=req.kinds,
            mode=req.mode,
            filters=req.filters,
            min_score=req.min_score,
            recipients=[o.label for o in principal.owners],
        ).model_dump(mode="json")
        failed: list[PeerFailure] = []
        client: PeerClient | None = None
        if peers:
            try:
                client = self.client()
            except FederationError as exc:
                failed = [PeerFailure(peer=p.name, reason=exc.detail) for p in peers]
        timeout = self.settings.federation.timeout_seconds
        calls = [client.search(p.name, p.url, body, timeout=timeout) for p in peers] if client is not None else []
        local, results = await asyncio.gather(
            self.search_service.search(session, principal, req.model_copy(update={"federated": False})),
            asyncio.gather(*calls),
        )
        origin = self.origin()
        local_hits = [h.model_copy(update={"origin": origin}) for h in local.hits]
        remote: list[list[Hit]] = []
        now = self.clock()
        repo = PeerRepository(session)
        for result in results:
            if self._contact_due(result):
                await repo.record_contact(
                    result.peer,
                    at=now,
                    latency_ms=result.latency_ms,
                    cert_not_after=result.cert_not_after,
                    error=result.error,
                )
            if result.error is not None:
                failed.append(PeerFailure(peer=result.peer, reason=result.error))
            elif result.body is not None:
                remote.append(_remote_hits(result))
        hits = merge_hits([local_hits, *remote], req.k)
        return SearchResponse(hits=hits, mode=req.mode, federated=True, peers_failed=failed)


def _remote_hits(result: PeerResult) -> list[Hit]:
    """A peer's hits, labelled with the name its certificate proved (not the name it claims)."""
    body: dict[str, Any] = result.body or {}
    return [Hit.model_validate(h).model_copy(update={"origin": result.peer}) for h in body.get("hits", [])]
