"""The one URL redaction of the project, here because this leaf library is the one place both the
providers (which may import nothing of the service) and the service itself can import from."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["redact_url"]


def redact_url(url: str, *, strip: bool = False) -> str:
    """``url`` safe to show: it never contains a password or a query value (either may be a key).

    By default the user name, the host, the path and the query's keys stay, the password and every
    query value become ``***`` and any fragment is dropped (configuration display:
    ``https://svc:***@memory.example/v1?key=***``). ``strip=True`` keeps only scheme, host, port and
    path (error messages: ``http://127.0.0.1:8080/v1/embeddings``). An unparseable URL comes back
    as ``<unparseable URL>``, never echoed.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if strip:
        netloc = f"[{host}]" if ":" in host else host
        return urlunsplit((parts.scheme, f"{netloc}:{port}" if port else netloc, parts.path, "", ""))
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    query = "&".join(f"{k}=***" if v else k for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
