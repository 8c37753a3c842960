"""``mosaic-memory skills``: procedural memory in the running service (MOSAIC_URL, MOSAIC_API_KEY)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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

skills_app = typer.Typer(help="Skills: named procedures, found by the task at hand.", no_args_is_help=True)


def _instructions(text: str | None, path: Path | None) -> str | None:
    if text is not None and path is not None:
        fail("give --instructions or --instructions-file, not both")
    if path is None:
        return text
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")


@skills_app.command("add")
def skills_add(
    name: str,
    description: Annotated[str, typer.Option("--description", "-d", help="what the skill does")],
    instructions: Annotated[str | None, typer.Option("--instructions", "-i", help="how to do it")] = None,
    instructions_file: Annotated[
        Path | None, typer.Option("--instructions-file", help="read the instructions from a file")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="a tag (repeatable)")] = None,
    owner: Annotated[str | None, typer.Option(help="'team:NAME' to store it for a team")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Store a skill."""
    steps = _instructions(instructions, instructions_file)
    cfg = settings()

    out = call_api(cfg, lambda mm: mm.create_skill(name, description, instructions=steps, tags=tag, owner=owner))
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    console.print(f"stored skill {out.name} {out.id} ({out.owner})", highlight=False)
    note_redacted(out.secrets_redacted)


@skills_app.command("list")
def skills_list(
    owner: Annotated[str | None, typer.Option(help="only this owner ('team:NAME')")] = None,
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="only skills with this tag")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of a previous page")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List skills, newest first."""
    cfg = settings()

    page = call_api(cfg, lambda mm: mm.list_skills(owner=owner, tag=tag, limit=limit, cursor=cursor))
    if shown_as_json_or_empty(page, page.items, as_json, "no skills"):
        return
    table = Table("name", "description", "tags", "owner", "id")
    for s in page.items:
        table.add_row(s.name, shorten(s.description, 70), ",".join(s.tags), s.owner, str(s.id))
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", highlight=False)


@skills_app.command("get")
def skills_get(skill_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOpt = False) -> None:
    """Print a skill with its instructions."""
    cfg = settings()

    out = call_api(cfg, lambda mm: mm.get_skill(skill_id))
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    console.print(f"[bold]{out.name}[/] ({out.owner}, {out.id})", highlight=False)
    console.print(out.description, highlight=False, soft_wrap=True)
    if out.tags:
        console.print("tags: " + ", ".join(out.tags), highlight=False)
    if out.instructions:
        console.print("\n" + out.instructions, highlight=False, soft_wrap=True, markup=False)


@skills_app.command("update")
def skills_update(
    skill_id: Annotated[str, typer.Argument(metavar="ID")],
    name: Annotated[str | None, typer.Option(help="a new name")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d", help="what the skill does")] = None,
    instructions: Annotated[str | None, typer.Option("--instructions", "-i", help="how to do it")] = None,
    instructions_file: Annotated[
        Path | None, typer.Option("--instructions-file", help="read the instructions from a file")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="replace the tags (repeatable)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a skill's name, description, instructions or tags (what is not given stays)."""
    steps = _instructions(instructions, instructions_file)
    given = {"name": name, "description": description, "instructions": steps, "tags": tag}
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        fail("nothing to change: give --name, --description, --instructions or --tag")
    cfg = settings()

    out = call_api(cfg, lambda mm: mm.update_skill(skill_id, **changes))
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    console.print(f"updated skill {out.name} {out.id}", highlight=False)
    note_redacted(out.secrets_redacted)


@skills_app.command("delete")
def skills_delete(skill_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Delete a skill."""
    cfg = settings()

    async def go() -> None:
        async with client(cfg) as mm:
            await mm.delete_skill(skill_id)

    run(go())
    console.print(f"deleted skill {skill_id}", highlight=False)


@skills_app.command("find")
def skills_find(
    task: str,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="how many skills")] = 5,
    mode: Annotated[str, typer.Option(help="semantic, keyword or hybrid")] = "hybrid",
    as_json: JsonOpt = False,
) -> None:
    """Which skill fits this task? Searches skills by meaning (and words, in hybrid mode)."""
    cfg = settings()

    out = call_api(cfg, lambda mm: mm.find_skills(task, k=k, mode=mode))
    if shown_as_json_or_empty(out, out.hits, as_json, "no matching skills"):
        return
    table = Table("score", "skill", "owner", "id")
    for hit in out.hits:
        table.add_row(f"{hit.score:.3f}", shorten(hit.content, 90), hit.owner, str(hit.id))
    console.print(table)
