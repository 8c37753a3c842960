"""The fan-out client: this instance calling its peers over mutual TLS.

The server's certificate must come from a trusted CA and carry the peer's name (checked as the
TLS host name, sent as SNI, whatever host the URL names); our own certificate goes with every
connection. A peer that does not answer in time, refuses, or fails TLS becomes a ``PeerResult``
with an ``error``, never an exception.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from mosaic_memory.federation.identity import FederationPaths, client_context

__all__ = ["PeerClient", "PeerResult"]

SEARCH_PATH = "/federation/v1/search"
EXPORT_PATH = "/federation/v1/export"
GRANTS_PATH = "/federation/v1/grants"


@dataclass
class PeerResult:
    peer: str
    body: dict[str, Any] | None = None
    error: str | None = None
    latency_ms: float | None = None
    cert_not_after: datetime | None = None


def _not_after(response: httpx.Response) -> datetime | None:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert or "notAfter" not in cert:
        return None
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)


def _reason(exc: BaseException) -> str:
    """Why a call failed, in one line, naming no secret (URLs here carry none)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS refused: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS refused: {cause.reason or cause}"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError):
        return f"unreachable: {exc}" if str(exc) else "unreachable"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class PeerClient:
    """A connection pool per peer, with this instance's current certificate.

    One pool per peer name, not one for all: httpx pools connections by host and port and
    ignores ``sni_hostname`` when it reuses one, so two peer entries with the same URL would
    share a connection verified for only one of their names."""

    def __init__(self, paths: FederationPaths) -> None:
        self.paths = paths
        self._stamp = self._files_stamp()
        self._context = client_context(paths)
        self._pools: dict[str, httpx.AsyncClient] = {}

    def _http_for(self, peer: str) -> httpx.AsyncClient:
        pool = self._pools.get(peer)
        if pool is None:
            pool = self._pools[peer] = httpx.AsyncClient(verify=self._context, timeout=httpx.Timeout(30.0))
        return pool

    def _files_stamp(self) -> tuple[float, ...]:
        return tuple(
            p.stat().st_mtime if p.exists() else 0.0 for p in (self.paths.cert, self.paths.key, self.paths.trusted)
        )

    def stale(self) -> bool:
        """True when the certificate, key or trust store changed since this client was built (renewal)."""
        return self._files_stamp() != self._stamp

    def retire(self) -> None:
        """Close this client in the background (requests in flight finish first)."""
        with suppress(RuntimeError):
            asyncio.get_running_loop().create_task(self.aclose())

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()

    async def search(self, peer: str, url: str, body: dict[str, Any], *, timeout: float) -> PeerResult:
        """POST the search to ``peer``; an answer later than ``timeout`` seconds counts as a failure."""
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(
                self._http_for(peer).post(
                    url + SEARCH_PATH,
                    json=body,
                    extensions={"sni_hostname": peer},
                    timeout=httpx.Timeout(timeout),
                ),
                timeout,
            )
        except (TimeoutError, httpx.TimeoutException):
            return PeerResult(peer, error=f"timed out after {timeout:g} s")
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            return PeerResult(peer, error=_reason(exc))
        latency = round((time.perf_counter() - started) * 1000, 3)
        not_after = _not_after(response)
        if response.status_code != 200:
            return PeerResult(peer, error=_http_reason(response), latency_ms=latency, cert_not_after=not_after)
        try:
            data = response.json()
        except ValueError:
            return PeerResult(peer, error="the peer answered with something that is not JSON", latency_ms=latency)
        return PeerResult(peer, body=data, latency_ms=latency, cert_not_after=not_after)

    async def grants(self, peer: str, url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The grants ``peer`` holds for the recipients in ``body``. Raises FederationError."""
        from mosaic_memory.errors import FederationError

        try:
            response = await self._http_for(peer).post(url + GRANTS_PATH, json=body, extensions={"sni_hostname": peer})
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            raise FederationError(f"peer {peer!r}: {_reason(exc)}") from None
        if response.status_code != 200:
            raise FederationError(f"peer {peer!r} refused: {_http_reason(response)}")
        data: list[dict[str, Any]] = response.json()
        return data

    @asynccontextmanager
    async def export_lines(self, peer: str, url: str, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[bytes]]:
        """Stream a peer's export (JSON Lines, as byte chunks cut anywhere: the import splits them)
        for the grants it holds for us. Raises FederationError."""
        from mosaic_memory.errors import FederationError

        try:
            async with self._http_for(peer).stream(
                "POST", url + EXPORT_PATH, json=body, extensions={"sni_hostname": peer}, timeout=httpx.Timeout(60.0)
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise FederationError(f"peer {peer!r} refused the export: {_http_reason(response)}")
                yield response.aiter_bytes()
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            raise FederationError(f"peer {peer!r}: {_reason(exc)}") from None


def _http_reason(response: httpx.Response) -> str:
    try:
        data = response.json()
        return f"HTTP {response.status_code} {data.get('error', '')}: {data.get('detail', '')}".strip()
    except ValueError:
        return f"HTTP {response.status_code}"
