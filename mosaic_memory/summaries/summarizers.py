"""Summarizers: turn one group of agent logs into insights, each citing the lines it came from.

A summarizer is anything with ``name`` and ``async summarize(group) -> list[Summary]``. The
extractive one (default) needs no network: it drops boilerplate, clusters the remaining lines by
their embeddings and writes one insight per distinct fact, preferring lines that state a
preference, a decision or an outcome.
"""

from __future__ import annotations

import bisect
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "ContradictionJudge",
    "ExtractiveSummarizer",
    "LogLine",
    "Summarizer",
    "Summary",
    "SummaryGroup",
    "describe_group",
    "is_boilerplate",
    "salience",
]


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


@dataclass(frozen=True)
class Summary:
    """One insight text and the indices (into ``SummaryGroup.lines``) of the lines it came from."""

    text: str
    sources: tuple[int, ...]


class Summarizer(Protocol):
    @property
    def name(self) -> str: ...

    async def summarize(self, group: SummaryGroup) -> list[Summary]:
        """Insights for ``group``, each citing at least one of its lines; none when every line is
        boilerplate. Raises SummarizerUnavailable, SummarizerBudgetExhausted."""
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


# Acknowledgements and small talk: a line that is only these words says nothing to remember.
_ACK_WORDS = frozenset({
    "ok", "okay", "k", "kk", "sure", "yes", "yep", "yeah", "no", "nope", "done", "thanks", "thank", "you",
    "thx", "ty", "great", "good", "fine", "cool", "nice", "perfect", "got", "it", "noted", "acknowledged",
    "ack", "on", "will", "do", "working", "let", "me", "check", "see", "look", "that", "this", "now", "one",
    "moment", "sec", "second", "please", "hi", "hello", "hey", "alright", "right", "understood", "roger",
    "continue", "continuing", "proceed", "proceeding", "again", "next",
})  # fmt: skip
# Tool chatter: calls and results, progress lines, exit codes, prompts.
_CHATTER = re.compile(
    r"^(?:tool[ _-]?(?:call|result|use|output)\b|calling\b|invoking\b|exit(?: code| status)?\s*[:=]?\s*\d+$"
    r"|\$ |>>> |\[?(?:running|executing|waiting|loading|thinking|retrying)\b[^.!?]*(?:…|\.\.\.)\]?$"
    r"|(?:running|executing) (?:tests?|commands?|the tests?|the suite)\W*$)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w#@'’.-]+")
# What memory is for: a preference, a decision or an outcome.
_SALIENT = re.compile(
    r"\b(?:prefers?|preferred|preference|wants?|wanted|likes?|liked|loves?|dislikes?|hates?|always|never"
    r"|favou?rite|rather|should|must|allergic|decid\w*|chose|choos\w*|picked|agreed|settled|opted|will"
    r"|plans?|planned|planning|going to|switch\w*|moved? (?:to|from)|result\w*|took|passed|fail\w*|fixed"
    r"|works?|worked|broke\w*|caused|because|succeed\w*|error|finished|completed|shows?|found|turned out"
    r"|is now|are now|now uses?|crash\w*|root cause|owned by|owner|approves?|confirmed|is called|named)\b",
    re.IGNORECASE,
)
# Working steps: "Opened …", "Checked …" — context for a fact rather than a fact of their own.
_STEP = re.compile(
    r"^(?:opened|checked|listed|ran|re-?ran|running|searched|looked|read|reading|queried|started|starting"
    r"|drafted|pulled|generated|reviewed|compared|rewrote|edited|logged in|fetched|viewed|inspected"
    r"|scanned|browsed|called|executed|tried|trying|installed|downloaded|copied|took a|cloned|loaded)\b",
    re.IGNORECASE,
)


def is_boilerplate(text: str) -> bool:
    """Whether a line is an acknowledgement ("ok", "done, thanks") or tool chatter ("tool call: …",
    "Running tests…", "exit code 0"): nothing in it is worth an insight."""
    line = _SPACE.sub(" ", text).strip()
    if not line:
        return True
    if _CHATTER.search(line):
        return True
    words = [w.strip(".'’-").lower() for w in _WORD.findall(line)]
    words = [w for w in words if w]
    return not words or all(w in _ACK_WORDS for w in words)


def salience(text: str) -> int:
    """2: states a preference, decision or outcome; 0: a working step ("Opened the settings");
    1: any other statement."""
    if _SALIENT.search(text):
        return 2
    return 0 if _STEP.search(text.strip()) else 1


def _average_linkage(sims: npt.NDArray[np.float32], threshold: float) -> list[list[int]]:
    """Clusters of row indices, each sorted, ordered by their first row: merge the two clusters of
    highest mean pairwise similarity while it is at least ``threshold``."""
    n = len(sims)
    # Lance-Williams: the mean similarity of a merged cluster to any other is the size-weighted
    # mean of its parts', so one n × n matrix holds every cluster pair (O(n²) per merge).
    sim = np.array(sims, dtype=np.float64)
    np.fill_diagonal(sim, -np.inf)
    size = np.ones(n)
    members = [[i] for i in range(n)]
    active = np.ones(n, dtype=bool)
    while active.sum() > 1:
        masked = np.where(np.outer(active, active), sim, -np.inf)
        a, b = divmod(int(np.argmax(masked)), n)
        if masked[a, b] < threshold:
            break
        merged = (size[a] * sim[a] + size[b] * sim[b]) / (size[a] + size[b])
        sim[a, :] = merged
        sim[:, a] = merged
        sim[a, a] = -np.inf
        size[a] += size[b]
        members[a] += members[b]
        active[b] = False
    return sorted((sorted(members[i]) for i in range(n) if active[i]), key=lambda c: c[0])


class ExtractiveSummarizer:
    """Extractive summaries from stored embeddings: no network, deterministic.

    One insight per distinct fact: boilerplate lines are dropped; the other lines are split into
    statements and working steps (:func:`salience`); statements at least ``fact_similarity``
    similar (mean, average linkage) form one fact; each working step joins the fact it is most
    related to (its similarity, plus a bonus for the statement that follows it, as steps lead to
    outcomes) when that reaches ``step_similarity``, and steps left over are grouped by topic
    into insights of their own, so no informative line is lost. An insight reads its lines, the
    most salient first, then '(session S, agent A, 2026-11-24)'; it cites exactly those lines (and
    identical or near-identical copies of them) and holds at most ``max_lines`` of them.
    """

    name = "extractive"

    def __init__(
        self,
        *,
        max_lines: int = 5,
        max_logs: int = 200,
        fact_similarity: float = 0.55,
        step_similarity: float = 0.3,
        redundancy: float = 0.9,
    ) -> None:
        self.max_lines = max_lines
        self.max_logs = max_logs
        self.fact_similarity = fact_similarity
        self.step_similarity = step_similarity
        self.redundancy = redundancy

    async def summarize(self, group: SummaryGroup) -> list[Summary]:
        out: list[Summary] = []
        for start in range(0, len(group.lines), self.max_logs):
            end = start + self.max_logs
            chunk = SummaryGroup(group.session_id, group.day, group.lines[start:end], group.vectors[start:end])
            out += [Summary(s.text, tuple(start + i for i in s.sources)) for s in self._chunk(chunk)]
        return out

    def _chunk(self, group: SummaryGroup) -> list[Summary]:
        lines = group.lines
        # Identical lines (retries, heartbeats) are one line that cites every copy.
        copies: dict[str, list[int]] = {}
        for i, line in enumerate(lines):
            if not is_boilerplate(line.content):
                copies.setdefault(_SPACE.sub(" ", line.content).strip().lower(), []).append(i)
        if not copies:
            return []
        reps = [idx[0] for idx in copies.values()]  # in time order: dicts keep insertion order
        cites = {idx[0]: idx for idx in copies.values()}
        # Near-identical lines fold into the earlier one, which then cites both.
        vectors = group.vectors[reps]
        sims = vectors @ vectors.T
        kept: list[int] = []  # positions in reps
        for pos in range(len(reps)):
            twin = next((k for k in kept if sims[pos, k] >= self.redundancy), None)
            if twin is None:
                kept.append(pos)
            else:
                cites[reps[twin]] = sorted(cites[reps[twin]] + cites.pop(reps[pos]))
        pos_of = {reps[k]: k for k in kept}
        score = {reps[k]: salience(lines[reps[k]].content) for k in kept}
        facts = [reps[k] for k in kept if score[reps[k]] > 0]  # none: every line is a step, grouped below
        steps = [reps[k] for k in kept if score[reps[k]] == 0]

        def sim(a: list[int], b: list[int]) -> npt.NDArray[np.float32]:
            return sims[np.ix_([pos_of[i] for i in a], [pos_of[i] for i in b])]

        clusters = [[facts[i] for i in c] for c in _average_linkage(sim(facts, facts), self.fact_similarity)]
        cluster_of = np.empty(len(facts), dtype=np.int64)
        for c, members in enumerate(clusters):
            cluster_of[[facts.index(f) for f in members]] = c
        attached: list[list[int]] = [[] for _ in clusters]
        leftover: list[int] = []
        to_facts = sim(steps, facts)
        for row, step in enumerate(steps):
            # a step's relatedness to a fact: its best similarity to the fact's lines, plus a bonus
            # for the statement right after it (steps lead to outcomes) or, less, right before it
            value = np.full(len(clusters), -np.inf)
            np.maximum.at(value, cluster_of, to_facts[row])
            later = bisect.bisect_right(facts, step)
            if later < len(facts):
                value[cluster_of[later]] += 0.15
            if later > 0 and (later == len(facts) or cluster_of[later - 1] != cluster_of[later]):
                value[cluster_of[later - 1]] += 0.05
            best = int(np.argmax(value)) if len(clusters) else -1
            if best >= 0 and value[best] >= self.step_similarity:
                attached[best].append(step)
            else:
                leftover.append(step)
        units = list(zip(clusters, attached, strict=True))
        if leftover:
            step_groups = _average_linkage(sim(leftover, leftover), self.step_similarity)
            units += [([leftover[i] for i in c], []) for c in step_groups]

        summaries = []
        for members, extra in sorted(units, key=lambda u: min(u[0])):
            # The fact's lines, best first, then its steps in order, ``max_lines`` an insight: the
            # fact's last insight takes the steps that fit, and the rest follow in insights of their
            # own (they were once dropped, consumed and cited by nothing: the durability suite's
            # tenth batch lost one).
            chosen = sorted(members, key=lambda i: (-score[i], i)) + sorted(extra)
            for start in range(0, len(chosen), self.max_lines):
                summaries.append(self._summary(group, chosen[start : start + self.max_lines], cites))
        return summaries

    def _summary(self, group: SummaryGroup, chosen: list[int], cites: dict[int, list[int]]) -> Summary:
        lines = group.lines
        body = " ".join(clean_line(lines[i].content) for i in chosen)
        sources = tuple(sorted(j for i in chosen for j in cites[i]))
        return Summary(f"{body} ({_context(group, [lines[j] for j in sources])})", sources)


def _context(group: SummaryGroup, lines: Sequence[LogLine]) -> str:
    """'session S, agent A, 2026-11-24' for the lines an insight came from."""
    parts = []
    if group.session_id is not None:
        parts.append(f"session {group.session_id}")
    agents = sorted({line.agent_id for line in lines if line.agent_id})
    if agents:
        shown = ", ".join(agents[:3]) + (f" and {len(agents) - 3} more" if len(agents) > 3 else "")
        parts.append(f"agent{'s' if len(agents) > 1 else ''} {shown}")
    parts.append(_days(lines))
    return ", ".join(parts)
