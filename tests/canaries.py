"""Canary secrets for the tests of every write path: fresh credentials, a text holding them all,
and the checks that none of them was stored or found."""

from __future__ import annotations

import secrets
import string

import httpx

ALNUM = string.ascii_letters + string.digits


def _random(n: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def canaries() -> dict[str, str]:
    """Fresh credentials of several kinds (random, so a hit can only come from this test's write)."""
    pem_body = "\n".join(_random(64, ALNUM + "+/") for _ in range(4))
    return {
        "aws-key": "AKIA" + _random(16, string.ascii_uppercase + string.digits),
        "github-token": "ghp_" + _random(36),
        "url-password": "Pw" + _random(14),
        "private-key": pem_body,
        "password": "Zq" + _random(10) + "!7",
    }


def leaky_text(c: dict[str, str]) -> str:
    """One text holding every canary of ``c``, in the shapes an agent would paste them."""
    return (
        f"Deploy notes: export AWS_ACCESS_KEY_ID={c['aws-key']} and push with {c['github-token']}; "
        f"the database is postgresql://deploy:{c['url-password']}@db.internal:5432/app and "
        f"password={c['password']}. The signing key:\n"
        f"-----BEGIN RSA PRIVATE KEY-----\n{c['private-key']}\n-----END RSA PRIVATE KEY-----\nDone."
    )


def assert_clean(body: str, c: dict[str, str]) -> None:
    for kind, value in c.items():
        for line in value.splitlines():
            assert line not in body, f"{kind} canary leaked"


async def everything(http: httpx.AsyncClient, h: dict[str, str], c: dict[str, str]) -> None:
    """The user's export (every row, history included) and searches for each canary hold none of them."""
    export = await http.get("/v1/export", headers=h)
    assert export.status_code == 200
    assert_clean(export.text, c)
    for value in (c["aws-key"], c["github-token"], c["password"], "deploy notes signing key"):
        for mode in ("keyword", "hybrid"):
            r = await http.post("/v1/search", json={"query": value, "mode": mode, "k": 50}, headers=h)
            assert r.status_code == 200, r.text
            assert_clean(r.text, c)
