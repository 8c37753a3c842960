"""Client ID Metadata Documents: a ``client_id`` that is the https URL of the client's metadata.

The 2025-11-25 MCP revision prefers this to dynamic registration: a hosted client publishes one
JSON document (``{"client_id": <its own URL>, "client_name", "redirect_uris", ...}``) and every
authorization server reads it when the client first appears. Fetching a URL that a stranger
names is a request forgery risk, so the fetch is narrow: https only, no redirects, a short
timeout, at most 5 KB, and never to a private, loopback or link-local address unless
``oauth.client_metadata_allow_private_hosts`` says so. (The address is checked when resolved; a
name that resolves differently a moment later is not caught.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx

from mosaic_memory.config import OAuthSettings

__all__ = ["ClientDocumentError", "fetch_client_document", "is_document_url"]

MAX_BYTES = 5 * 1024
MAX_URL = 2048


class ClientDocumentError(Exception):
    """The document cannot be used; the message says why (ASCII, fit for an OAuth error)."""


def is_document_url(client_id: str) -> bool:
    return client_id.startswith("https://")


def _url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if len(url) > MAX_URL:
        return "the client_id URL is too long"
    if parts.scheme != "https" or not parts.hostname:
        return "a client_id URL must use https"
    if parts.path in ("", "/") or parts.fragment or parts.username or parts.password:
        return "a client_id URL needs a path and no fragment or credentials"
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        return "a client_id URL must not have dot segments"
    return None


async def _check_address(host: str, port: int) -> None:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise ClientDocumentError(f"the client_id host {host} cannot be resolved") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise ClientDocumentError(f"the client_id host {host} is a private address; it is not fetched")


def _tls(settings: OAuthSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    if settings.client_metadata_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.client_metadata_ca_file))
    return context


async def _get(url: str, settings: OAuthSettings) -> bytes:
    async with (
        httpx.AsyncClient(
            verify=_tls(settings),
            follow_redirects=False,
            trust_env=False,
            timeout=settings.client_metadata_timeout_seconds,
        ) as http,
        http.stream("GET", url, headers={"Accept": "application/json"}) as response,
    ):
        if response.status_code != 200:
            raise ClientDocumentError(f"the client metadata document answered HTTP {response.status_code}")
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json" and not (ctype.startswith("application/") and ctype.endswith("+json")):
            raise ClientDocumentError("the client metadata document is not application/json")
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_BYTES:
                raise ClientDocumentError("the client metadata document is larger than 5 KB")
    return body


async def fetch_client_document(url: str, settings: OAuthSettings) -> dict[str, Any]:
    """The client metadata published at ``url``, checked: its ``client_id`` is ``url`` exactly, it
    authenticates with ``none`` (a document cannot share a secret) and lists redirect URIs.

    Raises ClientDocumentError saying what is wrong."""
    problem = _url_problem(url)
    if problem:
        raise ClientDocumentError(problem)
    parts = urlsplit(url)
    host = str(parts.hostname)
    if not settings.client_metadata_allow_private_hosts:
        await _check_address(host, parts.port or 443)
    try:
        body = await _get(url, settings)
    except httpx.HTTPError as exc:
        raise ClientDocumentError(f"the client metadata document could not be fetched ({type(exc).__name__})") from None
    try:
        document = json.loads(body)
    except ValueError:
        raise ClientDocumentError("the client metadata document is not JSON") from None
    if not isinstance(document, dict) or document.get("client_id") != url:
        raise ClientDocumentError("the client metadata document names another client_id")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise ClientDocumentError(f"a client metadata document must use token_endpoint_auth_method none, not {method}")
    uris = document.get("redirect_uris")
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise ClientDocumentError("the client metadata document lists no redirect_uris")
    return {**document, "token_endpoint_auth_method": "none"}
