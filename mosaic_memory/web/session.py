"""Browser sessions and CSRF protection for server-rendered pages (consent page, web UI).

A session is a signed cookie naming the API key a person signed in with (its id, never the key)
and when it ends: HTTP-only, ``SameSite=Lax`` (sent on the top-level navigation that brings a
person to the consent page, never on a cross-site POST), ``Secure`` when served over https.
Whoever resolves it checks the key is still valid, so revoking the key ends its sessions.

CSRF: a signed double-submit token. The page carries a random token in a hidden field and the
same token, signed, in an HTTP-only cookie; a form post is accepted only when both are present
and agree. Another site can neither read the cookie nor forge its signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "Signer",
    "check_csrf",
    "clear_session",
    "csrf_token",
    "read_session",
    "set_csrf_cookie",
    "start_session",
]

SESSION_COOKIE = "mosaic_session"
CSRF_COOKIE = "mosaic_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HOURS = 2.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs small JSON payloads for one purpose each (HMAC-SHA256), with an expiry."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock

    def _mac(self, purpose: str, body: str) -> str:
        return _b64(hmac.new(self._secret, f"{purpose}.{body}".encode(), hashlib.sha256).digest())

    def sign(self, purpose: str, payload: dict[str, Any], *, hours: float) -> str:
        body = _b64(json.dumps({**payload, "exp": self._clock() + hours * 3600}, separators=(",", ":")).encode())
        return f"{body}.{self._mac(purpose, body)}"

    def unsign(self, purpose: str, value: str | None) -> dict[str, Any] | None:
        """The payload, or None when the value is missing, altered, for another purpose or expired."""
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            return None
        try:
            payload = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(payload, dict) or float(payload.get("exp", 0)) < self._clock():
            return None
        return payload


def read_session(signer: Signer, request: Request) -> uuid.UUID | None:
    """The id of the API key this browser signed in with, if its session is valid."""
    payload = signer.unsign("session", request.cookies.get(SESSION_COOKIE))
    try:
        return uuid.UUID(str(payload["key"])) if payload else None
    except (KeyError, ValueError):
        return None


def start_session(signer: Signer, response: Response, key_id: uuid.UUID, *, hours: float, secure: bool) -> None:
    """Sign this browser in as the holder of key ``key_id``; ``secure``: the site is served over https
    (say so from the public URL: behind a proxy the request itself may look like plain http)."""
    value = signer.sign("session", {"key": str(key_id)}, hours=hours)
    response.set_cookie(SESSION_COOKIE, value, max_age=int(hours * 3600), httponly=True, samesite="lax", secure=secure)


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")


def csrf_token(signer: Signer, request: Request) -> str:
    """The token for a form on this page: the browser's current one, or a new one."""
    payload = signer.unsign("csrf", request.cookies.get(CSRF_COOKIE))
    if payload and isinstance(payload.get("t"), str):
        return str(payload["t"])
    return secrets.token_urlsafe(24)


def set_csrf_cookie(signer: Signer, response: Response, token: str, *, secure: bool) -> None:
    """Give the page's response the signed cookie that ``token`` must match on the form's post."""
    response.set_cookie(
        CSRF_COOKIE,
        signer.sign("csrf", {"t": token}, hours=CSRF_HOURS),
        max_age=int(CSRF_HOURS * 3600),
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def check_csrf(signer: Signer, request: Request, submitted: str | None) -> bool:
    """Whether a form post carries the token of this browser's CSRF cookie."""
    payload = signer.unsign("csrf", request.cookies.get(CSRF_COOKIE))
    expected = payload.get("t") if payload else None
    return bool(submitted and isinstance(expected, str) and hmac.compare_digest(submitted, expected))
