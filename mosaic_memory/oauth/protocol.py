"""The OAuth 2.0 protocol on Authlib: grants, PKCE, registration and revocation over our tables.

Authlib's server runs synchronously, our storage asynchronously. So each request is served in
three steps: the service loads the rows the request names (its client, the code or token it
presents) into a :class:`Loaded`; Authlib validates and answers with callbacks that read only
from it and stage their writes on the session (``session.add``, attribute changes); the edge
commits. Nothing here waits on the database.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import AuthorizationServer, JsonRequest
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7591.errors import InvalidRedirectURIError
from authlib.oauth2.rfc7636 import CodeChallenge

from mosaic_memory.config import OAuthSettings
from mosaic_memory.models import OAuthClient, OAuthCode, OAuthToken, new_id
from mosaic_memory.oauth.repository import OAuthRepository
from mosaic_memory.owners.schemas import SCOPES

__all__ = [
    "ACCESS_PREFIX",
    "AUTH_METHODS",
    "REFRESH_PREFIX",
    "Grantee",
    "Loaded",
    "OAuthCall",
    "OAuthReply",
    "Server",
    "secret_hash",
]

ACCESS_PREFIX = "mmo_"
REFRESH_PREFIX = "mmr_"
CLIENT_PREFIX = "mmc_"
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
DEFAULT_SCOPES = ("read", "write")


def secret_hash(value: str) -> str:
    """Codes and tokens are 256-bit random: a fast hash is enough, as for API keys."""
    return hashlib.sha256(value.encode()).hexdigest()


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707 §2: the ``resource`` is not one this server issues tokens for."""

    error = "invalid_target"


@dataclass(frozen=True)
class OAuthCall:
    """One HTTP request to an OAuth endpoint, as the edge saw it (no web framework type)."""

    method: str
    url: str
    params: Sequence[tuple[str, str]] = ()  # the query (authorize) or the form body (token, revoke)
    authorization: str | None = None
    json: Any = None

    def first(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)


@dataclass(frozen=True)
class OAuthReply:
    """What to answer: a status, a JSON body (or "" for a redirect) and headers."""

    status: int
    body: Any
    headers: list[tuple[str, str]]

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)


@dataclass(frozen=True)
class Grantee:
    """Who approved: the user through one API key, the scopes granted, the resource, the grant."""

    user_id: uuid.UUID
    api_key_id: uuid.UUID
    scopes: tuple[str, ...]
    resource: str
    grant_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass
class Loaded:
    """The rows one request needs, read before Authlib runs, and what it stages."""

    repo: OAuthRepository
    settings: OAuthSettings
    now: datetime
    issuer: str
    resources: tuple[str, ...]  # this server's resource identifiers; the first is the default
    metadata: dict[str, Any]
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    codes: dict[str, OAuthCode] = field(default_factory=dict)  # the code presented -> its row
    tokens: dict[str, OAuthToken] = field(default_factory=dict)  # a token presented -> its row
    revoked_grants: list[uuid.UUID] = field(default_factory=list)  # to revoke after the reply
    client_problem: str | None = None  # why the client's metadata document cannot be used

    def raise_client_problem(self) -> None:
        """Raise ``invalid_client`` saying why the client's document was refused, if it was."""
        if self.client_problem:
            text = "".join(c for c in self.client_problem if " " <= c <= "~" and c not in '"\\')
            raise InvalidClientError(description=text)


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redirect_uri_problem(uri: str) -> str | None:
    """Why a redirect URI cannot be registered, or None: https, http only to this machine
    (RFC 8252 §7.3), or a private-use scheme of a native app (RFC 8252 §7.1); no fragment."""
    parts = urlsplit(uri)
    if parts.fragment:
        return f"redirect URI {uri} has a fragment"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http":
        return None if _is_loopback(parts.hostname) else f"redirect URI {uri} must use https (or http to loopback)"
    if parts.scheme in ("", "javascript", "data", "file", "vbscript", "about") or "." not in parts.scheme:
        return (
            f"redirect URI {uri} has no acceptable scheme (https, loopback http, or reverse-DNS like com.example.app)"
        )
    return None


def _same_redirect(registered: str, given: str) -> bool:
    """Exact match; for loopback http any port, as a native app picks one at run time (RFC 8252 §7.3)."""
    if registered == given:
        return True
    a, b = urlsplit(registered), urlsplit(given)
    return (
        a.scheme == b.scheme == "http"
        and _is_loopback(a.hostname)
        and a.hostname == b.hostname
        and (a.path, a.query) == (b.path, b.query)
    )


class Client:
    """Authlib's view of a registered client (``ClientMixin``)."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row
        self.meta = row.client_metadata

    @property
    def name(self) -> str:
        return self.row.client_name or self.row.client_id

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.row.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def allowed_scopes(self) -> list[str]:
        registered = str(self.meta.get("scope") or "").split()
        return [s for s in SCOPES if s in registered] if registered else list(SCOPES)

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.allowed_scopes()
        asked = scope.split() if scope else [s for s in DEFAULT_SCOPES if s in allowed] or allowed
        return " ".join(s for s in SCOPES if s in asked and s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(_same_redirect(r, redirect_uri) for r in self.row.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.secret_hash
        return stored is not None and hmac.compare_digest(stored, secret_hash(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return bool(method == self.meta.get("token_endpoint_auth_method", "client_secret_basic"))

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.meta.get("grant_types", ["authorization_code"])


class Code:
    """Authlib's view of a stored authorization code."""

    def __init__(self, row: OAuthCode) -> None:
        self.row = row

    def get_redirect_uri(self) -> str | None:
        return self.row.redirect_uri or None

    def get_scope(self) -> str:
        return " ".join(self.row.scopes)


class Token:
    """Authlib's view of a stored token pair."""

    def __init__(self, row: OAuthToken) -> None:
        self.row = row

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return " ".join(self.row.scopes)


def requested_resource(request: OAuth2Request, loaded: Loaded) -> str:
    """The one resource asked for (RFC 8707), normalised; this server's first one if none."""
    asked = request.payload.datalist.get("resource", [])
    if not asked:
        return loaded.resources[0]
    if len(asked) > 1:
        raise InvalidTargetError("ask for one resource per authorization")
    resource = asked[0].rstrip("/")
    if resource not in loaded.resources:
        raise InvalidTargetError(f"tokens are issued only for {' or '.join(loaded.resources)}")
    return str(resource)


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    """Authorization code, bound to its client, redirect URI, PKCE challenge and resource."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    server: Server

    @property
    def loaded(self) -> Loaded:
        return self.server.loaded

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        try:
            self.request.resource = requested_resource(self.request, self.loaded)
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        grantee: Grantee = request.user
        data = request.payload.data
        self.loaded.repo.add(
            OAuthCode(
                code_hash=secret_hash(code),
                grant_id=grantee.grant_id,
                client_id=request.client.get_client_id(),
                user_id=grantee.user_id,
                api_key_id=grantee.api_key_id,
                redirect_uri=data.get("redirect_uri") or "",
                scopes=list(grantee.scopes),
                resource=grantee.resource,
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                created_at=self.loaded.now,
                expires_at=self.loaded.now + timedelta(seconds=self.loaded.settings.code_ttl_seconds),
            )
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        row = self.loaded.codes.get(code)
        if row is None or row.client_id != client.get_client_id() or row.used_at is not None:
            return None
        return Code(row) if row.expires_at > self.loaded.now else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        authorization_code.row.used_at = self.loaded.now  # kept: a replay then revokes the grant

    def authenticate_user(self, authorization_code: Code) -> Grantee:
        row = authorization_code.row
        return Grantee(row.user_id, row.api_key_id, tuple(row.scopes), row.resource, row.grant_id)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        code: Code = self.request.authorization_code
        _check_same_resource(self.request, code.row.resource)


class RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    """Refresh, with rotation: each refresh token is used once (OAuth 2.1 for public clients)."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: Server

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        loaded = self.server.loaded
        row = loaded.tokens.get(refresh_token)
        if row is None or row.revoked_at is not None or row.refresh_hash != secret_hash(refresh_token):
            return None
        return Token(row) if row.refresh_expires_at and row.refresh_expires_at > loaded.now else None

    def authenticate_user(self, refresh_token: Token) -> Grantee:
        row = refresh_token.row
        return Grantee(row.user_id, row.api_key_id, tuple(row.scopes), row.resource, row.grant_id)

    def revoke_old_credential(self, refresh_token: Token) -> None:
        refresh_token.row.revoked_at = self.server.loaded.now

    def validate_token_request(self) -> None:
        super().validate_token_request()
        token: Token = self.request.refresh_token
        _check_same_resource(self.request, token.row.resource)


def _check_same_resource(request: OAuth2Request, bound: str) -> None:
    """A token request may repeat the authorization's resource, never name another (RFC 8707 §2.2)."""
    for asked in request.payload.datalist.get("resource", []):
        if asked.rstrip("/") != bound:
            raise InvalidTargetError(f"this grant is for {bound}")


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE required for every client, S256 only (plain is refused)."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge and code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: Code) -> str:
        return authorization_code.row.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: Code) -> str:
        return authorization_code.row.code_challenge_method


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009: revoking either token of a pair revokes the whole grant."""

    CLIENT_AUTH_METHODS = AUTH_METHODS
    server: Server

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        row = self.server.loaded.tokens.get(token_string)
        return None if row is None else Token(row)

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        token.row.revoked_at = self.server.loaded.now
        self.server.loaded.revoked_grants.append(token.row.grant_id)


class Registration(ClientRegistrationEndpoint):  # type: ignore[misc]
    """RFC 7591 dynamic registration; public clients (``none``) get no secret."""

    server: Server

    def authenticate_token(self, request: JsonRequest) -> bool:
        return self.server.loaded.settings.open_registration

    def get_server_metadata(self) -> dict[str, Any]:
        return self.server.loaded.metadata

    def generate_client_id(self, request: JsonRequest) -> str:
        return CLIENT_PREFIX + secrets.token_urlsafe(24)

    def generate_client_secret(self, request: JsonRequest) -> str | None:
        if request.payload.data.get("token_endpoint_auth_method") == "none":
            return None
        return secrets.token_urlsafe(32)

    def save_client(self, client_info: dict[str, Any], client_metadata: dict[str, Any], request: Any) -> OAuthClient:
        uris = client_metadata.get("redirect_uris") or []
        if not uris:
            raise InvalidRedirectURIError("register at least one redirect URI")
        for uri in uris:
            problem = redirect_uri_problem(uri)
            if problem:
                raise InvalidRedirectURIError(problem)
        metadata = {"token_endpoint_auth_method": "client_secret_basic", **client_metadata}
        secret = client_info.get("client_secret")
        row = OAuthClient(
            client_id=client_info["client_id"],
            secret_hash=secret_hash(secret) if secret else None,
            client_name=str(client_metadata.get("client_name") or "")[:200],
            redirect_uris=list(uris),
            client_metadata=metadata,
            created_at=self.server.loaded.now,
        )
        self.server.loaded.repo.add(row)
        return row


class Server(AuthorizationServer):  # type: ignore[misc]
    """One request's authorization server: Authlib's, over the rows in ``loaded``."""

    def __init__(self, loaded: Loaded) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.loaded = loaded
        self.register_grant(CodeGrant, [S256Only(required=True)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Registration(self))
        self.register_token_generator("default", self._generate_token)

    def query_client(self, client_id: str) -> Client | None:
        row = self.loaded.clients.get(client_id)
        return None if row is None else Client(row)

    def _generate_token(
        self,
        grant_type: str,
        client: Client,
        user: Grantee | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": ACCESS_PREFIX + secrets.token_urlsafe(32),
            "expires_in": self.loaded.settings.access_token_ttl_seconds,
            "scope": scope or "",
        }
        if include_refresh_token:
            token["refresh_token"] = REFRESH_PREFIX + secrets.token_urlsafe(32)
        return token

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        grantee: Grantee = request.user
        now, settings = self.loaded.now, self.loaded.settings
        refresh = token.get("refresh_token")
        self.loaded.repo.add(
            OAuthToken(
                id=new_id(),
                grant_id=grantee.grant_id,
                client_id=request.client.get_client_id(),
                user_id=grantee.user_id,
                api_key_id=grantee.api_key_id,
                access_hash=secret_hash(token["access_token"]),
                refresh_hash=secret_hash(refresh) if refresh else None,
                scopes=str(token.get("scope") or "").split(),
                resource=grantee.resource,
                issued_at=now,
                access_expires_at=now + timedelta(seconds=settings.access_token_ttl_seconds),
                refresh_expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds) if refresh else None,
            )
        )

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def create_json_request(self, request: JsonRequest) -> JsonRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: Collection[tuple[str, str]]) -> OAuthReply:
        return OAuthReply(status, body, list(headers))


class _Payload(BasicOAuth2Payload):  # type: ignore[misc]
    def __init__(self, params: Sequence[tuple[str, str]]) -> None:
        data: dict[str, str] = {}
        for key, value in params:
            data.setdefault(key, value)
        super().__init__(data)
        datalist: dict[str, list[str]] = {}
        for key, value in params:
            datalist.setdefault(key, []).append(value)
        self._datalist = datalist


class Request(OAuth2Request):  # type: ignore[misc]
    """An :class:`OAuthCall` as Authlib reads it."""

    def __init__(self, call: OAuthCall) -> None:
        super().__init__(call.method, call.url, headers={"Authorization": call.authorization or ""})
        self.payload = _Payload(call.params)
        self._params = dict(self.payload.data)
        self.resource: str | None = None

    @property
    def args(self) -> dict[str, str]:
        return self._params

    @property
    def form(self) -> dict[str, str]:
        return self._params


class JsonCall(JsonRequest):  # type: ignore[misc]
    def __init__(self, call: OAuthCall) -> None:
        super().__init__(call.method, call.url, headers={"Authorization": call.authorization or ""})
        self.payload = _JsonPayload(call.json)


class _JsonPayload:
    def __init__(self, data: Any) -> None:
        self.data = data if isinstance(data, dict) else {}
