"""POST /v1/search."""

from __future__ import annotations

from fastapi import APIRouter

from mosaic_memory.api.deps import Reader, SessionDep, StateDep
from mosaic_memory.api.docs import ERRORS
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.search.schemas import SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["search"], responses=ERRORS)


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, state: StateDep, session: SessionDep, principal: Reader) -> SearchResponse:
    """Semantic, keyword or hybrid (default) search over the caller's memory of the chosen kinds."""
    if state.replica_sessionmaker is not None and not body.federated:
        # The caller was authenticated on the primary (``session``); the search reads the replica.
        async with state.replica_sessionmaker() as replica:
            await OwnerService.enter_scope(replica, principal)
            out = await state.search.search(replica, principal, body)
    else:
        out = await state.federation.search(session, principal, body)  # federated: true adds the peers' hits
    await session.commit()
    return out
