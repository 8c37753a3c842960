"""Context at session start: the caller's preferences, then the memory that fits the task, in a token budget."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from embeddings.tokens import TokenCounter
from mosaic_memory.config import Settings
from mosaic_memory.context.markers import CONTEXT_CLOSE, CONTEXT_OPEN
from mosaic_memory.context.schemas import (
    CONTEXT_KINDS,
    ContextCounts,
    ContextItem,
    ContextKind,
    ContextRequest,
    ContextResponse,
)
from mosaic_memory.insights.service import InsightService
from mosaic_memory.models import utc_now
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.preferences.schemas import PreferenceOut
from mosaic_memory.preferences.service import PreferenceService
from mosaic_memory.search.schemas import SearchRequest
from mosaic_memory.search.service import SearchService
from mosaic_memory.skills.service import SkillService

__all__ = ["ContextService", "render_value"]

HEADERS: dict[ContextKind, str] = {"preferences": "## Preferences", "insights": "## Insights", "skills": "## Skills"}
# Preferences read for one block, at most: a user with more has them by key in get_preferences.
MAX_PREFERENCES = 2000
PREFERENCE_PAGE = 500
# Insights looked at when there is neither query nor project: the newest, then by importance.
RECENT_INSIGHTS = 200
# The trailer's numbers may be longer than the ones its reserve was counted with; this covers it.
TRAILER_SLACK = 4


@dataclass
class _Entry:
    """One memory as lines of the block: ``full``, or ``short`` when only that fits (skills)."""

    kind: ContextKind
    id: uuid.UUID
    full: str
    short: str | None = None


def render_value(value: Any) -> str:
    """A preference value as the block shows it: a string as written, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _clean(text: str) -> str:
    """Memory text fit for a bullet: marker strings defused (a stored text quoting them must not
    close the block early), continuation lines indented under the bullet."""
    text = text.replace(CONTEXT_OPEN, "(mosaic-memory-context)").replace(CONTEXT_CLOSE, "(/mosaic-memory-context)")
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    return "\n  ".join(lines)


def _trailer(omitted: ContextCounts) -> str:
    parts = []
    for kind in CONTEXT_KINDS:
        n = getattr(omitted, kind)
        if n:
            parts.append(f"{n} {kind if n != 1 else kind[:-1]}")
    return f"[left out to fit the token budget: {', '.join(parts)}]" if parts else ""


def _scope_rank(scope: str, project_scope: str | None, agent_scope: str | None) -> int | None:
    """Which preferences a block shows (the global ones, the project's, the key's agent's) and
    in which order: the more specific first. None: not for this session."""
    if project_scope is not None and scope == project_scope:
        return 0
    if agent_scope is not None and scope == agent_scope:
        return 1
    if scope == "":
        return 2
    return None


class ContextService:
    """Builds the block of memory an agent gets at session start.

    Guarantees: the block holds only the caller's memory (each part comes from a service that
    scopes by the principal); its preferences come first (global, the project's and the key's
    agent's; per key the most specific scope, the caller's own before a team's), then insights
    and skills about the query (or the project when there is no query; see ContextSettings) in
    order of relevance, or with neither the pinned, most important and newest insights; it never
    takes more than ``token_budget`` tokens of ``tokens``, markers and its last line included; a
    memory that does not fit is left out and counted in ``omitted`` (a skill whose instructions
    do not fit is shown by name and description). Raises what SearchService raises
    (EmbeddingUnavailable).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        search: SearchService,
        preferences: PreferenceService,
        insights: InsightService,
        skills: SkillService,
        tokens: TokenCounter,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.clock = clock
        self.settings = settings
        self.search = search
        self.preferences = preferences
        self.insights = insights
        self.skills = skills
        self.tokens = tokens

    async def build(self, session: AsyncSession, principal: Principal, req: ContextRequest) -> ContextResponse:
        kinds = set(req.kinds or CONTEXT_KINDS)
        entries: list[_Entry] = []
        if "preferences" in kinds:
            entries += await self._preferences(session, principal, req.project)
        ranked = [k for k in ("insights", "skills") if k in kinds]
        query = req.query or req.project
        if ranked and query:
            entries += await self._relevant(session, principal, query, ranked, req.token_budget)
        elif "insights" in kinds:
            entries += await self._important(session, principal)
        return await asyncio.to_thread(self._pack, entries, req.token_budget)

    # what goes in -------------------------------------------------------------------------
    async def _preferences(self, session: AsyncSession, principal: Principal, project: str | None) -> list[_Entry]:
        project_scope = f"project:{project}" if project else None
        agent_scope = f"agent:{principal.agent_id}" if principal.agent_id else None
        found: list[PreferenceOut] = []
        for scope in dict.fromkeys(s for s in (project_scope, agent_scope, "") if s is not None):
            cursor = None
            while len(found) < MAX_PREFERENCES:
                page = await self.preferences.list(
                    session, principal, limit=PREFERENCE_PAGE, cursor=cursor, scope=scope
                )
                found += page.items
                cursor = page.next_cursor
                if cursor is None:
                    break
        owner_rank = {owner.label: i for i, owner in enumerate(principal.owners)}
        best: dict[str, tuple[tuple[int, int], PreferenceOut]] = {}
        for pref in found:
            scope_rank = _scope_rank(pref.scope, project_scope, agent_scope)
            if scope_rank is None:
                continue
            rank = (scope_rank, owner_rank.get(pref.owner, len(owner_rank)))
            if pref.key not in best or rank < best[pref.key][0]:
                best[pref.key] = (rank, pref)
        chosen = sorted(best.values(), key=lambda pair: (pair[0], pair[1].key))
        entries = []
        for _, pref in chosen:
            where = f" ({pref.scope})" if pref.scope else ""
            entries.append(_Entry("preferences", pref.id, f"- {pref.key}{where}: {_clean(render_value(pref.value))}"))
        return entries

    async def _relevant(
        self, session: AsyncSession, principal: Principal, query: str, kinds: Sequence[str], budget: int
    ) -> list[_Entry]:
        """Insights and skills ranked for ``query``, best first, that are about it: a cosine of
        ``context.min_cosine`` or more, or ``context.min_keyword`` of its words (ContextSettings)."""
        k = max(10, min(100, budget // 20))  # a short memory costs about 20 tokens
        request = SearchRequest.model_validate({"query": query, "k": k, "kinds": list(kinds)})
        found = await self.search.search(session, principal, request)
        cfg = self.settings.context
        entries = []
        for hit in found.hits:
            about = hit.scores.get("semantic", -1.0) >= cfg.min_cosine
            if not about and hit.scores.get("keyword", 0.0) < cfg.min_keyword - 1e-6:
                continue
            if hit.kind == "insights":
                entries.append(_Entry("insights", hit.id, f"- {_clean(hit.content)}"))
            elif hit.kind == "skills":
                skill = await self.skills.get(session, principal, hit.id)
                short = f"- {_clean(f'{skill.name}: {skill.description}')}"
                steps = _clean(skill.instructions)
                entries.append(_Entry("skills", hit.id, f"{short}\n  {steps}" if steps else short, short))
        return entries

    async def _important(self, session: AsyncSession, principal: Principal) -> list[_Entry]:
        """With nothing to rank for: current insights, pinned first, then by importance, then newest."""
        page = await self.insights.list_page(session, principal, limit=RECENT_INSIGHTS, include_history=False)
        now = self.clock()
        current = [i for i in page.items if i.expires_at is None or i.expires_at > now]
        current.sort(key=lambda i: (i.pinned, i.importance, i.created_at), reverse=True)
        return [_Entry("insights", i.id, f"- {_clean(i.content)}") for i in current]

    # packing ------------------------------------------------------------------------------
    def _pack(self, entries: list[_Entry], budget: int) -> ContextResponse:
        """Greedy: each entry in turn if it fits (with its section's header the first time),
        else its short form, else left out. Runs in a worker thread (tokenizing is CPU work)."""
        empty = ContextCounts()
        if not entries:
            return self._response("", 0, budget, empty, empty, [])
        texts = [e.full for e in entries] + [e.short or "" for e in entries]
        fixed = [CONTEXT_OPEN, CONTEXT_CLOSE, *HEADERS.values()]
        counts = self.tokens.count(texts + fixed)
        full, short = counts[: len(entries)], counts[len(entries) : 2 * len(entries)]
        frame = counts[2 * len(entries)] + counts[2 * len(entries) + 1]
        header = dict(zip(HEADERS, counts[2 * len(entries) + 2 :], strict=True))

        worst = ContextCounts(**{kind: sum(1 for e in entries if e.kind == kind) for kind in CONTEXT_KINDS})
        reserve = self.tokens.count([_trailer(worst)])[0] + TRAILER_SLACK
        # First as if everything fits (no trailer needed); if something is left out, again with
        # room kept for the trailer that says so.
        chosen = self._choose(entries, full, short, header, budget - frame)
        if len(chosen) < len(entries):
            chosen = self._choose(entries, full, short, header, budget - frame - reserve)
        while True:
            text, items, included, omitted = self._render(entries, chosen, full, short)
            tokens = self.tokens.count([text])[0]
            if tokens <= budget:
                return self._response(text, tokens, budget, included, omitted, items)
            if not chosen:  # not even the frame and its trailer fit: say it in the counts only
                return self._response("", 0, budget, included, omitted, items)
            # The whole counted more than its parts (tokens merging across a join): drop the last.
            chosen.popitem()

    @staticmethod
    def _choose(
        entries: list[_Entry], full: list[int], short: list[int], header: dict[ContextKind, int], room: int
    ) -> dict[int, bool]:
        """Entry index → whether its full form was chosen (False: the short one), in order."""
        chosen: dict[int, bool] = {}
        opened: set[ContextKind] = set()
        for i, entry in enumerate(entries):
            extra = 0 if entry.kind in opened else header[entry.kind]
            if full[i] + extra <= room:
                chosen[i] = True
            elif entry.short is not None and short[i] + extra <= room:
                chosen[i] = False
            else:
                continue
            room -= extra + (full[i] if chosen[i] else short[i])
            opened.add(entry.kind)
        return chosen

    @staticmethod
    def _render(
        entries: list[_Entry], chosen: dict[int, bool], full: list[int], short: list[int]
    ) -> tuple[str, list[ContextItem], ContextCounts, ContextCounts]:
        included = ContextCounts()
        omitted = ContextCounts()
        lines: list[str] = []
        items: list[ContextItem] = []
        for kind in CONTEXT_KINDS:
            section = [i for i in chosen if entries[i].kind == kind]
            if section:
                lines.append(HEADERS[kind])
            for i in section:
                text = entries[i].full if chosen[i] else (entries[i].short or "")
                lines.append(text)
                items.append(ContextItem(kind=kind, id=entries[i].id, tokens=full[i] if chosen[i] else short[i]))
            setattr(included, kind, len(section))
            setattr(omitted, kind, sum(1 for i, e in enumerate(entries) if e.kind == kind and i not in chosen))
        trailer = _trailer(omitted)
        if trailer:
            lines.append(trailer)
        if not lines:
            return "", items, included, omitted
        return "\n".join([CONTEXT_OPEN, *lines, CONTEXT_CLOSE]), items, included, omitted

    def _response(
        self,
        text: str,
        tokens: int,
        budget: int,
        included: ContextCounts,
        omitted: ContextCounts,
        items: list[ContextItem],
    ) -> ContextResponse:
        return ContextResponse(
            text=text,
            tokens=tokens,
            token_budget=budget,
            tokenizer=self.tokens.name,
            included=included,
            omitted=omitted,
            items=items,
        )
