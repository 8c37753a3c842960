"""How items, logs and job runs read in the detail panes: Rich renderables, no widgets."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from jobs.ledger.schemas import JobRunOut
from mosaic_memory.insights.schemas import InsightOut
from mosaic_memory.logs.schemas import LogOut
from mosaic_memory.preferences.schemas import PreferenceChange, PreferenceOut
from mosaic_memory.skills.schemas import SkillOut
from mosaic_memory.tui.backend import Item

__all__ = ["item_detail", "one_line", "run_detail", "when"]


def when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M")


def one_line(text: str, width: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _fields(rows: list[tuple[str, Any]]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, datetime):
            value = when(value)
        table.add_row(name, value if isinstance(value, Text) else Text(str(value)))
    return table


def item_detail(item: Item) -> RenderableType:
    """The whole item: its text first, then its fields."""
    if isinstance(item, InsightOut):
        state = "superseded" if item.superseded_by else "expired" if item.valid_to else ""
        return Group(
            Text("Insight", style="bold underline"),
            Text(item.content),
            Text(""),
            _fields(
                [
                    ("owner", item.owner),
                    ("tags", item.tags),
                    ("importance", f"{item.importance:g}"),
                    ("confidence", f"{item.confidence:g}"),
                    ("category", item.category),
                    ("pinned", "yes" if item.pinned else ""),
                    ("state", state),
                    ("superseded by", str(item.superseded_by) if item.superseded_by else None),
                    ("source", item.source.model_dump(exclude_none=True)),
                    ("recalled", f"{item.access_count} times"),
                    ("expires", item.expires_at),
                    ("created", item.created_at),
                    ("updated", item.updated_at),
                    ("id", str(item.id)),
                ]
            ),
            Text("s: the logs it was summarized from · e: edit · d: delete", style="dim"),
        )
    if isinstance(item, PreferenceOut):
        value = item.value if isinstance(item.value, str) else json.dumps(item.value, indent=2, ensure_ascii=False)
        return Group(
            Text(f"Preference {item.key}", style="bold underline"),
            Text(value),
            Text(""),
            _fields(
                [
                    ("owner", item.owner),
                    ("scope", item.scope or "(global)"),
                    ("mutable", "yes" if item.mutable else "no: agents may read it, not change it"),
                    ("source", item.source),
                    ("updated", item.updated_at),
                    ("created", item.created_at),
                ]
            ),
            Text("s: history of changes · e: edit · d: delete", style="dim"),
        )
    if isinstance(item, SkillOut):
        return Group(
            Text(f"Skill {item.name}", style="bold underline"),
            Text(item.description),
            Text(""),
            Text("Instructions", style="bold"),
            Text(item.instructions or "(none)"),
            Text(""),
            _fields([("owner", item.owner), ("tags", item.tags), ("updated", item.updated_at), ("id", str(item.id))]),
        )
    return Group(
        Text("Agent log", style="bold underline"),
        Text(item.content),
        Text(""),
        _fields(
            [
                ("session", item.session_id),
                ("agent", item.agent_id),
                ("level", item.level),
                ("occurred", item.occurred_at),
                ("tier", item.tier),
                ("summarized", item.summarized_at),
                ("metadata", item.metadata or None),
                ("owner", item.owner),
            ]
        ),
        Text("s: the whole session in order · logs are append-only", style="dim"),
    )


def log_line(log: LogOut) -> tuple[str, str, str, str]:
    return (when(log.occurred_at), log.session_id or "", log.agent_id or "", one_line(log.content))


def change_line(change: PreferenceChange) -> tuple[str, str, str, str]:
    def show(value: Any) -> str:
        return "" if value is None else value if isinstance(value, str) else json.dumps(value)

    return (
        when(change.changed_at),
        change.action,
        one_line(f"{show(change.old_value)} → {show(change.new_value)}"),
        change.changed_by or "",
    )


def run_detail(run: JobRunOut) -> RenderableType:
    """A ledger entry: what ran, what it counted and changed, and whether it was rolled back."""
    parts: list[RenderableType] = [
        Text(f"{run.job_id} run{' (dry run)' if run.dry_run else ''}: {run.status}", style="bold underline"),
        _fields(
            [
                ("trigger", run.trigger),
                ("started", run.started_at),
                ("finished", run.finished_at),
                ("progress", f"{run.progress:.0%}"),
                ("rolled back", run.rolled_back_at),
                ("message", run.message),
                ("id", str(run.id)),
            ]
        ),
    ]
    counts = {k: v for k, v in run.counts.items() if v}
    if counts:
        parts += [Text(""), Text("Counts", style="bold"), _fields([(k, v) for k, v in counts.items()])]
    if run.errors:
        parts += [Text(""), Text("Errors", style="bold red"), *(Text(one_line(str(e))) for e in run.errors[:20])]
    diff = run.changes.get("diff")
    if isinstance(diff, list) and diff:
        parts += [Text(""), Text("Would write", style="bold")]
        for group in diff[:50]:
            where = group.get("session_id") or group.get("day") or ""
            for text in group.get("insights", []):
                parts.append(Text(f"+ [{where}] {one_line(str(text), 160)}", style="green"))
    groups = run.changes.get("groups")
    if isinstance(groups, list) and groups:
        created = sum(len(g.get("created", [])) for g in groups)
        merged = sum(len(g.get("merged", [])) for g in groups)
        parts += [Text(""), Text(f"Changed: {created} insights created, {merged} merged, in {len(groups)} groups")]
    rollback = run.changes.get("rollback")
    if isinstance(rollback, dict):
        parts += [Text(""), Text("Rollback", style="bold"), _fields(list(rollback.items()))]
    return Group(*parts)
