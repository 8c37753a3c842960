"""``mosaic-memory backup`` / ``restore``: pg_dump and pg_restore of this instance's database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from mosaic_memory.cli.common import console, fail, run, settings

__all__ = ["backup_cmd", "register", "restore_cmd"]


def backup_cmd(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="file to write (default <data dir>/backups/mosaic-<time>.dump)")
    ] = None,
) -> None:
    """Write a consistent backup of the database (pg_dump custom format; safe while the service runs)."""
    from mosaic_memory.backups import backup_name, dump
    from mosaic_memory.tiers import open_database

    cfg = settings()
    path = out or cfg.backup_dir / backup_name(datetime.now(UTC))
    if path.is_dir():
        fail(f"{path} is a directory; give a file name such as {path / backup_name(datetime.now(UTC))}")

    async def go() -> int:
        database = open_database(cfg)
        try:
            return (await dump(database.url, path)).size
        finally:
            database.close()

    size = run(go())
    console.print(f"wrote {path} ({size} bytes)", highlight=False, soft_wrap=True)


def restore_cmd(
    file: Annotated[Path, typer.Argument(help="a file written by 'mosaic-memory backup'")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Replace the database's contents with a backup, in one transaction. Stop the service first."""
    from mosaic_memory.backups import restore
    from mosaic_memory.tiers import open_database, redact_database_url

    cfg = settings()
    if not file.is_file():
        fail(f"{file} is not a file")
    if not yes and not typer.confirm(f"replace everything in this instance's database with {file}?"):
        fail("not restored", 1)

    async def go() -> str:
        database = open_database(cfg)
        try:
            await restore(database.url, file)
            return redact_database_url(database.url)
        finally:
            database.close()

    where = run(go())
    console.print(
        f"restored {file} into {where}; start the service (it upgrades the schema if the backup is older)",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)
