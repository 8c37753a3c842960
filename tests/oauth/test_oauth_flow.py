"""OAuth for hosted MCP clients, end to end against a real service process.

A client does what a hosted MCP client does: it meets a 401 on /mcp, follows the challenge to the
Protected Resource Metadata, then the authorization server's metadata, registers itself, sends the
person to the consent page (here: the form posted with an API key, as a browser would), exchanges
the code with its PKCE verifier (Authlib's httpx client) and calls MCP tools (the MCP SDK client)
and REST routes with the token.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from sqlalchemy import text

from mosaic_memory.container import AppState
from mosaic_memory.oauth.protocol import secret_hash
from tests.conftest import UserFactory, auth
from tests.mcp.conftest import error_text, http_client, payload
from tests.oauth.conftest import Documents

REDIRECT = "http://127.0.0.1:9/callback"  # never contacted: the test reads the redirect itself
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Discovered:
    base: str
    resource: str
    authorize: str
    token: str
    register: str
    revoke: str


@pytest.fixture(scope="module")
async def discovered(service_url: str) -> Discovered:
    """Discovery as a hosted client does it, starting from a bare 401 on /mcp."""
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await http.post(f"{service_url}/mcp", json={})
        assert refused.status_code == 401
        challenge = refused.headers["www-authenticate"]
        match = re.fullmatch(r'Bearer resource_metadata="([^"]+)"', challenge)
        assert match, challenge
        assert match.group(1) == f"{service_url}/.well-known/oauth-protected-resource/mcp"
        prm = (await http.get(match.group(1))).json()
        assert prm["resource"] == f"{service_url}/mcp"
        assert prm["scopes_supported"] == ["read", "write", "admin"]
        (issuer,) = prm["authorization_servers"]
        meta = (await http.get(f"{issuer}/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == issuer == service_url
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token"]
    return Discovered(
        base=issuer,
        resource=prm["resource"],
        authorize=meta["authorization_endpoint"],
        token=meta["token_endpoint"],
        register=meta["registration_endpoint"],
        revoke=meta["revocation_endpoint"],
    )


async def register(d: Discovered, **extra: Any) -> dict[str, Any]:
    body = {
        "client_name": "Hosted Test Client",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **extra,
    }
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(d.register, json=body)
    assert r.status_code == 201, r.text
    client: dict[str, Any] = r.json()
    return client


@dataclass
class Browser:
    """The person's browser: keeps cookies, reads the consent page, posts its form."""

    http: httpx.AsyncClient

    async def open(self, url: str) -> tuple[httpx.Response, str | None]:
        page = await self.http.get(url)
        match = CSRF_INPUT.search(page.text)
        return page, match.group(1) if match else None

    async def approve(self, url: str, api_key: str | None, *, decision: str = "approve") -> httpx.Response:
        page, csrf = await self.open(url)
        assert page.status_code == 200, page.text
        form = {"csrf_token": csrf or "", "decision": decision}
        if api_key is not None:
            form["api_key"] = api_key
        return await self.http.post(url, data=form)


@asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as http:
        yield Browser(http)


def oauth_client(d: Discovered, client_id: str, scope: str = "read write") -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=client_id,
        scope=scope,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        timeout=30,
    )


@dataclass
class Authorized:
    client: AsyncOAuth2Client
    verifier: str
    location: str  # the redirect back to the client, with the code


async def authorize(
    d: Discovered, api_key: str, *, scope: str = "read write", client_id: str | None = None
) -> Authorized:
    """Register (unless given a client), send the person to the consent page, approve with ``api_key``."""
    client_id = client_id or (await register(d))["client_id"]
    client = oauth_client(d, client_id, scope)
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(d.authorize, code_verifier=verifier, resource=d.resource)
    async with browser() as b:
        done = await b.approve(url, api_key)
    assert done.status_code == 302, done.text
    location = done.headers["location"]
    assert location.startswith(REDIRECT + "?")
    assert parse_qs(urlsplit(location).query)["state"] == [state]
    return Authorized(client, verifier, location)


async def exchange(d: Discovered, a: Authorized, **extra: str) -> dict[str, Any]:
    token: dict[str, Any] = await a.client.fetch_token(
        d.token, authorization_response=a.location, code_verifier=a.verifier, **extra
    )
    return token


async def token_for(d: Discovered, api_key: str, scope: str = "read write") -> dict[str, Any]:
    a = await authorize(d, api_key, scope=scope)
    try:
        return await exchange(d, a, resource=d.resource)
    finally:
        await a.client.aclose()


async def redeem_and_ask_who(
    d: Discovered, service_url: str, oauth: AsyncOAuth2Client, approved: httpx.Response, verifier: str
) -> str:
    """Exchange the code of an approval's redirect, then ask the service whose the token is."""
    assert approved.status_code == 302, approved.text
    token = await oauth.fetch_token(
        d.token, authorization_response=approved.headers["location"], code_verifier=verifier
    )
    await oauth.aclose()
    async with httpx.AsyncClient(timeout=30) as http:
        me = await http.get(f"{service_url}/v1/me", headers=auth(token["access_token"]))
    user: str = me.json()["user"]
    return user


def key_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def test_the_whole_flow_then_mcp_tools_and_rest_with_the_token(
    discovered: Discovered, service_url: str, make_user: UserFactory
) -> None:
    name, h = await make_user("alice")
    client = await register(discovered)
    assert client["client_id"].startswith("mmc_") and "client_secret" not in client

    oauth = oauth_client(discovered, client["client_id"])
    verifier = secrets.token_urlsafe(48)
    url, state = oauth.create_authorization_url(
        discovered.authorize, code_verifier=verifier, resource=discovered.resource
    )
    async with browser() as b:
        page, csrf = await b.open(url)
        assert page.status_code == 200 and csrf
        # the person sees who asks, where it goes back to, and what for
        assert "Hosted Test Client" in page.text and "127.0.0.1:9" in page.text
        assert "<strong>read</strong>" in page.text and "<strong>write</strong>" in page.text
        assert "admin" not in page.text.split("It asks to")[1].split("For</dt>")[0]
        assert 'type="password"' in page.text and "HttpOnly" in page.headers["set-cookie"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]  # no clickjacking
        approved = await b.http.post(url, data={"csrf_token": csrf, "api_key": key_of(h), "decision": "approve"})
    assert approved.status_code == 302
    location = approved.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT) and query["state"] == [state] and query["code"]
    assert query["iss"] == [discovered.base]  # RFC 9207: which server the code comes from

    token = await oauth.fetch_token(
        discovered.token, authorization_response=location, code_verifier=verifier, resource=discovered.resource
    )
    await oauth.aclose()
    assert token["token_type"].lower() == "bearer" and token["expires_in"] == 3600
    assert token["access_token"].startswith("mmo_") and token["refresh_token"].startswith("mmr_")
    assert token["scope"] == "read write"

    # MCP, through the SDK's own client, with the token as the bearer
    async with http_client(service_url, token["access_token"]) as mcp:
        stored = payload(await mcp.call_tool("remember", {"content": "Alice reviews pull requests on Fridays"}))
        found = payload(await mcp.call_tool("recall", {"query": "when does she review PRs?", "k": 3}))
    assert found["hits"][0]["id"] == stored["id"]
    # REST, the same principal as the key: the same user, the insight stored through MCP
    async with httpx.AsyncClient(base_url=service_url, headers=auth(token["access_token"]), timeout=30) as rest:
        me = (await rest.get("/v1/me")).json()
        assert me["user"] == name and me["scopes"] == ["read", "write"]
        insight = await rest.get(f"/v1/insights/{stored['id']}")
        assert insight.status_code == 200 and insight.json()["content"] == "Alice reviews pull requests on Fridays"
        # and what the key sees of it
        by_key = await rest.get(f"/v1/insights/{stored['id']}", headers=h)
        assert by_key.json() == insight.json()


async def test_a_wrong_verifier_is_refused(discovered: Discovered, make_user: UserFactory) -> None:
    _, h = await make_user()
    a = await authorize(discovered, key_of(h))
    with pytest.raises(OAuthError) as refused:
        await a.client.fetch_token(
            discovered.token, authorization_response=a.location, code_verifier=secrets.token_urlsafe(48)
        )
    assert refused.value.error == "invalid_grant"
    # without any verifier, too
    with pytest.raises(OAuthError) as missing:
        await a.client.fetch_token(discovered.token, authorization_response=a.location)
    assert missing.value.error == "invalid_request"
    await a.client.aclose()


async def test_pkce_s256_is_required_at_the_authorization(discovered: Discovered) -> None:
    client = await register(discovered)
    base = f"{discovered.authorize}?response_type=code&client_id={client['client_id']}&redirect_uri={REDIRECT}&state=s1"
    async with browser() as b:
        without = await b.http.get(base)
        plain = await b.http.get(f"{base}&code_challenge={'a' * 43}&code_challenge_method=plain")
    for refused in (without, plain):
        assert refused.status_code == 302
        query = parse_qs(urlsplit(refused.headers["location"]).query)
        assert query["error"] == ["invalid_request"] and query["state"] == ["s1"]


async def test_a_token_for_another_resource_is_refused(
    discovered: Discovered, service_url: str, make_user: UserFactory
) -> None:
    _, h = await make_user()
    client = await register(discovered)
    oauth = oauth_client(discovered, client["client_id"])
    url, _ = oauth.create_authorization_url(
        discovered.authorize, code_verifier=secrets.token_urlsafe(48), resource="https://other.example/mcp"
    )
    async with browser() as b:
        elsewhere = await b.http.get(url)
    assert elsewhere.status_code == 302
    assert parse_qs(urlsplit(elsewhere.headers["location"]).query)["error"] == ["invalid_target"]

    # a code for /mcp cannot be exchanged for a token of another resource
    a = await authorize(discovered, key_of(h))
    with pytest.raises(OAuthError) as refused:
        await exchange(discovered, a, resource="https://other.example/mcp")
    assert refused.value.error == "invalid_target"
    token = await exchange(discovered, a)
    await a.client.aclose()

    # the server reached under another name is another resource: the token is not for it
    port = urlsplit(service_url).port
    async with httpx.AsyncClient(base_url=service_url, headers=auth(token["access_token"]), timeout=30) as http:
        assert (await http.get("/v1/me")).status_code == 200
        other = await http.get("/v1/me", headers={"Host": f"localhost:{port}"})
    assert other.status_code == 401
    assert other.json()["detail"] == f"the access token was issued for {discovered.resource}, not for this server"
    assert (
        f'resource_metadata="http://localhost:{port}/.well-known/oauth-protected-resource"'
        in (other.headers["www-authenticate"])
    )


async def test_a_revoked_token_is_refused_everywhere(
    discovered: Discovered, service_url: str, make_user: UserFactory
) -> None:
    _, h = await make_user()
    a = await authorize(discovered, key_of(h))
    token = await exchange(discovered, a)
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{service_url}/v1/me", headers=auth(token["access_token"]))).status_code == 200
        revoked = await http.post(
            discovered.revoke, data={"token": token["access_token"], "client_id": a.client.client_id}
        )
        assert revoked.status_code == 200
        rest = await http.get(f"{service_url}/v1/me", headers=auth(token["access_token"]))
        mcp = await http.post(f"{service_url}/mcp", json={}, headers=auth(token["access_token"]))
    assert rest.status_code == 401 and rest.json()["detail"] == "the access token has been revoked"
    assert mcp.status_code == 401 and 'error="invalid_token"' in mcp.headers["www-authenticate"]
    # the grant went with it: its refresh token is dead too
    with pytest.raises(OAuthError) as refresh:
        await a.client.refresh_token(discovered.token, refresh_token=token["refresh_token"])
    assert refresh.value.error == "invalid_grant"
    await a.client.aclose()


async def test_an_expired_token_is_refused_and_refreshing_gives_a_new_one(
    discovered: Discovered, service_url: str, make_user: UserFactory, state: AppState
) -> None:
    _, h = await make_user()
    a = await authorize(discovered, key_of(h))
    token = await exchange(discovered, a)
    # The service runs in another process, whose clock the test cannot move: the token's end is
    # moved to the past instead, as an hour of waiting would leave it.
    async with state.sessionmaker() as session:
        moved = await session.execute(
            text("UPDATE oauth_tokens SET access_expires_at = now() - interval '1 second' WHERE access_hash = :h"),
            {"h": secret_hash(token["access_token"])},
        )
        await session.commit()
    assert moved.rowcount == 1  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=service_url, timeout=30) as http:
        expired = await http.get("/v1/me", headers=auth(token["access_token"]))
        assert expired.status_code == 401 and expired.json()["detail"] == "the access token has expired; refresh it"
        fresh = await a.client.refresh_token(discovered.token, refresh_token=token["refresh_token"])
        assert fresh["access_token"] != token["access_token"] and fresh["refresh_token"] != token["refresh_token"]
        assert (await http.get("/v1/me", headers=auth(fresh["access_token"]))).status_code == 200
    # a refresh token is used once
    with pytest.raises(OAuthError) as again:
        await a.client.refresh_token(discovered.token, refresh_token=token["refresh_token"])
    assert again.value.error == "invalid_grant"
    await a.client.aclose()


async def test_a_token_never_shows_another_owners_memory(
    discovered: Discovered, service_url: str, make_user: UserFactory, http: httpx.AsyncClient
) -> None:
    _, alice = await make_user("alice")
    _, bob = await make_user("bob")
    secret = await http.post("/v1/insights", json={"content": "Bob's locker code is behind the poster"}, headers=bob)
    assert secret.status_code == 201
    token = await token_for(discovered, key_of(alice))
    async with http_client(service_url, token["access_token"]) as mcp:
        found = payload(await mcp.call_tool("recall", {"query": "locker code poster", "k": 10}))
        forget = await mcp.call_tool("forget", {"id": secret.json()["id"]})
    assert secret.json()["id"] not in [hit["id"] for hit in found["hits"]]
    assert "InsightNotFound" in error_text(forget)
    async with httpx.AsyncClient(base_url=service_url, headers=auth(token["access_token"]), timeout=30) as rest:
        assert (await rest.get(f"/v1/insights/{secret.json()['id']}")).status_code == 404
        search = (await rest.post("/v1/search", json={"query": "locker code poster", "k": 10})).json()
    assert secret.json()["id"] not in [hit["id"] for hit in search["hits"]]
    assert (await http.get(f"/v1/insights/{secret.json()['id']}", headers=bob)).status_code == 200


async def test_a_form_post_without_the_csrf_token_is_refused(discovered: Discovered, make_user: UserFactory) -> None:
    _, h = await make_user()
    client = await register(discovered)
    url, _ = oauth_client(discovered, client["client_id"]).create_authorization_url(
        discovered.authorize, code_verifier=secrets.token_urlsafe(48), resource=discovered.resource
    )
    async with browser() as b:
        _, csrf = await b.open(url)
        assert csrf
        missing = await b.http.post(url, data={"api_key": key_of(h), "decision": "approve"})
        forged = await b.http.post(url, data={"csrf_token": "x" + csrf, "api_key": key_of(h), "decision": "approve"})
    # a token lifted from the page is worthless without the browser's own signed cookie
    async with browser() as other:
        cookieless = await other.http.post(url, data={"csrf_token": csrf, "api_key": key_of(h), "decision": "approve"})
    for refused in (missing, forged, cookieless):
        assert refused.status_code == 403 and "location" not in refused.headers
        assert key_of(h) not in refused.text


async def test_a_wrong_key_is_not_echoed_and_deny_tells_the_client(discovered: Discovered) -> None:
    client = await register(discovered)
    url, state = oauth_client(discovered, client["client_id"]).create_authorization_url(
        discovered.authorize, code_verifier=secrets.token_urlsafe(48), resource=discovered.resource
    )
    wrong = f"mm_deadbeef_{uuid.uuid4().hex}"
    async with browser() as b:
        refused = await b.approve(url, wrong)
        assert refused.status_code == 401 and "That API key is not valid." in refused.text
        assert wrong not in refused.text and "deadbeef" not in refused.text
        denied = await b.approve(url, None, decision="deny")
    assert denied.status_code == 302
    query = parse_qs(urlsplit(denied.headers["location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == [state] and "code" not in query


async def test_the_session_signs_the_person_in_for_the_next_approval(
    discovered: Discovered, service_url: str, make_user: UserFactory
) -> None:
    name, h = await make_user("carol")
    client = await register(discovered)
    oauth = oauth_client(discovered, client["client_id"])
    async with browser() as b:
        first, _ = oauth.create_authorization_url(discovered.authorize, code_verifier=secrets.token_urlsafe(48))
        assert (await b.approve(first, key_of(h))).status_code == 302
        verifier = secrets.token_urlsafe(48)
        second, _ = oauth.create_authorization_url(discovered.authorize, code_verifier=verifier)
        page, _ = await b.open(second)
        assert f"Signed in as <strong>{name}</strong>" in page.text
        approved = await b.approve(second, None)
    assert await redeem_and_ask_who(discovered, service_url, oauth, approved, verifier) == name


async def test_scopes_are_what_the_key_has_and_revoking_the_key_ends_the_token(
    discovered: Discovered,
    service_url: str,
    make_user: UserFactory,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
) -> None:
    name, h = await make_user()
    created = await http.post("/v1/admin/keys", json={"user": name, "scopes": ["read"]}, headers=admin_headers)
    read_only = created.json()["api_key"]
    a = await authorize(discovered, read_only)
    token = await exchange(discovered, a)
    assert token["scope"] == "read"
    async with httpx.AsyncClient(base_url=service_url, headers=auth(token["access_token"]), timeout=30) as rest:
        assert (await rest.get("/v1/me")).json()["scopes"] == ["read"]
        write = await rest.post("/v1/insights", json={"content": "should not be stored"})
        assert write.status_code == 403
        revoked = await http.delete(f"/v1/admin/keys/{created.json()['key']['prefix']}", headers=admin_headers)
        assert revoked.status_code == 200
        after = await rest.get("/v1/me")
    assert after.status_code == 401
    # nor can it be refreshed, and the person no longer sees it among their grants
    with pytest.raises(OAuthError) as refresh:
        await a.client.refresh_token(discovered.token, refresh_token=token["refresh_token"])
    assert refresh.value.error == "invalid_grant"
    await a.client.aclose()
    assert (await http.get("/v1/oauth/grants", headers=h)).json() == []


async def test_a_replayed_code_is_refused_and_revokes_its_tokens(
    discovered: Discovered, service_url: str, make_user: UserFactory
) -> None:
    _, h = await make_user()
    a = await authorize(discovered, key_of(h))
    token = await exchange(discovered, a)
    with pytest.raises(OAuthError) as replay:
        await exchange(discovered, a)
    assert replay.value.error == "invalid_grant"
    await a.client.aclose()
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{service_url}/v1/me", headers=auth(token["access_token"]))).status_code == 401


async def test_grants_are_listed_and_revoked_by_their_person(
    discovered: Discovered, service_url: str, make_user: UserFactory, http: httpx.AsyncClient
) -> None:
    _, h = await make_user()
    _, other = await make_user()
    token = await token_for(discovered, key_of(h))
    grants = (await http.get("/v1/oauth/grants", headers=h)).json()
    assert [(g["client_name"], g["scopes"], g["resource"]) for g in grants] == [
        ("Hosted Test Client", ["read", "write"], discovered.resource)
    ]
    assert (await http.get("/v1/oauth/grants", headers=other)).json() == []
    gid = grants[0]["grant_id"]
    assert (await http.delete(f"/v1/oauth/grants/{gid}", headers=other)).status_code == 404
    gone = await http.delete(f"/v1/oauth/grants/{gid}", headers=h)
    assert gone.status_code == 200 and gone.json()["tokens"] == 1
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.get(f"{service_url}/v1/me", headers=auth(token["access_token"]))).status_code == 401


async def test_rest_401_names_the_metadata_and_registration_checks_redirects(
    discovered: Discovered, service_url: str
) -> None:
    async with httpx.AsyncClient(base_url=service_url, timeout=30) as http:
        bare = await http.get("/v1/me")
        assert bare.headers["www-authenticate"] == (
            f'Bearer resource_metadata="{service_url}/.well-known/oauth-protected-resource"'
        )
        prm = (await http.get("/.well-known/oauth-protected-resource")).json()
        assert prm["resource"] == service_url and prm["authorization_servers"] == [service_url]
        bad = await http.post(discovered.register, json={"redirect_uris": ["http://evil.example/cb"]})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_redirect_uri"
        confidential = await http.post(
            discovered.register, json={"redirect_uris": ["https://app.example/cb"], "client_name": "Web App"}
        )
    assert confidential.status_code == 201 and confidential.json()["client_secret"]


async def test_an_unknown_client_or_unregistered_redirect_gets_a_page_never_a_redirect(discovered: Discovered) -> None:
    client = await register(discovered)
    challenge = f"code_challenge={'a' * 43}&code_challenge_method=S256"
    async with browser() as b:
        unknown = await b.http.get(
            f"{discovered.authorize}?response_type=code&client_id=mmc_nobody&redirect_uri={REDIRECT}&{challenge}"
        )
        elsewhere = await b.http.get(
            f"{discovered.authorize}?response_type=code&client_id={client['client_id']}"
            f"&redirect_uri=https://attacker.example/cb&{challenge}"
        )
    for page in (unknown, elsewhere):
        assert page.status_code == 400 and "location" not in page.headers
        assert page.headers["content-type"].startswith("text/html") and "This request cannot continue" in page.text
    assert "invalid_client" in unknown.text and "attacker.example" in elsewhere.text


async def test_oauth_turned_off_serves_no_metadata_and_accepts_no_token(
    discovered: Discovered, make_user: UserFactory, http: httpx.AsyncClient, state: AppState
) -> None:
    _, h = await make_user()
    token = await token_for(discovered, key_of(h))
    state.settings.oauth.enabled = False
    try:
        metadata = await http.get("/.well-known/oauth-authorization-server")
        refused = await http.get("/v1/me", headers=auth(token["access_token"]))
        bare = await http.get("/v1/me")
        keyed = await http.get("/v1/me", headers=h)
    finally:
        state.settings.oauth.enabled = True
    assert metadata.status_code == 404
    assert refused.status_code == 401 and "OAuth is turned off" in refused.json()["detail"]
    assert bare.headers["www-authenticate"] == "Bearer" and keyed.status_code == 200
    # turned on again, the in-process app takes the token (issued for the subprocess's URL) only
    # where it was issued: the resource is bound to the server's URL
    other = await http.get("/v1/me", headers=auth(token["access_token"]))
    assert other.status_code == 401 and "not for this server" in other.json()["detail"]


def client_document(client_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "client_name": "Document Client",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **extra,
    }


async def test_a_client_known_by_its_metadata_document(
    discovered: Discovered, service_url: str, documents: Documents, make_user: UserFactory
) -> None:
    name, h = await make_user()
    path = f"/clients/{uuid.uuid4().hex}.json"
    client_id = documents.publish(path, client_document(documents.base + path))
    async with httpx.AsyncClient(timeout=30) as http:
        meta = (await http.get(f"{service_url}/.well-known/oauth-authorization-server")).json()
    assert meta["client_id_metadata_document_supported"] is True

    oauth = oauth_client(discovered, client_id)
    verifier = secrets.token_urlsafe(48)
    url, _ = oauth.create_authorization_url(discovered.authorize, code_verifier=verifier, resource=discovered.resource)
    async with browser() as b:
        page, _ = await b.open(url)
        assert "Document Client" in page.text and client_id in page.text  # the name, and who vouches for it
        approved = await b.approve(url, key_of(h))
    assert await redeem_and_ask_who(discovered, service_url, oauth, approved, verifier) == name


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("another-id", "names another client_id"),
        ("secret", "must use token_endpoint_auth_method none"),
        ("redirect", "answered HTTP 302"),
        ("html", "is not application/json"),
        ("no-redirects", "lists no redirect_uris"),
        ("far-redirect", "must use https (or http to loopback)"),
        ("huge", "larger than 5 KB"),
    ],
)
async def test_a_metadata_document_that_does_not_hold_is_refused(
    case: str, reason: str, discovered: Discovered, documents: Documents
) -> None:
    path = f"/clients/{case}-{uuid.uuid4().hex}.json"
    client_id = documents.base + path
    good = client_document(client_id)
    published = {
        "another-id": (client_document(documents.base + "/clients/someone-else.json"), {}),
        "secret": (client_document(client_id, token_endpoint_auth_method="client_secret_basic"), {}),
        "redirect": (b"", {"location": documents.base + "/elsewhere.json"}),
        "html": (json.dumps(good).encode(), {"content-type": "text/html"}),
        "no-redirects": ({**good, "redirect_uris": []}, {}),
        "far-redirect": ({**good, "redirect_uris": ["http://evil.example/cb"]}, {}),
        "huge": ({**good, "padding": "x" * 6000}, {}),
    }
    document, headers = published[case]
    documents.publish(path, document, status=302 if case == "redirect" else 200, headers=headers)
    url, _ = oauth_client(discovered, client_id).create_authorization_url(
        discovered.authorize, code_verifier=secrets.token_urlsafe(48)
    )
    async with browser() as b:
        page = await b.http.get(url)
    assert page.status_code == 400 and "location" not in page.headers
    assert "invalid_client" in page.text and reason in page.text


async def test_a_metadata_document_on_a_private_address_is_not_fetched(
    http: httpx.AsyncClient, documents: Documents
) -> None:
    # the suite's in-process app keeps the default: private addresses are never fetched
    path = f"/clients/{uuid.uuid4().hex}.json"
    client_id = documents.publish(path, client_document(documents.base + path))
    page = await http.get(
        "/oauth/authorize",
        params={"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": "s"},
    )
    assert page.status_code == 400 and "location" not in page.headers
    assert "the client_id host 127.0.0.1 is a private address; it is not fetched" in page.text


async def test_closed_registration_refuses_clients_and_is_not_advertised(
    http: httpx.AsyncClient, state: AppState
) -> None:
    state.settings.oauth.open_registration = False
    try:
        refused = await http.post("/oauth/register", json={"redirect_uris": [REDIRECT]})
        meta = (await http.get("/.well-known/oauth-authorization-server")).json()
    finally:
        state.settings.oauth.open_registration = True
    assert refused.status_code == 400 and refused.json()["error"] == "access_denied"
    assert "registration_endpoint" not in meta
    assert (await http.post("/oauth/register", json={"redirect_uris": [REDIRECT]})).status_code == 201


async def test_behind_an_https_proxy_the_public_url_names_everything_and_cookies_are_secure(
    http: httpx.AsyncClient, state: AppState
) -> None:
    state.settings.oauth.public_url = "https://memory.example.com/"
    try:
        prm = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
        meta = (await http.get("/.well-known/oauth-authorization-server")).json()
        bare = await http.post("/mcp", json={})
        client = (
            await http.post("/oauth/register", json={"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
        ).json()
        page = await http.get(
            "/oauth/authorize",
            params={
                "response_type": "code",
                "client_id": client["client_id"],
                "redirect_uri": REDIRECT,
                "code_challenge": "a" * 43,
                "code_challenge_method": "S256",
            },
        )
    finally:
        state.settings.oauth.public_url = None
    assert prm["resource"] == "https://memory.example.com/mcp"
    assert (
        prm["authorization_servers"] == ["https://memory.example.com"]
        and meta["issuer"] == "https://memory.example.com"
    )
    assert meta["token_endpoint"] == "https://memory.example.com/oauth/token"
    assert bare.headers["www-authenticate"] == (
        'Bearer resource_metadata="https://memory.example.com/.well-known/oauth-protected-resource/mcp"'
    )
    assert page.status_code == 200 and "https://memory.example.com" in page.text
    assert "secure" in page.headers["set-cookie"].lower()


def cli(service_url: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env.update(MOSAIC_URL=service_url, MOSAIC_API_KEY=key, MOSAIC_CONFIG_FILE="", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "mosaic_memory", *args], capture_output=True, text=True, env=env, timeout=120
    )


async def test_the_cli_lists_and_revokes_a_persons_grants(
    discovered: Discovered, service_url: str, make_user: UserFactory
) -> None:
    _, h = await make_user()
    token = await token_for(discovered, key_of(h))
    listed = await asyncio.to_thread(cli, service_url, key_of(h), "oauth", "grants", "--json")
    assert listed.returncode == 0, listed.stderr
    (grant,) = json.loads(listed.stdout)
    assert grant["client_name"] == "Hosted Test Client" and grant["scopes"] == ["read", "write"]
    table = await asyncio.to_thread(cli, service_url, key_of(h), "oauth", "grants")
    assert "Hosted Test Client" in table.stdout and grant["grant_id"] in table.stdout
    revoked = await asyncio.to_thread(cli, service_url, key_of(h), "oauth", "revoke", grant["grant_id"])
    assert revoked.returncode == 0 and f"revoked grant {grant['grant_id']} (1 tokens)" in revoked.stdout
    again = await asyncio.to_thread(cli, service_url, key_of(h), "oauth", "revoke", grant["grant_id"])
    assert again.returncode == 1 and again.stderr.strip().count("\n") == 0 and "not found" in again.stderr
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{service_url}/v1/me", headers=auth(token["access_token"]))).status_code == 401


async def test_one_code_exchanged_twice_at_once_gives_one_token(
    discovered: Discovered, service_url: str, make_user: UserFactory
) -> None:
    _, h = await make_user()
    a = await authorize(discovered, key_of(h))
    code = parse_qs(urlsplit(a.location).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": a.client.client_id,
        "code_verifier": a.verifier,
    }
    await a.client.aclose()
    async with httpx.AsyncClient(timeout=30) as http:
        answers = await asyncio.gather(*(http.post(discovered.token, data=form) for _ in range(4)))
        issued = [r.json()["access_token"] for r in answers if r.status_code == 200]
        refused = [r.json()["error"] for r in answers if r.status_code != 200]
        assert len(issued) <= 1 and refused and set(refused) == {"invalid_grant"}
        # whichever won, the replay revoked what it gave
        for token in issued:
            assert (await http.get(f"{service_url}/v1/me", headers=auth(token))).status_code == 401


async def test_one_refresh_token_used_twice_at_once_rotates_once(
    discovered: Discovered, make_user: UserFactory
) -> None:
    _, h = await make_user()
    a = await authorize(discovered, key_of(h))
    token = await exchange(discovered, a)
    await a.client.aclose()
    form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": a.client.client_id}
    async with httpx.AsyncClient(timeout=30) as http:
        answers = await asyncio.gather(*(http.post(discovered.token, data=form) for _ in range(4)))
    assert [r.status_code for r in answers].count(200) == 1
    assert {r.json()["error"] for r in answers if r.status_code != 200} == {"invalid_grant"}
