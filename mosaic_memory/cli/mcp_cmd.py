"""``mosaic-memory mcp``: the stdio server (the bare command) and ``mcp config`` for each MCP client."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mosaic_memory.cli.common import console, err_console, fail, run, settings

mcp_app = typer.Typer(
    help="MCP: serve the memory tools on stdio (the bare command), or configure an MCP client.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@mcp_app.callback()
def mcp(ctx: typer.Context) -> None:
    """Serve the memory tools over MCP on stdio, as a client of the service at MOSAIC_URL
    (with MOSAIC_API_KEY). Point an MCP host (Claude Desktop, an IDE) at this command;
    'mosaic-memory mcp config CLIENT' prints the configuration for one."""
    if ctx.invoked_subcommand is not None:
        return
    import logging

    from mosaic_memory.mcp_server import run_stdio

    cfg = settings()
    key = cfg.api_key.get_secret_value() if cfg.api_key else None
    if not key:
        fail("no API key: set MOSAIC_API_KEY to a key of the service at MOSAIC_URL (see docs/mcp.md)")
    # stdout carries the protocol: log to stderr only, and only what matters.
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    run(run_stdio(cfg.url, key, log_level="WARNING"))


@mcp_app.command("config")
def mcp_config(
    client: Annotated[str, typer.Argument(help="claude-code, cursor, codex or claude-desktop")],
    http: Annotated[bool, typer.Option("--http", help="streamable HTTP to the service's /mcp")] = False,
    stdio: Annotated[bool, typer.Option("--stdio", help="the client starts 'mosaic-memory mcp'")] = False,
    write: Annotated[
        bool, typer.Option("--write", help="merge it into the client's file (other servers kept, backup made)")
    ] = False,
    url: Annotated[str | None, typer.Option("--url", help="the service's URL (default: MOSAIC_URL)")] = None,
    project: Annotated[
        Path | None, typer.Option("--project", help="the project's file (Claude Code: default, the current folder)")
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", help="write this file instead of the client's own")] = None,
    name: Annotated[str, typer.Option("--name", help="the server's name in the client")] = "mosaic",
) -> None:
    """Print (or with --write install) the MCP configuration for CLIENT, the key read from the
    MOSAIC_API_KEY environment variable wherever the client can (see docs/agents.md)."""
    from mosaic_memory.capture.files import InstallError
    from mosaic_memory.capture.mcp_config import (
        CLIENTS,
        Target,
        config_path,
        default_transport,
        install,
        notes,
        service_url,
        snippet,
    )
    from mosaic_memory.config import default_config_file

    if client not in CLIENTS:
        fail(f"unknown client {client!r}; known: {', '.join(CLIENTS)}")
    if http and stdio:
        fail("choose one of --http and --stdio")
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        fail(f"--name must be letters, digits, '-' or '_' (got {name!r})")
    transport = "http" if http else "stdio" if stdio else default_transport(client)
    try:
        target = Target(client, transport, service_url(url if url is not None else settings().url), name=name)
        lines = notes(target, default_config_file())
        if not write:
            sys.stdout.write(snippet(target))
            for line in lines:
                err_console.print(line, markup=False, highlight=False, soft_wrap=True)
            return
        path = (file or config_path(client, project=project)).expanduser()
        change = install(target, path)
    except InstallError as exc:
        fail(str(exc))
    console.print(f"{change.path}: {change.note}", markup=False, highlight=False, soft_wrap=True)
    if change.backup is not None:
        console.print(f"the previous file is kept in {change.backup}", markup=False, highlight=False)
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(mcp_app, name="mcp")


__all__ = ["mcp_app", "register"]
