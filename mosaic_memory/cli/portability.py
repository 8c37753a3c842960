"""``mosaic-memory export`` / ``import``: clients of ``GET /v1/export`` and ``POST /v1/import``.

They go through the REST API like the other memory commands, so keys, scopes and owner checks
stay in one place; both directions stream, so a large export never sits in memory.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mosaic_memory.cli.common import call_api, console, err_console, fail, note_redacted, print_json, settings

if TYPE_CHECKING:
    from mosaic_memory.client import AsyncMosaicClient
    from mosaic_memory.portability.schemas import ImportReportOut

PARTIAL_EXIT = 3  # the import ran, but some records failed (listed)


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def export_cmd(
    owner: Annotated[
        list[str] | None, typer.Option("--owner", help="user:NAME or team:NAME, repeatable; default all the key reads")
    ] = None,
    kinds: Annotated[
        list[str] | None, typer.Option("--kinds", help="logs,insights,preferences,skills (default all)")
    ] = None,
    tags: Annotated[list[str] | None, typer.Option("--tags", help="only rows with one of these tags")] = None,
    with_vectors: Annotated[bool, typer.Option("--with-vectors", help="include the embeddings")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="file to write (.gz: gzip); default stdout")] = None,
) -> None:
    """Export memory as JSON Lines (a header, one record per line, an end record)."""
    cfg = settings()
    if out is None:

        async def to_stdout(mm: AsyncMosaicClient) -> int:
            count = 0
            async for line in mm.export_stream(
                owners=owner, kinds=_split(kinds), tags=_split(tags), with_vectors=with_vectors
            ):
                sys.stdout.buffer.write(line)
                count += 1
            sys.stdout.buffer.flush()
            return count

        call_api(cfg, to_stdout)
        return
    if out.is_dir():
        fail(f"{out} is a directory; give a file name such as {out / 'memory.jsonl.gz'}")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console
    )
    with progress:
        task = progress.add_task("export", total=None)

        def advance(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        count = call_api(
            cfg,
            lambda mm: mm.export_file(
                out,
                owners=owner,
                kinds=_split(kinds),
                tags=_split(tags),
                with_vectors=with_vectors,
                on_progress=advance,
            ),
        )
    err_console.print(f"exported {count} records to {out}", highlight=False)


def import_cmd(
    file: Annotated[Path, typer.Argument(help="an export file (.jsonl or .jsonl.gz)", exists=True, dir_okay=False)],
    as_owner: Annotated[str | None, typer.Option("--as", help="import everything into this owner")] = None,
    owner_map: Annotated[
        list[str] | None,
        typer.Option("--map", help="SOURCE=TARGET, repeatable (user:alice=user:alice2); others keep their name"),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would happen; write nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Import an export file: deduplicated, idempotent, committed in batches.

    Exit code 3 when some records failed (each is listed with its line number)."""
    from mosaic_memory.errors import InvalidInput
    from mosaic_memory.portability.format import parse_owner_map  # numpy and pydantic: only when importing

    cfg = settings()
    try:
        mapping = parse_owner_map(owner_map or [])
    except InvalidInput as exc:
        fail(exc.detail)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("importing" if not dry_run else "checking"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    with progress:
        task = progress.add_task("import", total=file.stat().st_size)

        def advance(sent: int, size: int) -> None:
            progress.update(task, completed=sent, total=size)

        report = call_api(
            cfg,
            lambda mm: mm.import_file(file, as_owner=as_owner, owner_map=mapping, dry_run=dry_run, on_progress=advance),
        )
    _show(report, as_json)
    if any(c.failed for c in report.counts.values()) or report.errors:
        raise typer.Exit(PARTIAL_EXIT)


def _show(report: ImportReportOut, as_json: bool) -> None:
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    show_import_report(report)


def show_import_report(report: ImportReportOut) -> None:
    """The report as a table per kind, then reasons and warnings (import and federation pull)."""
    title = f"{'dry run: would import' if report.dry_run else 'imported'} from {report.origin}"
    table = Table("kind", "added", "merged", "duplicate", "conflict", "failed", title=title)
    for kind, c in report.counts.items():
        table.add_row(kind, *(str(v) for v in (c.added, c.merged, c.duplicate, c.conflict, c.failed)))
    console.print(table)
    if report.reembed_reason:
        console.print(f"embedded here: {report.reembed_reason}", highlight=False)
    note_redacted(report.secrets_redacted)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for error in report.errors[:50]:
        console.print(f"line {error.line}: {error.kind or 'record'}: {error.reason}", highlight=False, soft_wrap=True)
    if len(report.errors) > 50 or report.errors_truncated:
        console.print("more failures: run with --json for the full list", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
    app.command("import")(import_cmd)
