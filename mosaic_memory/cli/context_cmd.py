"""``mosaic-memory context``: the block of memory for a session's start, through the client."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mosaic_memory.cli.common import JsonOpt, call_api, err_console, print_json, settings


def context(
    query: Annotated[str | None, typer.Option("--query", "-q", help="what the session is about")] = None,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="the project's id (adds its preferences)")
    ] = None,
    budget: Annotated[
        int | None, typer.Option("--budget", "-b", min=50, max=20_000, help="most tokens of the block (default 1500)")
    ] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="preferences, insights, skills (repeatable)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the block of memory an agent gets at session start: preferences first, then the
    insights and skills that fit the query (or the project), within the token budget."""
    out = call_api(settings(), lambda mm: mm.context(query, project=project, token_budget=budget, kinds=kind))
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    if not out.text:
        err_console.print("no memory to show", highlight=False)
        return
    # Plain stdout, not rich: the block is meant to be piped into an agent as it is.
    sys.stdout.write(out.text + "\n")
    err_console.print(f"{out.tokens} of {out.token_budget} tokens ({out.tokenizer})", highlight=False)
