"""``mosaic-memory embeddings status|reembed``: where the stored vectors stand against the configured
model, and the re-embedding that moves them. Works while the service refuses to start on a
model mismatch (it skips that check on purpose)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mosaic_memory.cli.common import JsonOpt, console, print_json, run, settings
from mosaic_memory.cli.jobs import progress_bar, show_run

if TYPE_CHECKING:
    from jobs.ledger.schemas import JobRunOut

embeddings_app = typer.Typer(help="Embedding model status and re-embedding.", no_args_is_help=True)


@embeddings_app.command("status")
def embeddings_status(as_json: JsonOpt = False) -> None:
    """Stored model, configured model, and rows still to re-embed per table."""
    from mosaic_memory.container import build_state
    from mosaic_memory.reembed.service import ReembedService

    async def go() -> dict[str, Any]:
        state = await build_state(settings(), check_embeddings=False)
        try:
            async with state.sessionmaker() as session:
                return await ReembedService(embedder=state.embedder).status(session)
        finally:
            await state.aclose()

    status = run(go())
    if as_json:
        print_json(status)
        return
    stored = (status["stored"] or {}).get("model_id", "none")
    console.print(f"stored: {stored}  configured: {status['configured']['model_id']}", highlight=False)
    table = Table("table", "rows", "embedded", "on configured model", "to re-embed")
    for name, c in status["tables"].items():
        table.add_row(name, str(c["rows"]), str(c["embedded"]), str(c["on_model"]), str(c["pending"]))
    console.print(table)
    if not status["matches"]:
        console.print("run 'mosaic-memory embeddings reembed' to move every vector to the configured model")


@embeddings_app.command("reembed")
def embeddings_reembed(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be re-embedded")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-embed every row with the configured model (resumable), then switch atomically."""
    from jobs import build_runner
    from mosaic_memory.container import build_state

    async def go() -> JobRunOut:
        state = await build_state(settings(), check_embeddings=False)
        try:
            runner = build_runner(state)
            with progress_bar() as bar:
                task = bar.add_task("reembed", total=100)

                def step(fraction: float, message: str) -> None:
                    bar.update(task, completed=round(fraction * 100, 1), description=f"reembed {message}")

                return await runner.run("reembed", trigger="cli", dry_run=dry_run, on_progress=step)
        finally:
            await state.aclose()

    out = run(go())
    show_run(out, as_json)
    if out.status == "failed":
        raise typer.Exit(1)


__all__ = ["embeddings_app"]
