"""The web UI's page plumbing: rendering a page for a signed-in person (CSRF token, security
headers), the sign-in redirect, and domain errors as pages. No route lives here (``endpoints.py``
holds them), and nothing here decides what a person may see: the services do, scoped by the
principal of the session's API key.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mosaic_memory.common.failures import failure_of
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.web.session import Signer, csrf_token, set_csrf_cookie
from mosaic_memory.web.templates import render

__all__ = [
    "PAGE_HEADERS",
    "UI_PREFIX",
    "CsrfRefused",
    "SignInRequired",
    "Ui",
    "error_page",
    "is_ui_path",
    "signin_redirect",
]

UI_PREFIX = "/ui"

# Scripts and styles only from this service (htmx is vendored under /ui/static), never framed,
# never cached (pages show memory), no referrer (URLs carry search queries).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Vary": "HX-Request",
}


class SignInRequired(Exception):
    """The request has no valid session (never signed in, expired, or its key was revoked)."""


class CsrfRefused(Exception):
    """A state-changing form arrived without this browser's CSRF token."""


def is_ui_path(path: str) -> bool:
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


def _partial(request: Request) -> bool:
    """An htmx request for a fragment (not a history restore, which wants the whole page)."""
    return request.headers.get("HX-Request") == "true" and "HX-History-Restore-Request" not in request.headers


def signin_redirect(request: Request) -> Response:
    """Send the browser to sign in, and back here afterwards (htmx follows ``HX-Redirect``)."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = f"{UI_PREFIX}/signin?" + urllib.parse.urlencode({"next": here})
    if _partial(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


NOTICES = {
    "saved": "Saved.",
    "superseded": "Saved as a new insight; the old one is kept as its history.",
    "started": "The run started; its progress shows below.",
    "finished": "The run finished; it is the newest row of the ledger.",
    "rolled-back": "The run was rolled back.",
    "revoked": "Revoked.",
    "signed-out": "You are signed out.",
}


def notice_text(code: str | None) -> str | None:
    """The message a redirect asked for by code (never text from the URL: no spoofed messages)."""
    if code and code.startswith("deleted-") and code.removeprefix("deleted-").isdigit():
        count = int(code.removeprefix("deleted-"))
        return f"Deleted {count} {'row' if count == 1 else 'rows'}."
    return NOTICES.get(code or "")


def _fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _fmt_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@dataclass
class Ui:
    """One request of a signed-in person: who they are and how to answer them with a page."""

    request: Request
    signer: Signer
    principal: Principal | None
    secure: bool

    @property
    def partial(self) -> bool:
        return _partial(self.request)

    def page(self, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        """Render template ``ui/<name>`` with the person, a CSRF token for its forms, and helpers."""
        token = csrf_token(self.signer, self.request)
        principal = self.principal
        body = render(
            f"ui/{name}",
            me=principal,
            is_admin=bool(principal and "admin" in principal.scopes),
            can_write=bool(principal and "write" in principal.scopes),
            csrf_token=token,
            path=self.request.url.path,
            notice=notice_text(self.request.query_params.get("notice")),
            fmt_time=_fmt_time,
            fmt_json=_fmt_json,
            **context,
        )
        response = HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
        set_csrf_cookie(self.signer, response, token, secure=self.secure)
        return response


def error_page(request: Request, exc: BaseException) -> HTMLResponse | None:
    """A domain error (or invalid form input) as a page; None for an unexpected error (a bug)."""
    failure = failure_of(exc)
    if failure is None:
        return None
    ui = getattr(request.state, "ui", None)
    if isinstance(ui, Ui):
        return ui.page(
            "error.html", status=failure.status, code=failure.status, error=failure.error, detail=failure.detail
        )
    body = render("ui/error.html", code=failure.status, error=failure.error, detail=failure.detail, me=None)
    return HTMLResponse(body, status_code=failure.status, headers=PAGE_HEADERS)
