"""REST routes under /v1/federation: identity, peers (admin), grants (owners; admins for teams), audit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from mosaic_memory.api.deps import Admin, Reader, SessionDep, StateDep, Writer
from mosaic_memory.api.docs import ERRORS, error_doc, example_response, list_response
from mosaic_memory.federation.identity import cert_info
from mosaic_memory.federation.schemas import AuditOut, GrantCreate, GrantOut, PeerCreate, PeerOut

router = APIRouter(prefix="/v1/federation", tags=["federation"], responses=ERRORS)

IDENTITY_EXAMPLE = {
    "name": "laptop",
    "certificate": {
        "names": ["laptop"],
        "issuer": "CN=Mosaic Memory federation CA",
        "not_before": "2026-12-02T08:55:00+00:00",
        "not_after": "2026-12-03T09:00:00+00:00",
        "fingerprint": "9f1c0b7e5d3a2f4c6e8a0b1d3f5c7e9a2b4d6f8a0c1e3b5d7f9a1c3e5b7d9f0a",
        "is_ca": False,
    },
    "ca_here": True,
}


@router.get(
    "/identity",
    responses={
        200: example_response(IDENTITY_EXAMPLE),
        409: error_doc("no federation identity yet", "FederationError", "this instance has no federation identity"),
    },
)
async def identity(state: StateDep, _: Reader) -> dict[str, Any]:
    """This instance's federation name and certificate (FederationError 409 before 'federation init')."""
    paths = state.federation.paths
    name = state.federation.name
    cert = cert_info(paths.cert.read_bytes()).as_dict() if paths.cert.exists() else None
    return {"name": name, "certificate": cert, "ca_here": paths.ca_key.exists()}


@router.post("/peers", status_code=status.HTTP_201_CREATED, response_model=PeerOut)
async def add_peer(body: PeerCreate, state: StateDep, session: SessionDep, _: Admin) -> PeerOut:
    """Add (or re-point) a peer: its certificate name and its federation URL."""
    out = await state.federation.add_peer(session, body)
    await session.commit()
    return out


@router.get("/peers", response_model=list[PeerOut], responses={200: list_response(PeerOut)})
async def list_peers(state: StateDep, session: SessionDep, _: Admin) -> list[PeerOut]:
    """Peers with their last contact, latency and certificate expiry."""
    return await state.federation.list_peers(session)


@router.delete("/peers/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_peer(name: str, state: StateDep, session: SessionDep, _: Admin) -> None:
    """Remove a peer and every grant it held."""
    await state.federation.remove_peer(session, name)
    await session.commit()


@router.post("/grants", status_code=status.HTTP_201_CREATED, response_model=GrantOut)
async def create_grant(body: GrantCreate, state: StateDep, session: SessionDep, principal: Writer) -> GrantOut:
    """Grant a peer read access to chosen kinds (optionally tags) of one owner's memory, until expiry."""
    out = await state.federation.create_grant(session, principal, body)
    await session.commit()
    return out


@router.get("/grants", response_model=list[GrantOut], responses={200: list_response(GrantOut)})
async def list_grants(
    state: StateDep, session: SessionDep, principal: Reader, peer: str | None = None
) -> list[GrantOut]:
    """The caller's grants (an admin key: every grant)."""
    return await state.federation.list_grants(session, principal, peer)


@router.delete("/grants/{grant_id}", response_model=GrantOut)
async def revoke_grant(grant_id: uuid.UUID, state: StateDep, session: SessionDep, principal: Writer) -> GrantOut:
    """Revoke a grant; the peer's next request no longer sees anything through it."""
    out = await state.federation.revoke_grant(session, principal, grant_id)
    await session.commit()
    return out


@router.get("/audit", response_model=list[AuditOut], responses={200: list_response(AuditOut)})
async def audit(
    state: StateDep,
    session: SessionDep,
    principal: Reader,
    peer: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    """Federated reads served to peers, newest first (the caller's own memory; an admin key: all)."""
    return await state.federation.list_audit(session, principal, peer=peer, since=since, limit=limit)
