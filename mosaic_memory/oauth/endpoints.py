"""OAuth routes: discovery documents, the consent page, token, registration and revocation
endpoints (outside ``/v1``: they speak OAuth's own forms and errors), and a person's grants
under ``/v1/oauth``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from mosaic_memory.api.deps import Reader, SessionDep, StateDep, Writer
from mosaic_memory.api.docs import ERRORS, list_response
from mosaic_memory.container import AppState
from mosaic_memory.errors import AuthenticationFailed, NotFound
from mosaic_memory.oauth.protocol import OAuthCall, OAuthReply
from mosaic_memory.oauth.schemas import GrantOut, GrantRevoked
from mosaic_memory.oauth.service import Authorization, resources_of
from mosaic_memory.oauth.urls import base_url
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.owners.service import key_prefix
from mosaic_memory.web.session import (
    CSRF_FIELD,
    Signer,
    check_csrf,
    clear_session,
    csrf_token,
    read_session,
    set_csrf_cookie,
    start_session,
)
from mosaic_memory.web.templates import render

SCOPE_TEXT = {
    "read": "read your preferences, insights, skills and agent logs, and search them",
    "write": "store and change memory in your name",
    "admin": "manage users, teams and API keys of this whole service",
}


# The consent page: never cached, never framed (clickjacking), no script or outside resource.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def _enabled(state: StateDep) -> None:
    if not state.settings.oauth.enabled:
        raise NotFound("OAuth is turned off on this service (oauth.enabled)")


Enabled = Depends(_enabled)
router = APIRouter(tags=["oauth"], dependencies=[Enabled])
grants_router = APIRouter(prefix="/v1/oauth", tags=["oauth"], responses=ERRORS, dependencies=[Enabled])


def _base(state: AppState, request: Request) -> str:
    return base_url(state.settings, request.scope)


def _secure(state: AppState, request: Request) -> bool:
    return _base(state, request).startswith("https://")


def _call(state: AppState, request: Request, params: Sequence[tuple[str, Any]], body: Any = None) -> OAuthCall:
    return OAuthCall(
        method=request.method,
        url=_base(state, request) + request.url.path,
        params=[(k, v) for k, v in params if isinstance(v, str)],
        authorization=request.headers.get("authorization"),
        json=body,
    )


def _reply(reply: OAuthReply) -> Response:
    """An OAuth reply as JSON (or a redirect), with Authlib's headers (``Cache-Control: no-store``)."""
    if reply.location:
        return RedirectResponse(reply.location, status_code=302)
    headers = {k: v for k, v in reply.headers if k.lower() != "content-type"}
    return JSONResponse(reply.body, status_code=reply.status, headers=headers)


def _page_or_redirect(reply: OAuthReply) -> Response:
    """An error of the authorization endpoint: back to the client when its redirect URI is
    trusted, else a page for the person (never a redirect to an unregistered URI)."""
    if reply.location:
        return RedirectResponse(reply.location, status_code=302)
    body = reply.body if isinstance(reply.body, dict) else {}
    page = render("error.html", error=body.get("error", "invalid_request"), description=body.get("error_description"))
    return HTMLResponse(page, status_code=reply.status, headers=PAGE_HEADERS)


# discovery ------------------------------------------------------------------------------------
@router.get("/.well-known/oauth-protected-resource")
async def resource_metadata(state: StateDep, request: Request) -> dict[str, Any]:
    """RFC 9728 metadata of the REST API (the whole service)."""
    base = _base(state, request)
    return state.oauth.resource_metadata(base, resources_of(base)[0])


@router.get("/.well-known/oauth-protected-resource/mcp")
async def mcp_resource_metadata(state: StateDep, request: Request) -> dict[str, Any]:
    """RFC 9728 metadata of the MCP endpoint ``/mcp``."""
    base = _base(state, request)
    return state.oauth.resource_metadata(base, resources_of(base)[1])


@router.get("/.well-known/oauth-authorization-server")
async def server_metadata(state: StateDep, request: Request) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    return state.oauth.server_metadata(_base(state, request))


# the consent page -----------------------------------------------------------------------------
async def _signer(state: AppState, session: SessionDep) -> Signer:
    return Signer(await state.oauth.session_secret(session))


async def _signed_in(state: AppState, session: SessionDep, signer: Signer, request: Request) -> Principal | None:
    key_id = read_session(signer, request)
    if key_id is None:
        return None
    try:
        return await state.owners.principal_of_key(session, key_id)
    except AuthenticationFailed:
        return None  # the key was revoked: the session ended with it


def _consent_page(
    state: AppState,
    request: Request,
    signer: Signer,
    auth: Authorization,
    signed_in: Principal | None,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    token = csrf_token(signer, request)
    page = render(
        "consent.html",
        client_name=auth.client_name,
        client_id=auth.client_id,
        redirect_host=auth.redirect_host,
        scopes=auth.scopes,
        scope_text=SCOPE_TEXT,
        resource=auth.resource,
        signed_in_as=signed_in.user.name if signed_in else None,
        csrf_token=token,
        action=f"{request.url.path}?{request.url.query}",  # the form posts the same authorization request
        token_minutes=max(1, state.settings.oauth.access_token_ttl_seconds // 60),
        error=error,
    )
    response = HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)
    set_csrf_cookie(signer, response, token, secure=_secure(state, request))
    if signed_in is None:
        clear_session(response)
    return response


async def _authorization(state: AppState, session: SessionDep, request: Request) -> Authorization | Response:
    """The authorization request in the query (the page's and its form's), or its error response."""
    call = _call(state, request, request.query_params.multi_items())
    auth = await state.oauth.authorization(session, call, _base(state, request))
    return _page_or_redirect(auth) if isinstance(auth, OAuthReply) else auth


# The errors of RFC 6749 §5.2 / RFC 7591 §3.2.2 (``{"error", "error_description"}``), and the
# consent pages' refusals (an HTML page: a bad request, a wrong key, a form without its CSRF token).
OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "invalid_request, invalid_grant, invalid_client_metadata, ... (RFC 6749 §5.2)"},
    401: {"description": "invalid_client: the client is unknown or did not authenticate"},
    403: {"description": "the consent form did not come from this page (CSRF)"},
    429: ERRORS[429],
}


@router.get("/oauth/authorize", response_class=HTMLResponse, responses=OAUTH_ERRORS)
async def authorize(state: StateDep, session: SessionDep, request: Request) -> Response:
    """The consent page: who asks, for what; sign in with an API key (or a session) to approve."""
    auth = await _authorization(state, session, request)
    if isinstance(auth, Response):
        return auth
    signer = await _signer(state, session)
    signed_in = await _signed_in(state, session, signer, request)
    await session.commit()
    return _consent_page(state, request, signer, auth, signed_in)


@router.post("/oauth/authorize", response_class=HTMLResponse, responses=OAUTH_ERRORS)
async def decide(state: StateDep, session: SessionDep, request: Request) -> Response:
    """The consent form's post: approve (with an API key or the session) or deny; CSRF-checked."""
    auth = await _authorization(state, session, request)
    if isinstance(auth, Response):
        return auth
    form = await request.form()
    signer = await _signer(state, session)
    submitted = form.get(CSRF_FIELD)
    if not check_csrf(signer, request, submitted if isinstance(submitted, str) else None):
        page = render(
            "error.html", error="forbidden", description="the form expired or did not come from this page; reload it"
        )
        return HTMLResponse(page, status_code=403, headers=PAGE_HEADERS)
    signed_in = await _signed_in(state, session, signer, request)
    if form.get("decision") != "approve":
        reply = state.oauth.decide(auth, None)
        await session.commit()
        return _reply(reply)
    api_key = form.get("api_key")
    principal = signed_in
    if isinstance(api_key, str) and api_key.strip():
        try:
            key = api_key.strip()
            client = request.client.host if request.client else "unknown"
            principal = await state.guard.authenticate(  # the brute-force limit of every key check
                state.settings.limits, client, key_prefix(key), lambda: state.owners.authenticate(session, key)
            )
        except AuthenticationFailed:
            await session.commit()
            return _consent_page(
                state, request, signer, auth, signed_in, error="That API key is not valid.", status=401
            )
    if principal is None:
        return _consent_page(state, request, signer, auth, None, error="Enter your API key to approve.", status=400)
    reply = state.oauth.decide(auth, principal)
    await session.commit()
    response = _reply(reply)
    if principal is not signed_in and principal.key_id is not None:
        hours = state.settings.web.session_hours
        start_session(signer, response, principal.key_id, hours=hours, secure=_secure(state, request))
    return response


# token, registration, revocation --------------------------------------------------------------
@router.post("/oauth/token", responses=OAUTH_ERRORS)
async def token(state: StateDep, session: SessionDep, request: Request) -> Response:
    """The token endpoint (authorization_code with PKCE, refresh_token)."""
    form = await request.form()
    reply = await state.oauth.token(session, _call(state, request, form.multi_items()), _base(state, request))
    await session.commit()  # also after an error: a replayed code has revoked its grant
    return _reply(reply)


@router.post("/oauth/revoke", responses=OAUTH_ERRORS)
async def revoke(state: StateDep, session: SessionDep, request: Request) -> Response:
    """RFC 7009 revocation of an access or refresh token (and its grant)."""
    form = await request.form()
    reply = await state.oauth.revoke(session, _call(state, request, form.multi_items()), _base(state, request))
    await session.commit()
    return _reply(reply)


@router.post("/oauth/register", status_code=201, responses=OAUTH_ERRORS)
async def register(state: StateDep, session: SessionDep, request: Request) -> Response:
    """RFC 7591 dynamic client registration (JSON client metadata)."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return JSONResponse(
            {"error": "invalid_client_metadata", "error_description": "the body is not JSON"}, status_code=400
        )
    reply = await state.oauth.register(session, _call(state, request, (), body), _base(state, request))
    await session.commit()
    return _reply(reply)


# a person's grants ----------------------------------------------------------------------------
@grants_router.get("/grants", response_model=list[GrantOut], responses={200: list_response(GrantOut)})
async def list_grants(state: StateDep, session: SessionDep, principal: Reader) -> list[GrantOut]:
    """The applications the caller's user has approved and that still hold a usable token."""
    grants = await state.oauth.list_grants(session, principal)
    await session.commit()
    return grants


@grants_router.delete("/grants/{grant_id}", response_model=GrantRevoked)
async def revoke_grant(grant_id: uuid.UUID, state: StateDep, session: SessionDep, principal: Writer) -> GrantRevoked:
    """Revoke one approval: every token it gave stops working at once."""
    count = await state.oauth.revoke_grant(session, principal, grant_id)
    if count == 0:
        raise NotFound(f"grant {grant_id} not found")
    await session.commit()
    return GrantRevoked(grant_id=grant_id, tokens=count)


__all__ = ["grants_router", "router"]
