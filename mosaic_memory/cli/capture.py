"""``mosaic-memory hooks install|uninstall``, ``capture`` and ``import-transcripts``.

``capture`` is what an agent's hook runs: it must never fail or hold up the agent, so every
error becomes one line on stderr and exit code 0, and the service gets ``capture.timeout_seconds``
(2 s) before the events are left in the spool for the next call. Stdout stays empty (Claude Code
adds a SessionStart or UserPromptSubmit hook's stdout to the model's context) except on a
session start, where it is the memory to inject (``capture/inject.py``), fetched at the same time
within ``capture.context_timeout_seconds``: nothing when the service is down or slow.
The capture package is imported inside the commands: ``--help`` stays light.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mosaic_memory.cli.common import console, err_console, fail, print_json, run, settings

if TYPE_CHECKING:
    from mosaic_memory.capture.backfill import FileReport
    from mosaic_memory.capture.delivery import Delivery
    from mosaic_memory.capture.inject import Injection
    from mosaic_memory.capture.install import Change
    from mosaic_memory.capture.spool import Spool
    from mosaic_memory.config import Settings

hooks_app = typer.Typer(
    help="Agent hooks that capture sessions into agent logs (see docs/agents.md).", no_args_is_help=True
)

AGENTS = ("claude-code", "codex")
PARTIAL_EXIT = 3  # import-transcripts ran, but some files failed (listed)

AgentArg = Annotated[str, typer.Argument(help="claude-code or codex")]
ProjectOpt = Annotated[
    Path | None, typer.Option("--project", help="Claude Code: DIR/.claude/settings.json (shared with the project)")
]
UserOpt = Annotated[bool, typer.Option("--user", help="Claude Code: ~/.claude/settings.json (the default)")]
SettingsOpt = Annotated[Path | None, typer.Option("--settings", help="this settings file instead")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="print the change as a diff; write nothing")]


def _settings_file(agent: str, project: Path | None, user: bool, explicit: Path | None) -> Path:
    if agent not in AGENTS:
        fail(f"unknown agent {agent!r}; hooks exist for: {', '.join(AGENTS)}")
    if explicit is not None:
        return explicit.expanduser()
    if agent == "codex":
        if project is not None:
            fail("Codex reads notify from its user config only (~/.codex/config.toml); leave out --project")
        return Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex").expanduser() / "config.toml"
    if project is not None and user:
        fail("choose one of --project DIR and --user")
    if project is not None:
        return project.expanduser() / ".claude" / "settings.json"
    return Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude").expanduser() / "settings.json"


def _show(change: Change, dry_run: bool) -> None:
    if dry_run:
        import difflib

        diff = difflib.unified_diff(
            change.before.splitlines(keepends=True),
            change.after.splitlines(keepends=True),
            fromfile=f"{change.path} (now)",
            tofile=f"{change.path} (after)",
        )
        sys.stdout.write("".join(diff) or "no change\n")
        err_console.print(f"dry run: {change.note}; nothing written", highlight=False)
        return
    state = "" if change.changed else " (the file already had it)"
    console.print(f"{change.path}: {change.note}{state}", highlight=False)


@hooks_app.command("install")
def hooks_install(
    agent: AgentArg,
    project: ProjectOpt = None,
    user: UserOpt = False,
    settings_file: SettingsOpt = None,
    dry_run: DryRunOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Codex: replace another notify program")] = False,
    background: Annotated[
        bool,
        typer.Option(
            "--background",
            help='Claude Code: "async": true, the agent does not wait (recent versions); not SessionStart',
        ),
    ] = False,
    program: Annotated[
        str | None, typer.Option("--program", help="the command hooks run (default: this install's mosaic-memory)")
    ] = None,
) -> None:
    """Install the capture hooks: merged with what the file has, never replacing other hooks."""
    from mosaic_memory.capture.install import InstallError, claude_code_install, codex_hooks_install, codex_install

    path = _settings_file(agent, project, user, settings_file)
    try:
        if agent == "codex":
            # notify (each turn) in config.toml, and SessionStart (the start, with the context
            # block injected) in the hooks.json beside it
            changes = [
                codex_install(path, program=program, force=force, dry_run=dry_run),
                codex_hooks_install(path.parent / "hooks.json", program=program, dry_run=dry_run),
            ]
        else:
            changes = [claude_code_install(path, program=program, background=background, dry_run=dry_run)]
    except InstallError as exc:
        fail(str(exc))
    for change in changes:
        _show(change, dry_run)


@hooks_app.command("uninstall")
def hooks_uninstall(
    agent: AgentArg,
    project: ProjectOpt = None,
    user: UserOpt = False,
    settings_file: SettingsOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Remove exactly the capture hooks (recognised by their command); other hooks stay."""
    from mosaic_memory.capture.install import (
        InstallError,
        claude_code_uninstall,
        codex_hooks_uninstall,
        codex_uninstall,
    )

    path = _settings_file(agent, project, user, settings_file)
    try:
        if agent == "codex":
            changes = [
                codex_uninstall(path, dry_run=dry_run),
                codex_hooks_uninstall(path.parent / "hooks.json", dry_run=dry_run),
            ]
        else:
            changes = [claude_code_uninstall(path, dry_run=dry_run)]
    except InstallError as exc:
        fail(str(exc))
    for change in changes:
        _show(change, dry_run)


# capture -------------------------------------------------------------------------------------------
def _say(message: str) -> None:
    """The one stderr line of a hook run (plain text: no markup, no colour codes in agent logs)."""
    sys.stderr.write(f"mosaic-memory capture: {' '.join(message.split())}\n")


def _capture_settings() -> tuple[Settings | None, str | None]:
    from mosaic_memory.config import load_settings

    try:
        return load_settings(), None
    except Exception as exc:
        return None, f"configuration unreadable ({type(exc).__name__}); events spooled under the default data dir"


def _read_payload(argument: str | None) -> object:
    if argument is not None:
        raw = argument
    elif sys.stdin is None or sys.stdin.isatty():
        raise ValueError("no hook payload: pipe the hook's JSON on stdin or pass it as an argument")
    else:
        raw = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError("the hook payload is not JSON") from None


def _hook(agent: str | None, payload: str | None) -> None:
    import asyncio
    from datetime import UTC, datetime

    from mosaic_memory.capture.hooks import hook_events
    from mosaic_memory.capture.inject import is_session_start
    from mosaic_memory.capture.spool import Spool
    from mosaic_memory.config import default_data_dir

    if agent is None:
        raise ValueError("--agent is required (claude-code, codex or generic)")
    cfg, problem = _capture_settings()
    excerpt = cfg.capture.excerpt_chars if cfg else 2000
    data = _read_payload(payload)
    events = hook_events(agent, data, now=datetime.now(UTC), excerpt_chars=excerpt)
    spool = Spool(cfg.spool_file if cfg else default_data_dir() / "capture" / "spool.jsonl")
    if cfg is None:
        spool.append(events, deadline=time.monotonic() + 2.0)
        raise ValueError(problem)
    start = data if cfg.capture.inject_context and is_session_start(data) else None
    if not events and spool.empty() and start is None:
        return  # nothing to store, nothing waiting, nothing to inject: no need to load the client

    key = cfg.api_key.get_secret_value() if cfg.api_key else None
    _import_httpx_without_its_cli()
    report, injection = asyncio.run(_deliver(cfg, spool, events, key, start))
    if injection is not None and injection.text:
        from mosaic_memory.capture.inject import hook_output

        # The only stdout of a hook: the agent adds it to the model's context (capture/inject.py).
        sys.stdout.write(hook_output(injection.text) + "\n")
    said = []
    if report.problem:
        said.append(f"{report.problem}; events wait in {spool.path} and go with the next capture")
    if report.rejected:
        said.append(f"{report.rejected} events refused by the service, set aside in {spool.rejected_path}")
    if injection is not None and injection.problem:
        # The service's address is named once: the delivery's line already says why it failed.
        said.append("no memory injected" + ("" if report.problem else f": {injection.problem}"))
    if said:
        _say("; ".join(said))


def _import_httpx_without_its_cli() -> None:
    """Import httpx without ``httpx._main``, its own command line, which it loads whenever click,
    rich and pygments are installed (they are, beside typer): about 80 ms of every hook, paired
    timing in benchmarks/RESULTS.md. httpx imports it in ``try: ... except ImportError`` and
    defines a stub instead, and a ``None`` in ``sys.modules`` makes that import fail. Should a
    later httpx need the module, the import is simply done again the usual way."""
    if "httpx" in sys.modules:
        return
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx
    except ImportError:
        for name in [m for m in sys.modules if m == "httpx" or m.startswith("httpx.")]:
            del sys.modules[name]
        import httpx  # noqa: F401
    finally:
        if sys.modules.get("httpx._main", False) is None:
            del sys.modules["httpx._main"]


async def _deliver(
    cfg: Settings, spool: Spool, events: list[dict[str, Any]], key: str | None, start: dict[str, Any] | None
) -> tuple[Delivery, Injection | None]:
    """Send the events and, for a session start (``start``, its payload), fetch the context block
    at the same time: the hook waits for the slower of the two, not for both in turn."""
    import asyncio

    from mosaic_memory.capture.delivery import deliver
    from mosaic_memory.capture.inject import fetch_context, project_of

    sending = deliver(spool, events, url=cfg.url, api_key=key, timeout=cfg.capture.timeout_seconds)
    if start is None or not key:
        return await sending, None
    fetching = fetch_context(
        cfg.url,
        key,
        project=project_of(start.get("cwd")),
        token_budget=cfg.capture.context_token_budget,
        timeout=cfg.capture.context_timeout_seconds,
    )
    report, injection = await asyncio.gather(sending, fetching)
    return report, injection


def _flush() -> None:
    from mosaic_memory.capture.delivery import deliver
    from mosaic_memory.capture.spool import Spool

    cfg = settings()
    spool = Spool(cfg.spool_file)
    key = cfg.api_key.get_secret_value() if cfg.api_key else None
    report = run(deliver(spool, [], url=cfg.url, api_key=key, timeout=max(cfg.capture.timeout_seconds, 300.0)))
    if not report.sender:
        fail("another capture is sending the spool right now; try again in a moment")
    line = f"sent {report.sent} events ({report.duplicates} were already stored)"
    if report.rejected:
        line += f"; {report.rejected} refused, set aside in {spool.rejected_path}"
    console.print(line, highlight=False)
    if report.problem or not report.drained:
        fail(f"{spool.count()} events still wait in {spool.path}: {report.problem or 'not all were sent'}")


def capture_cmd(
    payload: Annotated[
        str | None, typer.Argument(help="the hook's JSON (Codex's notify passes it here); default: read stdin")
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="claude-code, codex or generic")] = None,
    flush: Annotated[bool, typer.Option("--flush", help="send the spool now and report (exit 1 if it cannot)")] = False,
) -> None:
    """Store one agent hook's events as agent logs (what installed hooks run); on a session start,
    print the memory for the agent to inject.

    Never fails the agent: on any error one line goes to stderr and the exit code is 0. When
    the service cannot be reached the events wait in a local spool, sent first by the next capture."""
    if flush:
        _flush()
        return
    try:
        _hook(agent, payload)
    except Exception as exc:  # a hook must never fail its agent
        _say(str(exc) or type(exc).__name__)


# import-transcripts ----------------------------------------------------------------------------------
def _summary(reports: list[FileReport], dry_run: bool, as_json: bool) -> None:
    if as_json:
        print_json([{**r.__dict__, "path": str(r.path)} for r in reports])
        return
    from rich.table import Table

    added = "would add" if dry_run else "added"
    table = Table("file", "agent", "turns read", added, "duplicate", "noise", "live", "invalid")
    for r in reports:
        cells = (r.read, r.added, r.duplicates, r.noise, r.live, r.invalid)
        table.add_row(r.path.name, r.agent, *(str(v) for v in cells))
    if len(reports) > 1:
        fields = ("read", "added", "duplicates", "noise", "live", "invalid")
        totals = [sum(getattr(r, f) for r in reports) for f in fields]
        table.add_row("all files", "", *(str(v) for v in totals), style="bold")
    console.print(table)
    for r in reports:
        if r.error:
            console.print(f"{r.path}: {r.error}", highlight=False, soft_wrap=True)
    if any(r.live for r in reports):
        console.print("live: sessions the hooks already capture, left out (--include-live imports them)")


def import_transcripts_cmd(
    paths: Annotated[list[Path], typer.Argument(help="session files, or folders searched for *.jsonl", exists=True)],
    agent: Annotated[str, typer.Option("--agent", help="auto, claude-code, codex or generic")] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="read and count; send nothing")] = False,
    owner: Annotated[str | None, typer.Option(help="'team:NAME' to write to a team")] = None,
    include_live: Annotated[
        bool, typer.Option("--include-live", help="also sessions the hooks already captured")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the counts as JSON")] = False,
) -> None:
    """Import agent session transcripts (Claude Code, Codex, generic JSONL) as agent logs.

    One log per meaningful turn, noise dropped; idempotent (a second run adds nothing).
    Exit code 3 when some files could not be imported (each is named)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from mosaic_memory.capture.backfill import import_transcript, transcript_files
    from mosaic_memory.capture.transcripts import READERS

    if agent != "auto" and agent not in READERS:
        fail(f"unknown agent {agent!r}; known: auto, {', '.join(READERS)}")
    files = list(transcript_files(paths))
    if not files:
        fail("no *.jsonl files under the paths given")
    cfg = settings()
    sizes = {f: max(1, f.stat().st_size) for f in files}
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[file]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )

    async def go() -> list[FileReport]:
        from mosaic_memory.cli.common import client

        reports: list[FileReport] = []
        mm = None if dry_run else client(cfg)
        try:
            task = progress.add_task("reading" if dry_run else "importing", total=sum(sizes.values()), file="")
            done = 0
            for file in files:
                progress.update(task, completed=done, file=file.name)

                def advance(share: float, base: int = done, size: int = sizes[file]) -> None:
                    progress.update(task, completed=base + share * size)

                reports.append(
                    await import_transcript(
                        mm,
                        file,
                        agent=agent,
                        owner=owner,
                        include_live=include_live,
                        excerpt_chars=cfg.capture.excerpt_chars,
                        on_progress=advance,
                    )
                )
                done += sizes[file]
            progress.update(task, completed=done, file="")
        finally:
            if mm is not None:
                await mm.aclose()
        return reports

    with progress:
        reports = run(go())
    _summary(reports, dry_run, as_json)
    if any(r.error for r in reports):
        raise typer.Exit(PARTIAL_EXIT)


def register(app: typer.Typer) -> None:
    app.add_typer(hooks_app, name="hooks")
    app.command("capture")(capture_cmd)
    app.command("import-transcripts")(import_transcripts_cmd)
