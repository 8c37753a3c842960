"""``mosaic-memory migrate-tier``: move this instance's database onto a standalone PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mosaic_memory.cli.common import console, err_console, fail, run, settings

if TYPE_CHECKING:
    from mosaic_memory.config import Settings
    from mosaic_memory.tiermove.migrate import MigrationReport

__all__ = ["migrate_tier_cmd", "register"]


def say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True, markup=False)


def _config_path() -> Path:
    from mosaic_memory.config import default_config_file

    named = os.environ.get("MOSAIC_CONFIG_FILE")
    return Path(named).expanduser() if named else default_config_file()


def write_database_url(path: Path, url: str) -> None:
    """Set ``database_url`` in the TOML config file (created if absent, other settings kept; a
    ``tier = "local"`` becomes ``"standalone"``), readable by its owner only: it holds a password."""
    import tomlkit

    doc = tomlkit.parse(path.read_text()) if path.is_file() else tomlkit.document()
    doc["database_url"] = url
    if doc.get("tier") == "local":
        doc["tier"] = "standalone"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(tomlkit.dumps(doc))
    os.replace(tmp, path)


def _show_plan(report: MigrationReport) -> None:
    plan = report.plan
    say(f"source: {plan.source} (instance {plan.instance_id})")
    say(f"target: {plan.target}")
    steps = []
    if plan.create_database:
        steps.append("create the database")
    if plan.migrate_schema:
        steps.append("create the schema (migrations to head)")
    if plan.resume:
        steps.append("resume: the target already holds part of this instance's data")
    for step in steps:
        say(f"  - {step}")
    table = Table("table", "rows to copy", "rows on the target now")
    for t in plan.tables:
        table.add_row(t.name, str(t.source_rows), "-" if t.target_rows is None else str(t.target_rows))
    console.print(table)


def _print_switch(cfg: Settings, to: str, switched: Path | None) -> None:
    from mosaic_memory.tiers import redact_database_url

    shown = redact_database_url(to)
    if switched is not None:
        say(f"wrote database_url = {shown!r} to {switched}; restart the service to use the new database")
    else:
        say("To use the new database, change one setting and restart the service:")
        say(f"  MOSAIC_DATABASE_URL={shown}   (*** stands for the password you passed to --to)")
        say(f"  or database_url in {_config_path()}; 'migrate-tier --switch' writes it there")
    if os.environ.get("MOSAIC_DATABASE_URL") and switched is not None:
        err_console.print(
            "note: MOSAIC_DATABASE_URL is set in this environment and overrides the config file; change it too",
            markup=False,
        )
    if cfg.effective_tier == "local":
        say(f"The embedded database in {cfg.data_dir} is left as it was; remove it once you no longer need it.")


def migrate_tier_cmd(
    to: Annotated[str, typer.Option("--to", help="target PostgreSQL URL: postgresql://user:pass@host:port/db")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be copied; change nothing")] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, max=100_000, help="rows per target transaction")] = 1000,
    switch: Annotated[bool, typer.Option("--switch", help="afterwards write database_url to the config file")] = False,
) -> None:
    """Copy every table of this instance's database (the embedded one by default) to another
    PostgreSQL with pgvector: created and migrated if empty, under an advisory lock, in batches
    of upserts (run it again after any interruption), then verified row counts and checksums.
    The source is left untouched."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from mosaic_memory.errors import StorageTierError
    from mosaic_memory.tiermove.migrate import migrate_tier
    from mosaic_memory.tiers import open_database, to_async_url

    cfg = settings()
    try:
        to_async_url(to)
    except StorageTierError:
        fail("--to is not a PostgreSQL URL; expected postgresql://user:pass@host:port/db")

    progress = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def on_progress(table: str, done: int, total: int) -> None:
        if table not in tasks:
            tasks[table] = progress.add_task(table, total=max(total, 1))
        progress.update(tasks[table], completed=done if total else 1)

    async def go() -> Any:
        database = open_database(cfg)
        try:
            with progress:
                return await migrate_tier(
                    database.url, to, batch=batch, dry_run=dry_run, on_progress=None if dry_run else on_progress
                )
        finally:
            database.close()

    report = run(go())
    if dry_run:
        _show_plan(report)
        say("dry run: nothing was changed")
        return
    total = sum(c.rows for c in report.verified.values())
    say(
        f"copied and verified {total} rows in {len(report.verified)} tables: row counts and checksums "
        f"(vectors included) equal on both sides"
    )
    switched = None
    if switch:
        path = _config_path()
        try:
            write_database_url(path, to)
        except OSError as exc:
            fail(f"the copy is complete, but {path} could not be written: {exc.strerror or exc}")
        switched = path
    _print_switch(cfg, to, switched)


def register(app: typer.Typer) -> None:
    app.command("migrate-tier")(migrate_tier_cmd)
