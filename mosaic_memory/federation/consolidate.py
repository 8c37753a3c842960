"""Consolidation: a peer's granted memory copied into this instance through the portability import path.

Serving side: ``export_stream`` streams one grant's rows with ``portability.export_records``
(owner, kinds and tags of the grant; no vectors, so the receiver embeds with its own model) and
audits the export. Pulling side: ``pull_from_peer`` asks the peer which grants it holds for the
receiving owner and imports each stream with ``PortabilityService.import_stream``, which
deduplicates (content hash; near-duplicate insights merged), keeps ids, history and provenance,
stamps ``metadata.origin`` with the peer's name, and makes a second pull change nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from mosaic_memory.errors import PeerNotFound
from mosaic_memory.federation.repository import PeerRepository
from mosaic_memory.federation.schemas import PeerExportRequest
from mosaic_memory.models import FederationGrant, Owner
from mosaic_memory.owners.schemas import OwnerRef

if TYPE_CHECKING:
    from mosaic_memory.common.schemas import Kind
    from mosaic_memory.container import AppState

__all__ = ["export_stream", "pull_from_peer"]


async def export_stream(
    state: AppState, peer: str, grant: FederationGrant, owner: Owner, kinds: Sequence[Kind]
) -> AsyncIterator[bytes]:
    """NDJSON lines of what ``grant`` covers, read in one REPEATABLE READ snapshot; audited at the end."""
    from mosaic_memory.portability.format import dump_line
    from mosaic_memory.portability.service import export_records

    started = time.perf_counter()
    rows = 0
    async with state.sessionmaker() as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        records = export_records(
            session,
            [OwnerRef(owner.id, owner.kind, owner.name)],
            kinds=list(kinds),
            tags=list(grant.tags) if grant.tags else None,
            with_vectors=False,
            instance=state.federation.name,
        )
        async for record in records:
            if record.get("type") not in ("header", "end"):
                rows += 1
            yield dump_line(record)
    async with state.sessionmaker() as session:
        await state.federation.audit_export(session, peer, grant, rows, started)
        await session.commit()


async def pull_from_peer(
    state: AppState,
    peer: str,
    *,
    owner: str,
    kinds: Sequence[str] | None = None,
    remote_owner: str | None = None,
) -> dict[str, Any]:
    """Copy every grant ``peer`` holds for local ``owner`` into ``owner``'s memory; per-grant import reports.

    Raises PeerNotFound, FederationError (peer unreachable or refusing), InvalidInput (bad kinds)."""
    async with state.sessionmaker() as session:
        entry = await PeerRepository(session).get(peer)
    if entry is None:
        raise PeerNotFound(peer)
    client = state.federation.client()
    grants = await client.grants(peer, entry.url, {"recipients": [owner]})
    if remote_owner is not None:
        grants = [g for g in grants if g["owner"] == remote_owner]
    reports = []
    for grant in grants:
        body = PeerExportRequest.model_validate(
            {"recipients": [owner], "grant_id": grant["id"], "kinds": list(kinds) if kinds else None}
        ).model_dump(mode="json")
        async with client.export_lines(peer, entry.url, body) as lines:
            report = await state.portability.import_stream(
                state.sessionmaker, lines, principal=None, as_owner=owner, origin=peer
            )
        reports.append({"grant": grant["id"], "from_owner": grant["owner"], **report.to_dict()})
    return {"peer": peer, "owner": owner, "grants": reports}
