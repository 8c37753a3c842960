"""``mosaic-memory prefs``: preferences in the running service (MOSAIC_URL, MOSAIC_API_KEY)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from mosaic_memory.cli.common import (
    JsonOpt,
    call_api,
    client,
    console,
    fail,
    note_redacted,
    print_json,
    run,
    settings,
    shorten,
    shown_as_json_or_empty,
)

prefs_app = typer.Typer(help="Preferences: key -> value, optionally per agent or project.", no_args_is_help=True)

ScopeOpt = Annotated[str | None, typer.Option("--scope", help="'agent:ID' or 'project:ID'; default everywhere")]
OwnerOpt = Annotated[str | None, typer.Option("--owner", help="'team:NAME' for a team's preference")]


def render_value(value: Any) -> str:
    """Strings bare, other JSON compact: how a value reads in a table."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@prefs_app.command("set")
def prefs_set(
    key: str,
    value: Annotated[str, typer.Argument(help="the value; a string unless --json-value")],
    scope: ScopeOpt = None,
    immutable: Annotated[
        bool | None,
        typer.Option("--immutable/--mutable", help="agents may read but not change it (omitted: keep as is)"),
    ] = None,
    json_value: Annotated[bool, typer.Option("--json-value", help="parse VALUE as JSON (numbers, lists...)")] = False,
    source: Annotated[str | None, typer.Option(help="user or agent (default from the key)")] = None,
    owner: OwnerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or replace a preference."""
    parsed: Any = value
    if json_value:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            fail(f"VALUE is not valid JSON ({exc.msg} at column {exc.colno}); drop --json-value to store it as text")
    cfg = settings()
    mutable = None if immutable is None else not immutable

    out = call_api(
        cfg, lambda mm: mm.set_preference(key, parsed, scope=scope, mutable=mutable, source=source, owner=owner)
    )
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    where = f" [{out.scope}]" if out.scope else ""
    lock = " (immutable)" if not out.mutable else ""
    verb = "created" if out.created else "set"
    console.print(f"{verb} {out.key}{where} = {render_value(out.value)}{lock} ({out.owner})", highlight=False)
    note_redacted(out.secrets_redacted)


@prefs_app.command("get")
def prefs_get(key: str, scope: ScopeOpt = None, owner: OwnerOpt = None, as_json: JsonOpt = False) -> None:
    """Print one preference's value."""
    cfg = settings()

    out = call_api(cfg, lambda mm: mm.get_preference(key, scope=scope, owner=owner))
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    console.print(render_value(out.value), highlight=False, soft_wrap=True)


@prefs_app.command("list")
def prefs_list(
    scope: ScopeOpt = None,
    owner: OwnerOpt = None,
    prefix: Annotated[str | None, typer.Option(help="keys starting with this")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of a previous page")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List preferences, by key."""
    cfg = settings()

    page = call_api(
        cfg, lambda mm: mm.list_preferences(scope=scope, owner=owner, prefix=prefix, limit=limit, cursor=cursor)
    )
    if shown_as_json_or_empty(page, page.items, as_json, "no preferences"):
        return
    table = Table("key", "value", "scope", "mutable", "source", "owner", "updated")
    for p in page.items:
        table.add_row(
            p.key,
            shorten(render_value(p.value), 80),
            p.scope,
            "yes" if p.mutable else "no",
            p.source,
            p.owner,
            p.updated_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", highlight=False)


@prefs_app.command("delete")
def prefs_delete(key: str, scope: ScopeOpt = None, owner: OwnerOpt = None) -> None:
    """Delete a preference (its history is kept)."""
    cfg = settings()

    async def go() -> None:
        async with client(cfg) as mm:
            await mm.delete_preference(key, scope=scope, owner=owner)

    run(go())
    console.print(f"deleted {key}" + (f" [{scope}]" if scope else ""), highlight=False)


@prefs_app.command("history")
def prefs_history(
    key: str,
    scope: ScopeOpt = None,
    owner: OwnerOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Every change of a preference, newest first."""
    cfg = settings()

    changes = call_api(cfg, lambda mm: mm.preference_history(key, scope=scope, owner=owner, limit=limit))
    if as_json:
        print_json([c.model_dump(mode="json") for c in changes])
        return
    table = Table("when", "action", "old", "new", "by", "source")
    for c in changes:
        table.add_row(
            c.changed_at.strftime("%Y-%m-%d %H:%M:%S"),
            c.action,
            "" if c.action == "create" else shorten(render_value(c.old_value), 40),
            "" if c.action == "delete" else shorten(render_value(c.new_value), 40),
            c.changed_by or "",
            c.source,
        )
    console.print(table)
