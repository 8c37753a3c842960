"""OAuth 2.0 for hosted MCP clients: this service is its own authorization server.

What it guarantees:

- discovery: Protected Resource Metadata (RFC 9728) names this server as the authorization
  server of its resources (``<base>`` for the REST API, ``<base>/mcp`` for MCP); Authorization
  Server Metadata (RFC 8414) lists the endpoints;
- clients register themselves (RFC 7591) or are known by the https URL of their Client ID
  Metadata Document (``client_documents.py``); a client gets nothing until a person approves it on
  the consent page with one of their API keys (or a browser session made with one);
- authorization code with PKCE, S256 only, for every client; codes live minutes and are used
  once (a replay revokes what the code gave);
- tokens are bound to the resource asked for (RFC 8707): a token is accepted only by this server
  under the identifiers it was issued for; access tokens are short-lived, refresh tokens rotate;
- a token's principal is the approving key's (its user, teams and agent binding), its scopes
  the granted ones that the key still has; revoking the key, or the token (RFC 7009), ends it;
- codes, tokens and client secrets are stored as SHA-256 hashes only.

Raises AuthenticationFailed (401) for tokens that are unknown, expired, revoked or for another
resource. Never commits: the edge does, also after an error reply, which may have revoked a grant.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.config import Settings
from mosaic_memory.errors import AuthenticationFailed
from mosaic_memory.models import OAuthClient, utc_now
from mosaic_memory.oauth.client_documents import ClientDocumentError, fetch_client_document, is_document_url
from mosaic_memory.oauth.protocol import (
    ACCESS_PREFIX,
    AUTH_METHODS,
    Client,
    CodeGrant,
    Grantee,
    JsonCall,
    Loaded,
    OAuthCall,
    OAuthReply,
    Request,
    Server,
    redirect_uri_problem,
    secret_hash,
)
from mosaic_memory.oauth.repository import OAuthRepository
from mosaic_memory.oauth.schemas import GrantOut
from mosaic_memory.owners.schemas import SCOPES, Principal
from mosaic_memory.owners.service import OwnerService

__all__ = ["Authorization", "OAuthService", "resources_of"]

SESSION_SECRET_KEY = "web_session_secret"


def resources_of(base: str) -> tuple[str, str]:
    """This server's resource identifiers at ``base``: the whole service, and its MCP endpoint."""
    return base, f"{base}/mcp"


@dataclass
class Authorization:
    """A validated authorization request, waiting for the person's decision."""

    server: Server
    grant: CodeGrant
    client_name: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    resource: str

    @property
    def redirect_host(self) -> str:
        parts = urlsplit(self.redirect_uri)
        return parts.netloc or f"{parts.scheme}:"


class OAuthService:
    """The authorization server and the resolution of its tokens (see the module docstring)."""

    def __init__(self, *, settings: Settings, owners: OwnerService, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.owners = owners
        self.clock = clock
        self._session_secret: bytes | None = None

    # discovery ---------------------------------------------------------------------------------
    def server_metadata(self, base: str) -> dict[str, Any]:
        """RFC 8414 Authorization Server Metadata for the issuer ``base``."""
        metadata: dict[str, Any] = {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "client_id_metadata_document_supported": self.settings.oauth.client_metadata_documents,
        }
        if self.settings.oauth.open_registration:
            metadata["registration_endpoint"] = f"{base}/oauth/register"
        return metadata

    def resource_metadata(self, base: str, resource: str) -> dict[str, Any]:
        """RFC 9728 Protected Resource Metadata for ``resource`` (one of :func:`resources_of`)."""
        return {
            "resource": resource,
            "authorization_servers": [base],
            "scopes_supported": list(SCOPES),
            "bearer_methods_supported": ["header"],
            "resource_name": "Mosaic Memory",
        }

    # the protocol -------------------------------------------------------------------------------
    async def _load(self, session: AsyncSession, call: OAuthCall, base: str) -> Loaded:
        """Read the rows this call names, before Authlib runs (see ``protocol``)."""
        repo = OAuthRepository(session)
        loaded = Loaded(
            repo=repo,
            settings=self.settings.oauth,
            now=self.clock(),
            issuer=base,
            resources=resources_of(base),
            metadata=self.server_metadata(base),
        )
        basic_id, _ = extract_basic_authorization({"Authorization": call.authorization or ""})
        client_id = call.first("client_id") or basic_id
        if client_id and (client := await self._client(repo, client_id, loaded)) is not None:
            loaded.clients[client.client_id] = client
        code = call.first("code")
        if code and call.first("grant_type") == "authorization_code":
            row = await repo.code(secret_hash(code))
            if row is not None and row.used_at is not None:
                # RFC 6749 §4.1.2: a code used twice revokes what it gave; the request fails.
                await repo.revoke_grant(row.grant_id, loaded.now)
            elif row is not None and await self._key_alive(session, row.api_key_id):
                loaded.codes[code] = row
        for name in ("refresh_token", "token"):
            presented = call.first(name)
            if presented:
                hashed = secret_hash(presented)
                row_t = await repo.token_by_refresh(hashed)
                if row_t is None and name == "token":
                    row_t = await repo.token_by_access(hashed)
                # a grant whose approving key was revoked cannot be refreshed (it can be revoked)
                if row_t is not None and (name == "token" or await self._key_alive(session, row_t.api_key_id)):
                    loaded.tokens[presented] = row_t
        return loaded

    async def _key_alive(self, session: AsyncSession, key_id: uuid.UUID) -> bool:
        try:
            await self.owners.principal_of_key(session, key_id)
        except AuthenticationFailed:
            return False
        return True

    async def _client(self, repo: OAuthRepository, client_id: str, loaded: Loaded) -> OAuthClient | None:
        """The registered client, or the one a Client ID Metadata Document describes (fetched when
        not known or older than ``client_metadata_ttl_seconds``; why it failed in ``loaded``)."""
        settings = self.settings.oauth
        row = await repo.client(client_id)
        if not (settings.client_metadata_documents and is_document_url(client_id)):
            return row
        fetched = row.document_fetched_at if row is not None else None
        if fetched is not None and loaded.now - fetched < timedelta(seconds=settings.client_metadata_ttl_seconds):
            return row
        try:
            metadata = await fetch_client_document(client_id, settings)
            uris = [str(u) for u in metadata["redirect_uris"]]
            problem = next(filter(None, map(redirect_uri_problem, uris)), None)
            if problem:
                raise ClientDocumentError(problem)
        except ClientDocumentError as exc:
            loaded.client_problem = str(exc)
            return None
        name = str(metadata.get("client_name") or urlsplit(client_id).hostname)[:200]
        return await repo.put_document_client(client_id, name, uris, metadata, loaded.now)

    @staticmethod
    def _error(server: Server, error: OAuth2Error) -> OAuthReply:
        reply = server.handle_error_response(None, error)
        assert isinstance(reply, OAuthReply)
        return reply

    @staticmethod
    def _to_client(server: Server, reply: OAuthReply) -> OAuthReply:
        """A redirect back to the client names this issuer (RFC 9207), so a client talking to
        several authorization servers cannot be sent one's code as another's (mix-up)."""
        if reply.location is None:
            return reply
        location = add_params_to_uri(reply.location, [("iss", server.loaded.issuer)])
        return OAuthReply(reply.status, reply.body, [("Location", location)])

    async def authorization(self, session: AsyncSession, call: OAuthCall, base: str) -> Authorization | OAuthReply:
        """Validate an authorization request (RFC 6749 §4.1.1 with PKCE and ``resource``).

        Returns what the consent page shows, or the error reply: a redirect to the client once
        its redirect URI is known to be registered, else a 400 to show the person."""
        server = Server(await self._load(session, call, base))
        try:
            server.loaded.raise_client_problem()
            request = Request(call)
            grant = server.get_consent_grant(request)
        except OAuth2Error as error:
            return self._to_client(server, self._error(server, error))
        client: Client = request.client
        return Authorization(
            server=server,
            grant=grant,
            client_name=client.name,
            client_id=client.get_client_id(),
            redirect_uri=grant.redirect_uri,
            scopes=tuple(str(request.scope or "").split()),
            resource=str(request.resource),
        )

    def decide(self, authorization: Authorization, principal: Principal | None) -> OAuthReply:
        """The person's answer: approve as ``principal`` (who signed in with an API key), or deny
        (None). Approval grants the scopes asked that the key has; none of them is a denial.
        Returns the redirect to the client, with a code or ``error=access_denied``."""
        grantee = None
        if principal is not None and principal.key_id is not None:
            granted = tuple(s for s in authorization.scopes if s in principal.scopes)
            if granted:
                grantee = Grantee(principal.user.id, principal.key_id, granted, authorization.resource)
        server, grant = authorization.server, authorization.grant
        reply = server.create_authorization_response(request=grant.request, grant_user=grantee, grant=grant)
        assert isinstance(reply, OAuthReply)
        return self._to_client(server, reply)

    async def token(self, session: AsyncSession, call: OAuthCall, base: str) -> OAuthReply:
        """The token endpoint: ``authorization_code`` (with the PKCE verifier) and ``refresh_token``."""
        server = Server(await self._load(session, call, base))
        try:
            server.loaded.raise_client_problem()
            reply = server.create_token_response(Request(call))
        except OAuth2Error as error:
            return self._error(server, error)
        assert isinstance(reply, OAuthReply)
        return reply

    async def revoke(self, session: AsyncSession, call: OAuthCall, base: str) -> OAuthReply:
        """RFC 7009: revoke a token (and the grant it belongs to). An unknown token answers 200 too."""
        loaded = await self._load(session, call, base)
        server = Server(loaded)
        try:
            reply = server.create_endpoint_response("revocation", Request(call))
        except OAuth2Error as error:
            return self._error(server, error)
        for grant_id in loaded.revoked_grants:
            await loaded.repo.revoke_grant(grant_id, loaded.now)
        assert isinstance(reply, OAuthReply)
        return reply

    async def register(self, session: AsyncSession, call: OAuthCall, base: str) -> OAuthReply:
        """RFC 7591 dynamic client registration; 201 with the client's id (and secret, if any)."""
        server = Server(await self._load(session, OAuthCall(call.method, call.url, json=call.json), base))
        try:
            reply = server.create_endpoint_response("client_registration", JsonCall(call))
        except OAuth2Error as error:
            return self._error(server, error)
        assert isinstance(reply, OAuthReply)
        if isinstance(reply.body, dict) and reply.body.get("client_secret") is None:
            reply.body.pop("client_secret", None)
            reply.body.pop("client_secret_expires_at", None)
        return reply

    # the resource server ------------------------------------------------------------------------
    async def authenticate(self, session: AsyncSession, token: str, audiences: Collection[str]) -> Principal:
        """Resolve a bearer credential: an OAuth access token for one of ``audiences`` (this
        server's resource identifiers as the request reached it), or else an API key."""
        if not token.startswith(ACCESS_PREFIX):
            return await self.owners.authenticate(session, token)
        if not self.settings.oauth.enabled:
            raise AuthenticationFailed("OAuth is turned off on this service; use an API key")
        row = await OAuthRepository(session).token_by_access(secret_hash(token))
        if row is None:
            raise AuthenticationFailed("the access token is not valid")
        if row.revoked_at is not None:
            raise AuthenticationFailed("the access token has been revoked")
        if row.access_expires_at <= self.clock():
            raise AuthenticationFailed("the access token has expired; refresh it")
        if row.resource not in audiences:
            raise AuthenticationFailed(f"the access token was issued for {row.resource}, not for this server")
        return await self.owners.principal_of_key(session, row.api_key_id, row.scopes)

    # a person's own grants ----------------------------------------------------------------------
    async def list_grants(self, session: AsyncSession, principal: Principal) -> list[GrantOut]:
        """The caller's user's live grants (one per approval), newest first."""
        seen: dict[uuid.UUID, GrantOut] = {}
        for token, client in await OAuthRepository(session).live_tokens(principal.user.id, self.clock()):
            if token.grant_id not in seen:
                seen[token.grant_id] = GrantOut(
                    grant_id=token.grant_id,
                    client_id=client.client_id,
                    client_name=client.client_name,
                    scopes=list(token.scopes),
                    resource=token.resource,
                    issued_at=token.issued_at,
                    access_expires_at=token.access_expires_at,
                    refresh_expires_at=token.refresh_expires_at,
                )
        return list(seen.values())

    async def revoke_grant(self, session: AsyncSession, principal: Principal, grant_id: uuid.UUID) -> int:
        """Revoke one of the caller's user's grants; returns how many tokens it ended (0: none such)."""
        return await OAuthRepository(session).revoke_grant(grant_id, self.clock(), user_id=principal.user.id)

    # browser sessions ---------------------------------------------------------------------------
    async def session_secret(self, session: AsyncSession) -> bytes:
        """The key that signs browser session and CSRF cookies: ``web.session_secret``, or one
        generated once and kept in the database, so every replica signs alike."""
        if self._session_secret is None:
            configured = self.settings.web.session_secret
            if configured is not None:
                self._session_secret = configured.get_secret_value().encode()
            else:
                repo = OAuthRepository(session)
                stored = await repo.meta(SESSION_SECRET_KEY)
                if stored is None:
                    stored = await repo.put_meta_once(SESSION_SECRET_KEY, secrets.token_hex(32))
                self._session_secret = str(stored).encode()
        return self._session_secret
