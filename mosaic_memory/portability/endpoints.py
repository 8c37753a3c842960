"""REST routes: ``GET /v1/export`` (NDJSON, streamed) and ``POST /v1/import`` (NDJSON body, streamed)."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from mosaic_memory.api.deps import Reader, SessionDep, StateDep, Writer
from mosaic_memory.api.docs import ERRORS
from mosaic_memory.common.failures import DATA_ERROR_DETAIL
from mosaic_memory.errors import InvalidInput
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.portability.format import check_kinds, parse_owner_map
from mosaic_memory.portability.schemas import ImportReportOut
from mosaic_memory.portability.service import export_lines, resolve_export_owners

router = APIRouter(prefix="/v1", tags=["portability"], responses=ERRORS)

NDJSON = "application/x-ndjson"
NDJSON_TYPES = (b"application/x-ndjson", b"application/jsonl", b"application/x-jsonlines")


# One small export, as the OpenAPI document shows it (tests/api/test_openapi.py parses it).
EXAMPLE_EXPORT = "".join(
    line + "\n"
    for line in (
        '{"type":"header","format":"mosaic-memory-export","version":1,"instance":"laptop",'
        '"exported_at":"2026-12-01T03:00:00+00:00","embedding":{"model":"all-MiniLM-L6-v2","dimensions":384},'
        '"with_vectors":false,"kinds":["logs","insights","preferences","skills"],"owners":["user:alice"],'
        '"counts":{"insights":1}}',
        '{"type":"insight","owner":"user:alice","id":"0b7a5d1e-3c1f-4f55-9d3e-2f6f1c2a9b10",'
        '"content":"Alice prefers dark themes in every editor","tags":["ui"],"valid_from":"2026-11-30T09:12:00+00:00",'
        '"created_at":"2026-11-30T09:12:00+00:00","updated_at":"2026-11-30T09:12:00+00:00"}',
        '{"type":"end","records":1}',
    )
)


def _split(values: list[str] | None) -> list[str] | None:
    """``?kinds=a,b&kinds=c`` → ``[a, b, c]``."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "JSON Lines: the header, the records, the end record",
            "content": {NDJSON: {"example": EXAMPLE_EXPORT}},
        }
    },
)
async def export_memory(
    state: StateDep,
    session: SessionDep,
    principal: Reader,
    owner: Annotated[list[str] | None, Query(description="repeatable; default every owner the key may read")] = None,
    kinds: Annotated[list[str] | None, Query(description="logs, insights, preferences, skills (comma list)")] = None,
    tags: Annotated[list[str] | None, Query(description="only rows with one of these tags (insights, skills)")] = None,
    with_vectors: bool = False,
) -> StreamingResponse:
    """Stream the memory of the chosen owners as JSON Lines (``docs/portability.md``).

    An admin key may export any owner; another key only its own user and teams (404 otherwise).
    The rows come from one consistent snapshot, read page by page."""
    owners = await resolve_export_owners(session, principal, _split(owner))
    chosen = check_kinds(_split(kinds))
    chosen_tags = _split(tags)
    if chosen_tags and any("\x00" in tag for tag in chosen_tags):
        # Checked here: once the stream has started, the database's refusal could only cut it short.
        raise InvalidInput(DATA_ERROR_DETAIL)
    await session.commit()

    async def body() -> AsyncIterator[bytes]:
        async with state.sessionmaker() as stream_session:
            await OwnerService.enter_scope(stream_session, principal)
            async with stream_session.begin():
                await stream_session.connection(
                    execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
                )
                async for line in export_lines(
                    stream_session, owners, kinds=chosen, tags=chosen_tags, with_vectors=with_vectors
                ):
                    yield line

    return StreamingResponse(
        body(), media_type=NDJSON, headers={"Content-Disposition": 'attachment; filename="mosaic-export.jsonl"'}
    )


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives, gunzipped when sent with ``Content-Encoding: gzip``."""
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding not in ("", "identity", "gzip"):
        raise InvalidInput(f"unsupported Content-Encoding {encoding!r}; send gzip or plain")
    inflate = zlib.decompressobj(wbits=31) if encoding == "gzip" else None
    async for chunk in request.stream():
        if inflate is None:
            yield chunk
            continue
        try:
            yield inflate.decompress(chunk)
        except zlib.error:
            raise InvalidInput("the gzip body is corrupt") from None
    if inflate is not None:
        yield inflate.flush()


@router.post(
    "/import",
    response_model=ImportReportOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "an export file (JSON Lines), optionally with Content-Encoding: gzip",
            "content": {NDJSON: {"schema": {"type": "string", "format": "binary"}, "example": EXAMPLE_EXPORT}},
        }
    },
)
async def import_memory(
    request: Request,
    state: StateDep,
    session: SessionDep,
    principal: Writer,
    as_owner: Annotated[str | None, Query(alias="as", description="send every record to this owner")] = None,
    owner_map: Annotated[
        list[str] | None,
        Query(alias="map", description="SOURCE=TARGET, repeatable: user:alice=user:alice2 (others keep their name)"),
    ] = None,
    dry_run: Annotated[bool, Query(description="report what would happen; write nothing")] = False,
) -> Any:
    """Import an export file, read as it streams in; committed in batches.

    An admin key may write any owner (created when missing); another key only its own user and
    teams (other records fail with PermissionDenied). Malformed lines are reported with their
    number and skipped; a newer format version is refused (422) before anything is written."""
    await session.commit()  # the key is checked; the import commits in batches of its own
    report = await state.portability.import_stream(
        state.sessionmaker,
        _body(request),
        principal=principal,
        as_owner=as_owner,
        owner_map=parse_owner_map(owner_map or []),
        dry_run=dry_run,
    )
    return report.to_dict()
