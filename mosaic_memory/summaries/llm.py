"""A summarizer over any OpenAI-compatible chat endpoint (``POST {base_url}/chat/completions``).

It asks for atomic facts as a JSON list, each fact citing the numbers of the events it comes
from, so every insight links to exactly its source logs; it retries transient failures (timeouts,
connection errors, 429 and 5xx) with backoff, and stops at a per-run budget of calls and tokens.
One instance serves one run: the budget counts from its creation.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from embeddings.urls import redact_url
from mosaic_memory.config import LLMSummarizerSettings
from mosaic_memory.errors import ConfigurationError, SummarizerBudgetExhausted, SummarizerUnavailable
from mosaic_memory.summaries.summarizers import Summary, SummaryGroup, clean_line, describe_group

__all__ = ["CONTRADICTION_PROMPT", "SYSTEM_PROMPT", "LLMSummarizer", "parse_facts"]

SYSTEM_PROMPT = (
    "You read the event log of an AI agent's work session and write down what is worth remembering "
    "later: facts about the user, their projects, systems, decisions, preferences and outcomes. "
    "Each event is numbered [n]. Answer with a JSON array and nothing else, one object per fact: "
    '{{"fact": "...", "sources": [n, ...]}}, where sources lists the numbers of the events the fact '
    "comes from. Each fact is atomic (one preference, decision or outcome; never two facts in one) "
    "and self-contained (it names the people, systems, versions and dates it is about). Keep every "
    "distinct fact; leave out chatter, acknowledgements, tool calls, transient steps and anything you "
    "are unsure of. At most {max_facts} facts."
)

CONTRADICTION_PROMPT = (
    "You compare two statements about the same user, project or system. Answer with one word: "
    "'yes' if the NEW statement contradicts or replaces the OLD one (both cannot be true now), "
    "otherwise 'no'."
)

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def _indices(value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for x in items:
        try:
            out.append(int(str(x).strip().strip("[]")))
        except ValueError:
            continue
    return tuple(dict.fromkeys(out))


def parse_facts(content: str) -> list[tuple[str, tuple[int, ...]]]:
    """Facts from a reply, each with the event numbers it cites (empty when it cites none): a JSON
    list of ``{"fact", "sources"}`` objects or of strings (also under ``{"facts": [...]}``), else
    one fact per line. A fact stated twice keeps the first one's citations plus the second's."""
    text = _FENCE.sub("", content.strip()).strip()
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        data = data.get("facts")
    facts: list[tuple[str, tuple[int, ...]]] = []
    if isinstance(data, list):
        for x in data:
            if isinstance(x, dict):
                fact = x.get("fact") or x.get("text") or x.get("content")
                if isinstance(fact, str) and fact.strip():
                    facts.append((fact.strip(), _indices(x.get("sources") or x.get("source") or [])))
            elif isinstance(x, str | int | float) and str(x).strip():
                facts.append((str(x).strip(), ()))
    else:
        lines = [_BULLET.sub("", line).strip() for line in text.splitlines()]
        facts = [(f, ()) for f in lines if f and not f.startswith(("[", "]", "{", "}"))]
    merged: dict[str, tuple[int, ...]] = {}
    for fact, sources in facts:
        merged[fact] = tuple(dict.fromkeys([*merged.get(fact, ()), *sources]))
    return list(merged.items())


def _chat_urls(base_url: str) -> tuple[str, str]:
    """The chat completions URL (the path extended, any query kept after it) and the same URL
    without user info or query, safe for messages: both may carry credentials."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/") + "/chat/completions"
    url = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    return url, redact_url(url, strip=True)


class LLMSummarizer:
    """Raises SummarizerUnavailable after the retries are spent or on a reply it cannot use, and
    SummarizerBudgetExhausted once the run's calls or tokens are spent."""

    name = "llm"

    def __init__(self, settings: LLMSummarizerSettings, *, max_facts: int = 8, max_logs: int = 200) -> None:
        if not settings.base_url:
            raise ConfigurationError(
                "the LLM summarizer needs MOSAIC_JOBS__LLM__BASE_URL (an OpenAI-compatible /v1 URL)"
            )
        self.settings = settings
        self.max_facts = max_facts
        self.max_logs = max_logs
        self.calls = 0
        self.tokens = 0

    def _first(self, group: SummaryGroup) -> int:
        """Index of the first line shown to the model (the newest ``max_logs`` are)."""
        return max(0, len(group.lines) - self.max_logs)

    def _messages(self, group: SummaryGroup) -> list[dict[str, str]]:
        first = self._first(group)
        events = "\n".join(
            f"[{n}] {line.occurred_at:%Y-%m-%d %H:%M} {line.level}: {clean_line(line.content, 500)}"
            for n, line in enumerate(group.lines[first:], start=1)
        )
        user = f"{describe_group(group)}. Events, oldest first:\n{events}"
        return [
            {"role": "system", "content": SYSTEM_PROMPT.format(max_facts=self.max_facts)},
            {"role": "user", "content": user},
        ]

    def _check_budget(self) -> None:
        s = self.settings
        if self.calls >= s.max_calls_per_run or self.tokens >= s.max_tokens_per_run:
            raise SummarizerBudgetExhausted(
                f"the LLM budget of this run is spent ({self.calls} calls, {self.tokens} tokens; limits "
                f"{s.max_calls_per_run} calls, {s.max_tokens_per_run} tokens); the rest waits for the next run"
            )

    async def summarize(self, group: SummaryGroup) -> list[Summary]:
        """Each fact cites the events it names (numbered from 1 in the prompt); a fact citing no
        event that was shown cites every event shown, so no insight is left without its sources."""
        content = await self._chat(self._messages(group), self.settings.max_tokens_per_call)
        facts = parse_facts(content)[: self.max_facts]
        if not facts:
            raise SummarizerUnavailable("the LLM endpoint answered without any fact")
        first = self._first(group)
        shown = len(group.lines) - first
        out = []
        for fact, cited in facts:
            sources = tuple(first + n - 1 for n in cited if 1 <= n <= shown)
            out.append(Summary(fact, sources or tuple(range(first, len(group.lines)))))
        return out

    async def contradicts(self, new: str, old: str) -> bool:
        """Whether ``new`` contradicts or replaces ``old`` (they cannot both be true now)."""
        messages = [
            {"role": "system", "content": CONTRADICTION_PROMPT},
            {"role": "user", "content": f"OLD: {old}\nNEW: {new}"},
        ]
        return (await self._chat(messages, 8)).strip().lower().startswith("yes")

    async def _chat(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        s = self.settings
        url, shown = _chat_urls(str(s.base_url))
        headers = {"Authorization": f"Bearer {s.api_key.get_secret_value()}"} if s.api_key else {}
        body = {"model": s.model, "messages": messages, "temperature": 0, "max_tokens": max_tokens}
        last = "no attempt"
        async with httpx.AsyncClient(timeout=s.timeout_seconds) as client:
            for attempt in range(s.max_retries + 1):
                self._check_budget()
                if attempt:
                    await asyncio.sleep(min(0.25 * 2 ** (attempt - 1), 5.0))
                self.calls += 1
                try:
                    response = await client.post(url, json=body, headers=headers)
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}"
                    continue
                if response.status_code == 429 or response.status_code >= 500:
                    last = f"HTTP {response.status_code}"
                    continue
                if response.status_code >= 400:
                    raise SummarizerUnavailable(f"the LLM endpoint {shown} answered HTTP {response.status_code}")
                return self._content(response)
        raise SummarizerUnavailable(f"the LLM endpoint {shown} failed {s.max_retries + 1} times (last: {last})")

    def _content(self, response: httpx.Response) -> str:
        try:
            data = response.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise SummarizerUnavailable("the LLM endpoint sent a reply without choices[0].message.content") from None
        usage = data.get("usage") or {}
        self.tokens += int(usage.get("total_tokens") or (len(json.dumps(data)) // 4))
        return str(content or "")
