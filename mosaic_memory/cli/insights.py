"""``mosaic-memory insights ...`` and ``mosaic-memory search`` (alias ``recall``), through the client."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mosaic_memory.cli.common import (
    JsonOpt,
    call_api,
    console,
    err_console,
    fail,
    listed_as_json_or_empty,
    note_redacted,
    print_json,
    settings,
    short_id,
    shorten,
    shown_as_json_or_empty,
)

if TYPE_CHECKING:
    from mosaic_memory.insights.schemas import InsightOut
    from mosaic_memory.search.schemas import SearchResponse

insights_app = typer.Typer(help="Insights: learned facts.", no_args_is_help=True)

TagOpt = Annotated[list[str] | None, typer.Option("--tag", "-t", help="a tag (repeatable)")]
OwnerOpt = Annotated[str | None, typer.Option(help="'team:NAME' for a team's memory")]


def _print_insight(out: InsightOut, as_json: bool) -> None:
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    table = Table("field", "value", show_header=False)
    for name in (
        "id",
        "owner",
        "content",
        "category",
        "tags",
        "importance",
        "confidence",
        "pinned",
        "valid_from",
        "valid_to",
        "superseded_by",
        "expires_at",
        "access_count",
        "created_at",
    ):
        value = getattr(out, name)
        table.add_row(name, ", ".join(value) if isinstance(value, list) else "" if value is None else str(value))
    console.print(table)


def add(
    text: str,
    tag: TagOpt = None,
    category: Annotated[str | None, typer.Option(help="a category")] = None,
    importance: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    pinned: Annotated[bool, typer.Option("--pinned", help="never decays or expires by policy")] = False,
    ttl: Annotated[float | None, typer.Option("--ttl", min=1, help="expire after this many seconds")] = None,
    supersedes: Annotated[str | None, typer.Option(help="id of an insight this one replaces")] = None,
    owner: OwnerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store an insight in the running service."""
    given: dict[str, Any] = {"pinned": pinned or None, "ttl_seconds": ttl, "supersedes": supersedes}
    extra: dict[str, Any] = {k: v for k, v in given.items() if v}
    out = call_api(
        settings(),
        lambda mm: mm.remember(text, tags=tag, category=category, importance=importance, owner=owner, **extra),
    )
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    state = "merged into" if out.merged else "already stored as" if out.deduplicated else "stored"
    console.print(f"{state} {out.id} ({out.owner})", highlight=False)
    note_redacted(out.secrets_redacted)


insights_app.command("add")(add)


@insights_app.command("list")
def list_(
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="only with this tag")] = None,
    category: Annotated[str | None, typer.Option(help="only this category")] = None,
    owner: OwnerOpt = None,
    current: Annotated[bool, typer.Option("--current", help="leave out superseded insights")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of a previous page")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List insights, newest first."""
    page = call_api(
        settings(),
        lambda mm: mm.list_insights(
            limit=limit,
            cursor=cursor,
            tag=tag,
            category=category,
            owner=owner,
            include_history=None if not current else False,
        ),
    )
    if shown_as_json_or_empty(page, page.items, as_json, "no insights"):
        return
    table = Table("id", "content", "tags", "importance", "owner", "created")
    for i in page.items:
        table.add_row(
            short_id(i.id),
            shorten(i.content, 80),
            ",".join(i.tags),
            f"{i.importance:.2f}",
            i.owner,
            i.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", highlight=False)


@insights_app.command("get")
def get(insight_id: str, as_json: JsonOpt = False) -> None:
    """Show one insight."""
    _print_insight(call_api(settings(), lambda mm: mm.get_insight(insight_id)), as_json)


@insights_app.command("update")
def update(
    insight_id: str,
    content: Annotated[str | None, typer.Option(help="new text (re-embedded)")] = None,
    tag: TagOpt = None,
    category: Annotated[str | None, typer.Option()] = None,
    importance: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    pinned: Annotated[bool | None, typer.Option("--pinned/--unpinned")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Edit an insight; only the options given change."""
    changes = {"content": content, "tags": tag, "category": category, "importance": importance, "pinned": pinned}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        fail("nothing to update: give --content, --tag, --category, --importance or --pinned/--unpinned")
    _print_insight(call_api(settings(), lambda mm: mm.update_insight(insight_id, **changes)), as_json)


@insights_app.command("delete")
def delete(insight_id: str) -> None:
    """Delete an insight (its source logs stay)."""
    call_api(settings(), lambda mm: mm.delete_insight(insight_id))
    console.print(f"deleted {insight_id}", highlight=False)


@insights_app.command("sources")
def sources(
    insight_id: str,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="events per page")] = 100,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of a previous page")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The agent logs an insight was summarized from, oldest first."""
    page = call_api(settings(), lambda mm: mm.insight_sources(insight_id, limit=limit, cursor=cursor))
    if shown_as_json_or_empty(page, page.items, as_json, "no source logs"):
        return
    table = Table("occurred", "session", "agent", "content", "id")
    for e in page.items:
        table.add_row(
            e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.session_id or "",
            e.agent_id or "",
            shorten(e.content),
            short_id(e.id),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", highlight=False)


@insights_app.command("history")
def history(insight_id: str, as_json: JsonOpt = False) -> None:
    """The insights this one superseded (its correction history), oldest first."""
    replaced = call_api(settings(), lambda mm: mm.insight_history(insight_id))
    if listed_as_json_or_empty(replaced, as_json, "it superseded nothing"):
        return
    table = Table("created", "content", "id")
    for i in replaced:
        table.add_row(i.created_at.strftime("%Y-%m-%d %H:%M:%S"), shorten(i.content), short_id(i.id))
    console.print(table)


def _metadata(pairs: list[str] | None) -> dict[str, Any] | None:
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            fail(f"--meta takes KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def search(
    query: str,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="how many hits")] = 10,
    mode: Annotated[str, typer.Option(help="semantic, keyword or hybrid")] = "hybrid",
    kind: Annotated[list[str] | None, typer.Option("--kind", help="insights, preferences, logs, skills")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="any of these tags")] = None,
    tag_all: Annotated[list[str] | None, typer.Option("--tag-all", help="all of these tags")] = None,
    category: Annotated[str | None, typer.Option(help="insight category")] = None,
    agent: Annotated[str | None, typer.Option(help="logs of this agent")] = None,
    session: Annotated[str | None, typer.Option(help="logs of this session")] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", help="metadata KEY=VALUE (JSON values)")] = None,
    after: Annotated[datetime | None, typer.Option(help="created at or after (ISO 8601)")] = None,
    before: Annotated[datetime | None, typer.Option(help="created before (ISO 8601)")] = None,
    min_score: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    owner: OwnerOpt = None,
    history: Annotated[bool, typer.Option("--history", help="include superseded and expired insights")] = False,
    recency: Annotated[float, typer.Option(min=0.0, max=1.0, help="weight of recency")] = 0.0,
    importance: Annotated[float, typer.Option(min=0.0, max=1.0, help="weight of importance")] = 0.0,
    diversity: Annotated[float, typer.Option(min=0.0, max=1.0, help="MMR diversity")] = 0.0,
    federated: Annotated[bool, typer.Option("--federated", help="also search the federation peers")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Search memory in the running service (semantic, keyword or hybrid)."""
    filters = {
        "tags": tag,
        "tags_all": tag_all,
        "category": category,
        "agent_id": agent,
        "session_id": session,
        "metadata": _metadata(meta),
        "created_after": after.isoformat() if after else None,
        "created_before": before.isoformat() if before else None,
    }
    options: dict[str, Any] = {"owner": owner, "min_score": min_score}
    if history:
        options["include_history"] = True
    if federated:
        options["federated"] = True
    for name, value in (("recency_weight", recency), ("importance_weight", importance), ("diversity", diversity)):
        if value:
            options[name] = value
    out: SearchResponse = call_api(
        settings(),
        lambda mm: mm.search(
            query, k=k, mode=mode, kinds=kind, filters={k_: v for k_, v in filters.items() if v} or None, **options
        ),
    )
    for failure in out.peers_failed:  # stderr, so --json output stays clean
        err_console.print(f"peer {failure.peer} did not answer: {failure.reason}", highlight=False)
    if shown_as_json_or_empty(out, out.hits, as_json, "no matches"):
        return
    table = Table("score", "kind", "content", "tags", "owner", "id", *(("origin",) if out.federated else ()))
    for hit in out.hits:
        table.add_row(
            f"{hit.score:.3f}",
            hit.kind,
            shorten(hit.content),
            ",".join(hit.tags),
            hit.owner,
            short_id(hit.id),
            *((hit.origin,) if out.federated else ()),
        )
    console.print(table)
