"""The REST client's core: one HTTP connection carrying the key, a request, and the error it raises.

:class:`mosaic_memory.client.AsyncMosaicClient` builds its typed methods on :class:`RestClient`.
Kept apart, importing nothing but httpx, so that a process which only sends JSON and reads JSON
back (the ``mosaic-memory capture`` hook, run once per agent event) does not load the schemas of
every route: that was about a tenth of a second per hook (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import urllib.parse
from typing import Any, NoReturn, Self

import httpx

__all__ = ["MosaicClientError", "RestClient", "raise_for", "shown_url", "unreachable"]


class MosaicClientError(Exception):
    """The service answered with an error, or could not be reached (``status`` 0)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail


def shown_url(base_url: str) -> str:
    """The service's URL safe to show: scheme, host, port and path (no user, password or query)."""
    parts = urllib.parse.urlsplit(base_url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return urllib.parse.urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def unreachable(base_url: str, exc: Exception) -> MosaicClientError:
    """The error for a request that got no answer: the address as :func:`shown_url` shows it and
    the exception's class, never its text (an httpx message can quote the request, headers
    included)."""
    detail = f"cannot reach Mosaic Memory at {shown_url(base_url)} ({type(exc).__name__})"
    return MosaicClientError(0, "ServiceUnreachable", detail)


def raise_for(response: httpx.Response) -> NoReturn:
    """Raise the service's ``{error, detail}`` of a response with status 400 or more."""
    try:
        body = response.json()
    except ValueError:
        raise MosaicClientError(response.status_code, "HTTPError", response.text[:200]) from None
    if not isinstance(body, dict):
        raise MosaicClientError(response.status_code, "HTTPError", response.text[:200])
    raise MosaicClientError(response.status_code, str(body.get("error", "HTTPError")), str(body.get("detail", "")))


class RestClient:
    """An ``httpx.AsyncClient`` for the service at ``base_url`` with the key as a bearer token;
    :meth:`request` returns the decoded JSON body (None for an empty one) or raises
    :class:`MosaicClientError`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    @property
    def shown_url(self) -> str:
        return shown_url(self.base_url)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = await self._http.request(
                method, path, json=json, params={k: v for k, v in (params or {}).items() if v is not None}
            )
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from None
        if response.status_code >= 400:
            raise_for(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()
