"""Summarizers: turn one group of agent logs into a few readable insight texts.

A summarizer is anything with ``name`` and ``async summarize(group) -> list[str]``. The
extractive one (default) needs no network: it picks representative, non-redundant lines by
their embeddings (nearest to the group's centroid, then maximal marginal relevance) and prefixes
who, when and how many.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["ContradictionJudge", "ExtractiveSummarizer", "LogLine", "Summarizer", "SummaryGroup", "describe_group"]


@dataclass(frozen=True)
class LogLine:
    id: uuid.UUID
    content: str
    agent_id: str | None
    level: str
    occurred_at: datetime


@dataclass(frozen=True)
class SummaryGroup:
    """Logs of one owner and session (or one day without a session), oldest first.

    ``vectors`` holds one L2-normalised embedding per line, in the same order.
    """

    session_id: str | None
    day: date | None
    lines: Sequence[LogLine]
    vectors: npt.NDArray[np.float32]


class Summarizer(Protocol):
    @property
    def name(self) -> str: ...

    async def summarize(self, group: SummaryGroup) -> list[str]:
        """Insight texts for ``group`` (at least one when it has lines). Raises SummarizerUnavailable,
        SummarizerBudgetExhausted."""
        ...


@runtime_checkable
class ContradictionJudge(Protocol):
    """A summarizer that can also tell whether a new fact contradicts a stored one (the LLM one)."""

    async def contradicts(self, new: str, old: str) -> bool: ...


_SPACE = re.compile(r"\s+")


def clean_line(text: str, limit: int = 240) -> str:
    line = _SPACE.sub(" ", text).strip()
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    if line and line[-1] not in ".!?…":
        line += "."
    return line


def _days(lines: Sequence[LogLine]) -> str:
    first = min(line.occurred_at for line in lines).date()
    last = max(line.occurred_at for line in lines).date()
    return first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"


def describe_group(group: SummaryGroup) -> str:
    """'In session S (agent A, 12 events, 2026-11-24)' or 'On 2026-11-24 (agent A, 3 events)'."""
    lines = group.lines
    agents = sorted({line.agent_id for line in lines if line.agent_id})
    parts = []
    if agents:
        shown = ", ".join(agents[:3]) + (f" and {len(agents) - 3} more" if len(agents) > 3 else "")
        parts.append(f"agent{'s' if len(agents) > 1 else ''} {shown}")
    parts.append(f"{len(lines)} event{'s' if len(lines) != 1 else ''}")
    problems = sum(1 for line in lines if line.level.lower() in ("error", "critical", "fatal"))
    if problems:
        parts.append(f"{problems} error{'s' if problems != 1 else ''}")
    if group.session_id is not None:
        return f"In session {group.session_id} ({', '.join([*parts, _days(lines)])})"
    return f"On {_days(lines)} ({', '.join(parts)})"


def select_representative(
    vectors: npt.NDArray[np.float32], k: int, *, diversity: float = 0.3, redundancy: float = 0.9
) -> list[int]:
    """Indices of up to ``k`` rows: the one nearest the centroid first, then by maximal marginal
    relevance (relevance to the centroid minus ``diversity`` × similarity to what is chosen).
    Rows at least ``redundancy`` similar to a chosen row are never chosen."""
    n = len(vectors)
    if n == 0:
        return []
    centroid = vectors.mean(axis=0)
    norm = float(np.linalg.norm(centroid))
    relevance = vectors @ (centroid / norm) if norm > 0 else np.zeros(n, dtype=np.float32)
    chosen: list[int] = []
    closest = np.full(n, -1.0, dtype=np.float32)  # similarity of each row to its nearest chosen row
    available = np.ones(n, dtype=bool)
    while len(chosen) < k and available.any():
        score = (1 - diversity) * relevance - diversity * np.maximum(closest, 0)
        score[~available] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        sims = vectors @ vectors[best]
        closest = np.maximum(closest, sims)
        available &= closest < redundancy
    return chosen


class ExtractiveSummarizer:
    """Extractive summaries from stored embeddings: no network, deterministic.

    Each insight reads 'In session S (agent A, 12 events, 2026-11-24): line. line. line.' with
    the chosen lines in the order they happened. Groups longer than ``max_logs`` are cut into
    consecutive chunks, one insight each.
    """

    name = "extractive"

    def __init__(self, *, max_lines: int = 5, max_logs: int = 200) -> None:
        self.max_lines = max_lines
        self.max_logs = max_logs

    async def summarize(self, group: SummaryGroup) -> list[str]:
        texts = []
        for start in range(0, len(group.lines), self.max_logs):
            end = start + self.max_logs
            chunk = SummaryGroup(group.session_id, group.day, group.lines[start:end], group.vectors[start:end])
            texts.append(self._one(chunk))
        return [t for t in texts if t]

    def _one(self, group: SummaryGroup) -> str:
        # Identical lines (retries, heartbeats) count once when choosing.
        first_of: dict[str, int] = {}
        for i, line in enumerate(group.lines):
            first_of.setdefault(_SPACE.sub(" ", line.content).strip().lower(), i)
        unique = sorted(first_of.values())
        if not unique:
            return ""
        k = min(self.max_lines, 1 + len(unique) // 4)
        picked = select_representative(group.vectors[unique], k)
        order = sorted(unique[p] for p in picked)
        body = " ".join(clean_line(group.lines[i].content) for i in order)
        return f"{describe_group(group)}: {body}"
