"""What the TUI asks of the service, kind by kind, through the Python client (REST only).

The screens speak of rows and items; this module turns them into client calls: a search or a
listing per kind, the full item behind a row, an edit, a delete, an insight's sources, a
preference's history, the jobs ledger. It holds no domain rules: the service decides, the errors
it answers with come back as :class:`~mosaic_memory.client.MosaicClientError`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from jobs.ledger.schemas import JobOut, JobRunOut
from mosaic_memory.client import AsyncMosaicClient, MosaicClientError
from mosaic_memory.insights.schemas import InsightOut
from mosaic_memory.logs.schemas import LogOut
from mosaic_memory.preferences.schemas import PreferenceChange, PreferenceOut
from mosaic_memory.skills.schemas import SkillOut

__all__ = [
    "KINDS",
    "MODES",
    "Backend",
    "EditField",
    "Item",
    "Row",
    "edit_fields",
    "new_fields",
    "parse_edit",
    "parse_fields",
]

KindName = Literal["insights", "preferences", "skills", "logs"]
KINDS: tuple[KindName, ...] = ("insights", "preferences", "skills", "logs")
MODES = ("hybrid", "semantic", "keyword")
Item = InsightOut | PreferenceOut | SkillOut | LogOut

LIST_LIMIT = 100  # rows shown for an empty query (newest first) and hits asked of a search


@dataclass(frozen=True)
class Row:
    """One line of the results list: a search hit or a listed item."""

    kind: KindName
    id: str
    text: str
    owner: str
    when: datetime
    tags: list[str] = field(default_factory=list)
    score: float | None = None
    item: Item | None = None  # already fetched (listings); a hit's item is fetched on demand


def _row(kind: KindName, item: Item) -> Row:
    if isinstance(item, InsightOut):
        return Row(kind, str(item.id), item.content, item.owner, item.created_at, item.tags, item=item)
    if isinstance(item, PreferenceOut):
        text = f"{item.key}: {_value_text(item.value)}" + (f"  [{item.scope}]" if item.scope else "")
        return Row(kind, str(item.id), text, item.owner, item.updated_at, item=item)
    if isinstance(item, SkillOut):
        return Row(
            kind, str(item.id), f"{item.name}: {item.description}", item.owner, item.created_at, item.tags, item=item
        )
    where = " ".join(x for x in (item.session_id, item.agent_id) if x)
    return Row(
        kind,
        str(item.id),
        f"[{where}] {item.content}" if where else item.content,
        item.owner,
        item.occurred_at,
        item=item,
    )


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class EditField:
    """One editable field of an item, as the edit dialog shows it."""

    name: str
    label: str
    value: str
    multiline: bool = False


def edit_fields(item: Item) -> list[EditField]:
    """The fields a person may edit for ``item``; empty for a kind that cannot be edited (logs)."""
    if isinstance(item, InsightOut):
        return [
            EditField("content", "Content", item.content, multiline=True),
            EditField("tags", "Tags (comma-separated)", ", ".join(item.tags)),
            EditField("importance", "Importance (0 to 1)", f"{item.importance:g}"),
        ]
    if isinstance(item, SkillOut):
        return [
            EditField("description", "Description", item.description),
            EditField("instructions", "Instructions", item.instructions, multiline=True),
            EditField("tags", "Tags (comma-separated)", ", ".join(item.tags)),
        ]
    if isinstance(item, PreferenceOut):
        return [EditField("value", "Value (JSON, or plain text)", _value_text(item.value), multiline=True)]
    return []


def new_fields(kind: KindName) -> list[EditField]:
    """The fields of a new item of ``kind``; empty for logs (agents write those)."""
    if kind == "insights":
        return [
            EditField("content", "Content", "", multiline=True),
            EditField("tags", "Tags (comma-separated)", ""),
            EditField("importance", "Importance (0 to 1)", "0.5"),
        ]
    if kind == "preferences":
        return [
            EditField("key", "Key (letters, digits, . _ -)", ""),
            EditField("value", "Value (JSON, or plain text)", "", multiline=True),
            EditField("scope", "Scope (empty: global; agent:ID or project:ID)", ""),
        ]
    if kind == "skills":
        return [
            EditField("name", "Name (e.g. deploy-to-staging)", ""),
            EditField("description", "Description", ""),
            EditField("instructions", "Instructions", "", multiline=True),
            EditField("tags", "Tags (comma-separated)", ""),
        ]
    return []


OPTIONAL = frozenset({"tags", "scope", "instructions"})  # left empty on a new item: not sent


def parse_fields(fields: list[EditField], raw: dict[str, str], *, changed_only: bool) -> dict[str, Any]:
    """The values to send for the dialog's ``raw`` text: with ``changed_only`` (an edit) only the
    fields whose text differs from what the dialog showed; else (a new item) every field but the
    optional ones left empty.

    Raises ValueError with a readable message for text that cannot be what the field holds."""
    before = {f.name: f.value for f in fields}
    changes: dict[str, Any] = {}
    for name, text in raw.items():
        if (changed_only and text == before.get(name)) or (not changed_only and name in OPTIONAL and not text):
            continue
        if name == "tags":
            changes[name] = [t.strip() for t in text.split(",") if t.strip()]
        elif name == "importance":
            try:
                importance = float(text)
            except ValueError:
                raise ValueError(f"importance must be a number from 0 to 1, got {text!r}") from None
            if not 0.0 <= importance <= 1.0:
                raise ValueError(f"importance must be from 0 to 1, got {text}")
            changes[name] = importance
        elif name == "value":
            try:
                changes[name] = json.loads(text)
            except ValueError:
                changes[name] = text
        elif name in OPTIONAL:
            changes[name] = text.strip()
        else:
            if not text.strip():
                raise ValueError(f"{name} must not be blank")
            changes[name] = text
    return changes


def parse_edit(item: Item, raw: dict[str, str]) -> dict[str, Any]:
    """The changes to send for an edit of ``item``: only the fields that changed."""
    return parse_fields(edit_fields(item), raw, changed_only=True)


class Backend:
    """The TUI's calls to the service; every method may raise MosaicClientError."""

    def __init__(self, client: AsyncMosaicClient) -> None:
        self.client = client

    @property
    def url(self) -> str:
        return self.client.shown_url

    async def whoami(self) -> dict[str, Any]:
        """The key's user, the owners it may read (``user:NAME``, ``team:NAME``) and its scopes."""
        return await self.client.me()

    async def rows(self, kind: KindName, query: str, owner: str | None, mode: str = "hybrid") -> list[Row]:
        """A search of ``kind`` for ``query`` in ``mode``, or its newest items when the query is blank."""
        if query.strip():
            found = await self.client.search(query, k=LIST_LIMIT, kinds=[kind], owner=owner, mode=mode)
            return [Row(kind, str(h.id), h.content, h.owner, h.created_at, h.tags, score=h.score) for h in found.hits]
        items: list[Item]
        if kind == "insights":
            items = list((await self.client.list_insights(limit=LIST_LIMIT, owner=owner)).items)
        elif kind == "preferences":
            items = list((await self.client.list_preferences(limit=LIST_LIMIT, owner=owner)).items)
        elif kind == "skills":
            items = list((await self.client.list_skills(limit=LIST_LIMIT, owner=owner)).items)
        else:
            items = list((await self.client.list_logs(limit=LIST_LIMIT, owner=owner)).items)
        return [_row(kind, item) for item in items]

    async def item(self, row: Row) -> Item:
        """The full item behind ``row``."""
        if row.item is not None:
            return row.item
        if row.kind == "insights":
            return await self.client.get_insight(row.id)
        if row.kind == "skills":
            return await self.client.get_skill(row.id)
        if row.kind == "logs":
            return await self.client.get_log(row.id)
        return await self._preference(row)

    async def _preference(self, row: Row) -> PreferenceOut:
        # A preference is addressed by owner, key and scope; its hit reads "key: value".
        key = row.text.split(": ", 1)[0]
        page = await self.client.list_preferences(owner=row.owner, prefix=key, limit=LIST_LIMIT)
        for pref in page.items:
            if str(pref.id) == row.id:
                return pref
        raise MosaicClientError(404, "PreferenceNotFound", f"preference {key!r} of {row.owner} no longer exists")

    async def create(self, kind: KindName, values: dict[str, Any], owner: str | None) -> Item:
        """Store a new item of ``kind`` (values from :func:`parse_fields` over :func:`new_fields`)
        for ``owner`` (None: the key's user)."""
        if kind == "insights":
            content = values.pop("content", "")
            return await self.client.remember(content, owner=owner, **values)
        if kind == "preferences":
            return await self.client.set_preference(
                values.get("key", ""), values.get("value", ""), scope=values.get("scope") or None, owner=owner
            )
        if kind == "skills":
            return await self.client.create_skill(
                values.get("name", ""),
                values.get("description", ""),
                instructions=values.get("instructions"),
                tags=values.get("tags"),
                owner=owner,
            )
        raise MosaicClientError(405, "NotCreatable", "agent logs are written by agents (POST /v1/logs)")

    async def update(self, item: Item, changes: dict[str, Any]) -> Item:
        """Apply ``changes`` (from :func:`parse_edit`) to ``item``; the stored item comes back."""
        if isinstance(item, InsightOut):
            return await self.client.update_insight(item.id, **changes)
        if isinstance(item, SkillOut):
            return await self.client.update_skill(item.id, **changes)
        if isinstance(item, PreferenceOut):
            return await self.client.set_preference(
                item.key, changes["value"], scope=item.scope or None, owner=item.owner
            )
        raise MosaicClientError(405, "NotEditable", "agent logs are append-only: they cannot be edited")

    async def delete(self, item: Item) -> None:
        if isinstance(item, InsightOut):
            await self.client.delete_insight(item.id)
        elif isinstance(item, SkillOut):
            await self.client.delete_skill(item.id)
        elif isinstance(item, PreferenceOut):
            await self.client.delete_preference(item.key, scope=item.scope or None, owner=item.owner)
        else:
            raise MosaicClientError(405, "NotDeletable", "agent logs are append-only: they cannot be deleted")

    async def sources(self, insight_id: uuid.UUID) -> list[LogOut]:
        """The logs an insight was summarized from, oldest first."""
        out: list[LogOut] = []
        cursor: str | None = None
        while True:
            page = await self.client.insight_sources(insight_id, limit=LIST_LIMIT, cursor=cursor)
            out.extend(page.items)
            cursor = page.next_cursor
            if not cursor or len(out) >= 1000:
                return out

    async def history(self, pref: PreferenceOut) -> list[PreferenceChange]:
        return await self.client.preference_history(pref.key, scope=pref.scope or None, owner=pref.owner)

    async def session_logs(self, session_id: str, owner: str) -> list[LogOut]:
        """One session's logs in order (the first page)."""
        return list((await self.client.list_logs(session_id=session_id, owner=owner, limit=LIST_LIMIT)).items)

    # jobs (admin keys) -----------------------------------------------------------------------
    async def jobs(self) -> list[JobOut]:
        return await self.client.list_jobs()

    async def runs(self, limit: int = 100) -> list[JobRunOut]:
        return await self.client.job_runs(limit=limit)

    async def run_job(self, job_id: str, *, dry_run: bool) -> JobRunOut:
        return await self.client.run_job(job_id, dry_run=dry_run)

    async def rollback(self, run_id: uuid.UUID) -> JobRunOut:
        return await self.client.rollback_job_run(run_id)
