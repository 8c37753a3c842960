"""``mosaic-memory jobs``: run a job once, list jobs, show the ledger, roll a run back.

Straight to the database, like the admin commands; the CLI is a composition root, so it may
build the job runner. Long runs show a progress bar on stderr (stdout stays clean for --json).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from mosaic_memory.cli.common import (
    JsonOpt,
    console,
    direct_session,
    err_console,
    print_json,
    run,
    settings,
    short_id,
)

if TYPE_CHECKING:
    from rich.progress import Progress

    from jobs.ledger.schemas import JobRunOut
    from jobs.ledger.service import JobControl

T = TypeVar("T")

jobs_app = typer.Typer(help="Scheduled jobs: run once, list, history, rollback.", no_args_is_help=True)


async def with_runner(work: Callable[[JobControl], Awaitable[T]]) -> T:
    """Open the database and model as the service does, and hand ``work`` a job runner."""
    from jobs import build_runner
    from mosaic_memory.container import build_state

    state = await build_state(settings())
    try:
        return await work(build_runner(state))
    finally:
        await state.aclose()


def progress_bar() -> Progress:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def show_run(out: JobRunOut, as_json: bool) -> None:
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    counts = ", ".join(f"{k} {v}" for k, v in out.counts.items()) or "-"
    console.print(f"run {out.id}: [bold]{out.status}[/] ({out.job_id}, {out.trigger}) {counts}", highlight=False)
    if out.message:
        console.print(out.message, highlight=False)
    for err in out.errors[:20]:
        console.print(f"  error: {err}", highlight=False)
    if out.dry_run and out.changes.get("diff") is not None:
        for group in out.changes["diff"]:
            where = group.get("session_id") or group.get("day")
            for text in group.get("insights", []):
                console.print(f"  + [{short_id(group['owner_id'])} {where}] {text}", highlight=False)


@jobs_app.command("run")
def jobs_run(
    job_id: Annotated[str, typer.Argument(help="summarize, expire-decay, log-tiers, ...")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the diff without applying it")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a job once now (skipped if another process is running it)."""

    async def go(runner: JobControl) -> JobRunOut:
        with progress_bar() as bar:
            task = bar.add_task(job_id, total=100)

            def step(fraction: float, message: str) -> None:
                bar.update(task, completed=round(fraction * 100, 1), description=f"{job_id} {message}")

            return await runner.run(job_id, trigger="cli", dry_run=dry_run, on_progress=step)

    out = run(with_runner(go))
    show_run(out, as_json)
    if out.status == "failed":
        raise typer.Exit(1)


@jobs_app.command("rollback")
def jobs_rollback(run_id: uuid.UUID, as_json: JsonOpt = False) -> None:
    """Undo what a run created and put its logs back exactly as they were."""

    async def go(runner: JobControl) -> JobRunOut:
        return await runner.rollback(run_id)

    out = run(with_runner(go))
    show_run(out, as_json)


@jobs_app.command("list")
def jobs_list(as_json: JsonOpt = False) -> None:
    """Registered jobs, their schedules and latest run."""
    from jobs import build_registry
    from jobs.ledger.service import JobLedgerService

    cfg = settings()
    registry = build_registry(cfg)
    ledger = JobLedgerService()

    async def go() -> list[dict[str, Any]]:
        out = []
        async with direct_session(cfg) as session:
            for spec in registry.specs():
                last = await ledger.history(session, job_id=spec.id, limit=1)
                out.append(
                    {
                        "id": spec.id,
                        "description": spec.description,
                        "schedule": spec.trigger,
                        "timezone": cfg.jobs.timezone,
                        "last_run": last[0].model_dump(mode="json") if last else None,
                    }
                )
        return out

    jobs = run(go())
    if as_json:
        print_json(jobs)
        return
    table = Table("job", "schedule", "last run", "status", "description")
    for job in jobs:
        last = job["last_run"] or {}
        table.add_row(
            job["id"],
            f"{job['schedule']} ({job['timezone']})" if job["schedule"] else "on demand",
            (last.get("started_at") or "")[:19],
            last.get("status", ""),
            job["description"],
        )
    console.print(table)


@jobs_app.command("history")
def jobs_history(
    job: Annotated[str | None, typer.Option("--job", "-j", help="only this job")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recent runs from the ledger, newest first."""
    from jobs.ledger.service import JobLedgerService

    cfg = settings()

    async def go() -> list[JobRunOut]:
        async with direct_session(cfg) as session:
            return await JobLedgerService().history(session, job_id=job, limit=limit)

    runs = run(go())
    if as_json:
        print_json([r.model_dump(mode="json") for r in runs])
        return
    table = Table("run", "job", "trigger", "started", "status", "progress", "counts")
    for r in runs:
        counts = ", ".join(f"{k} {v}" for k, v in r.counts.items() if v)
        table.add_row(
            str(r.id),
            r.job_id + (" (dry)" if r.dry_run else ""),
            r.trigger,
            r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.status,
            f"{r.progress:.0%}",
            counts,
        )
    console.print(table)


@jobs_app.command("show")
def jobs_show(run_id: uuid.UUID) -> None:
    """One run as JSON: counts, errors, changes."""
    from jobs.ledger.service import JobLedgerService

    cfg = settings()

    async def go() -> JobRunOut:
        async with direct_session(cfg) as session:
            return await JobLedgerService().get(session, run_id)

    print_json(run(go()).model_dump(mode="json"))


__all__ = ["jobs_app"]
