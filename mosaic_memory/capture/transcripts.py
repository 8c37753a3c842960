"""Session files on disk → the meaningful turns in them, one log event each.

Readers, one per format (``READERS``), found by ``--agent`` or detected from the file:

- **claude-code**: ``~/.claude/projects/<project>/<session>.jsonl``, one JSON object a line with
  ``type`` (``user``, ``assistant``; also ``summary``, ``system``, ... which are no turns),
  ``message`` ``{role, content}`` (a string, or blocks ``text`` / ``thinking`` / ``tool_use`` /
  ``tool_result``), ``sessionId``, ``timestamp``, ``cwd``, ``isMeta``, ``isSidechain``.
- **codex**: ``~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl``, lines ``{timestamp, type,
  payload}`` with ``type`` ``session_meta`` (``payload.id``, ``cwd``), ``turn_context``,
  ``response_item`` (``message`` with ``role`` and ``input_text`` / ``output_text`` blocks,
  ``function_call`` / ``custom_tool_call`` / ``local_shell_call`` and their outputs by
  ``call_id``, ``reasoning``) and ``event_msg`` (the UI's copy of the same turns, skipped).
  Files of older versions (a bare meta line, then bare response items) read the same way.
- **generic**: ``{session_id, role, content, time}`` a line (``time`` ISO 8601 or Unix seconds;
  optional ``project``, ``level``, and ``agent``: the first one named is the file's agent id).

A turn is a user prompt, an assistant answer, or a tool call with its result (a bounded
excerpt). Noise is counted and dropped: empty text, system reminders and injected memory
(``text.clean``), slash-command echoes and meta messages, environment/instructions preambles,
reasoning, bookkeeping tools (todo lists), calls to Mosaic Memory's own tools, and one-line
narration that only announces the next tool call ("Let me run the tests.").
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mosaic_memory.capture.hooks import own_tool
from mosaic_memory.capture.text import ROLES, Role, clean, compact_json, log_event
from mosaic_memory.capture.tools import INPUT_CHARS, tool_content

__all__ = ["READERS", "Transcript", "Turn", "detect", "read_transcript"]

# Bookkeeping tools: their calls say nothing a later session needs.
_CHATTER_TOOLS = {"TodoWrite", "TodoRead", "update_plan"}
# An assistant line that only announces the tool call after it.
_NARRATION = re.compile(
    r"^(?:now,? |next,? |first,? |ok(?:ay)?,? |great,? )?(?:let me|let's|i'll|i will|i'm going to|going to)\b",
    re.IGNORECASE,
)
_NARRATION_CHARS = 160
# Claude Code's echoes of slash commands and local command output, and its interruption notes.
_CLAUDE_NOISE = re.compile(
    r"^\s*(?:<command-name>|<command-message>|<local-command-stdout>|<local-command-stderr>|"
    r"Caveat: The messages below were generated|\[Request interrupted by user)",
)
# Codex's preambles: environment, AGENTS.md and user instructions sent as user messages.
_CODEX_NOISE = re.compile(
    r"^\s*(?:<environment_context>|<user_instructions>|<INSTRUCTIONS>|# AGENTS\.md instructions|<turn_aborted>)"
)
_CODEX_ITEMS = {
    "message",
    "reasoning",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "local_shell_call",
    "web_search_call",
}
_ROLLOUT_ID = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


@dataclass
class Turn:
    role: Role
    content: str
    occurred_at: datetime
    session_id: str
    project: str | None = None
    level: str = "info"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Transcript:
    """One file read: its turns in order, and what was dropped or unreadable."""

    path: Path
    agent: str
    turns: list[Turn] = field(default_factory=list)
    noise: int = 0
    invalid: int = 0  # lines that are not JSON objects, or lack what the format needs

    @property
    def read(self) -> int:
        """Turns read: kept plus dropped as noise."""
        return len(self.turns) + self.noise

    def events(self, excerpt_chars: int) -> list[dict[str, Any]]:
        """The turns as ``POST /v1/logs`` events with stable ids (the n-th identical turn of a
        session at the same time gets its own)."""
        seen: Counter[tuple[str, datetime, str, str]] = Counter()
        out = []
        for turn in self.turns:
            same = (turn.session_id, turn.occurred_at, turn.role, turn.content)
            n = seen[same]
            seen[same] += 1
            out.append(
                log_event(
                    **turn.metadata,
                    agent=self.agent,
                    session_id=turn.session_id,
                    role=turn.role,
                    content=turn.content,
                    occurred_at=turn.occurred_at,
                    source="transcript",
                    project=turn.project,
                    level=turn.level,
                    key=(str(n),) if n else (),
                    transcript=self.path.name,
                )
            )
        return out


def _time(value: Any, fallback: datetime) -> datetime:
    when: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        when = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            when = None
    if when is None:
        return fallback
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _file_time(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _blocks(content: Any, kinds: tuple[str, ...]) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(
        str(b.get("text") or "")
        for b in content
        if isinstance(b, dict) and b.get("type") in kinds and isinstance(b.get("text"), str)
    )


def _without_narration(turns: list[Turn]) -> tuple[list[Turn], int]:
    """Drop assistant one-liners that only announce the tool call that follows them."""
    kept: list[Turn] = []
    dropped = 0
    for i, turn in enumerate(turns):
        following = turns[i + 1] if i + 1 < len(turns) else None
        if (
            turn.role == "assistant"
            and following is not None
            and following.role == "tool"
            and len(turn.content) <= _NARRATION_CHARS
            and "\n" not in turn.content
            and _NARRATION.match(turn.content)
        ):
            dropped += 1
            continue
        kept.append(turn)
    return kept, dropped


# Claude Code ---------------------------------------------------------------------------------------
def _claude_code(entries: list[dict[str, Any]], out: Transcript, excerpt_chars: int) -> None:
    results: dict[str, tuple[Any, bool]] = {}
    for entry in entries:
        content = (entry.get("message") or {}).get("content") if entry.get("type") == "user" else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                results[str(block.get("tool_use_id"))] = (block.get("content"), bool(block.get("is_error")))
    when = _file_time(out.path)
    default_session = out.path.stem
    for entry in entries:
        kind = entry.get("type")
        message = entry.get("message")
        if kind not in ("user", "assistant") or not isinstance(message, dict):
            continue  # summaries, system lines, snapshots: no turns
        when = _time(entry.get("timestamp"), when)
        common: dict[str, Any] = {
            "occurred_at": when,
            "session_id": str(entry.get("sessionId") or default_session),
            "project": entry.get("cwd"),
            "metadata": {"sidechain": True} if entry.get("isSidechain") else {},
        }
        content = message.get("content")
        if kind == "user":
            blocks = content if isinstance(content, list) else []
            if blocks and all(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks):
                continue  # results belong to their calls
            raw = _blocks(content, ("text",))
            text = clean(raw)
            if entry.get("isMeta") or entry.get("isCompactSummary") or _CLAUDE_NOISE.match(raw) or not text:
                out.noise += 1
                continue
            out.turns.append(Turn(role="user", content=text, **common))
            continue
        for block in content if isinstance(content, list) else [{"type": "text", "text": content}]:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                text = clean(str(block.get("text") or ""))
                if text:
                    out.turns.append(Turn(role="assistant", content=text, **common))
                else:
                    out.noise += 1
            elif block.get("type") == "tool_use":
                name = str(block.get("name") or "tool")
                if name in _CHATTER_TOOLS or own_tool(name):
                    out.noise += 1
                    continue
                result, failed = results.get(str(block.get("id")), (None, False))
                text, bad = tool_content(name, block.get("input"), result, excerpt_chars)
                meta = {**common["metadata"], "tool": name, "tool_input": compact_json(block.get("input"), INPUT_CHARS)}
                level = "error" if failed or bad else "info"
                out.turns.append(Turn(role="tool", content=text, level=level, **{**common, "metadata": meta}))
            elif block.get("type") in ("thinking", "redacted_thinking"):
                out.noise += 1


# Codex -----------------------------------------------------------------------------------------------
def _codex_item(entry: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """(kind, payload, timestamp) of a rollout line, in either file layout."""
    if isinstance(entry.get("payload"), dict) and isinstance(entry.get("type"), str):
        return entry["type"], entry["payload"], entry.get("timestamp")
    if entry.get("type") in _CODEX_ITEMS:
        return "response_item", entry, entry.get("timestamp")
    if "record_type" in entry:
        return "state", entry, None
    if "id" in entry and "timestamp" in entry:
        return "session_meta", entry, entry.get("timestamp")
    return "unknown", entry, None


def _codex_output(raw: Any) -> tuple[Any, bool]:
    """A call's output and whether it failed (older versions wrap it as JSON with an exit code)."""
    if isinstance(raw, dict):
        return raw.get("content", raw), raw.get("success") is False
    if isinstance(raw, str):
        try:
            wrapped = json.loads(raw)
        except ValueError:
            return raw, False
        if isinstance(wrapped, dict) and "output" in wrapped:
            code = (wrapped.get("metadata") or {}).get("exit_code")
            return wrapped["output"], isinstance(code, int) and code != 0
    return raw, False


def _codex(entries: list[dict[str, Any]], out: Transcript, excerpt_chars: int) -> None:
    items = [_codex_item(e) for e in entries]
    outputs = {
        str(p.get("call_id")): p.get("output")
        for kind, p, _ in items
        if kind == "response_item" and p.get("type") in ("function_call_output", "custom_tool_call_output")
    }
    found = _ROLLOUT_ID.search(out.path.stem)
    session = found.group(1) if found else out.path.stem
    project: str | None = None
    when = _file_time(out.path)
    for kind, payload, stamp in items:
        when = _time(stamp, when)
        if kind == "session_meta":
            session = str(payload.get("id") or session)
            project = payload.get("cwd") or project
            continue
        if kind == "turn_context":
            project = payload.get("cwd") or project
            continue
        if kind != "response_item":
            continue  # event_msg repeats the response items for the UI
        common: dict[str, Any] = {"occurred_at": when, "session_id": session, "project": project}
        item = payload.get("type")
        if item == "message":
            role = payload.get("role")
            raw = _blocks(payload.get("content"), ("input_text", "output_text", "text"))
            text = clean(raw)
            if role not in ("user", "assistant") or not text or _CODEX_NOISE.match(raw):
                out.noise += 1
                continue
            out.turns.append(Turn(role="user" if role == "user" else "assistant", content=text, **common))
        elif item in ("function_call", "custom_tool_call", "local_shell_call", "web_search_call"):
            name = str(payload.get("name") or {"local_shell_call": "shell", "web_search_call": "web_search"}.get(item))
            arguments = payload.get("arguments", payload.get("input", payload.get("action")))
            if name in _CHATTER_TOOLS or own_tool(name):
                out.noise += 1
                continue
            result, failed = _codex_output(outputs.get(str(payload.get("call_id"))))
            text, bad = tool_content(name, arguments, result, excerpt_chars)
            meta = {"tool": name, "tool_input": compact_json(arguments, INPUT_CHARS)}
            level = "error" if failed or bad else "info"
            out.turns.append(Turn(role="tool", content=text, level=level, metadata=meta, **common))
        elif item == "reasoning":
            out.noise += 1


# generic ---------------------------------------------------------------------------------------------
def _generic(entries: list[dict[str, Any]], out: Transcript, excerpt_chars: int) -> None:
    named = next((e["agent"] for e in entries if isinstance(e.get("agent"), str) and e["agent"]), None)
    out.agent = named or out.agent  # the file's agent: the first one a line names
    for entry in entries:
        session, content, stamp = entry.get("session_id"), entry.get("content"), entry.get("time")
        when = _time(stamp, datetime.min.replace(tzinfo=UTC))
        if not isinstance(session, str) or not session or not isinstance(content, str) or when.year == 1:
            out.invalid += 1
            continue
        role = ROLES.get(str(entry.get("role") or "event"))
        text = clean(content)
        if role is None or not text:  # system prompts and blanks
            out.noise += 1
            continue
        level = entry.get("level") if entry.get("level") in ("debug", "info", "warning", "error") else "info"
        project = entry.get("project") or entry.get("cwd")
        out.turns.append(Turn(role, text, when, session, project if isinstance(project, str) else None, str(level)))


Reader = Callable[[list[dict[str, Any]], Transcript, int], None]
READERS: dict[str, Reader] = {"claude-code": _claude_code, "codex": _codex, "generic": _generic}


def detect(path: Path, entries: list[dict[str, Any]]) -> str | None:
    """The format of a session file, from its name and first lines; None when it is none of ours."""
    if path.name.startswith("rollout-"):
        return "codex"
    for entry in entries[:50]:
        if entry.get("type") in ("session_meta", "response_item", "turn_context") and "payload" in entry:
            return "codex"
        if "sessionId" in entry or (
            entry.get("type") in ("user", "assistant") and isinstance(entry.get("message"), dict)
        ):
            return "claude-code"
        if "session_id" in entry and "content" in entry:
            return "generic"
    return None


def read_transcript(path: Path, agent: str = "auto", *, excerpt_chars: int = 2000) -> Transcript:
    """The turns of one session file. ``agent``: a key of :data:`READERS`, or ``auto`` to detect.

    Raises ValueError when the format cannot be told (``auto``) or the agent is unknown, OSError
    when the file cannot be read."""
    entries: list[dict[str, Any]] = []
    invalid = 0
    with path.open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if isinstance(entry, dict):
                entries.append(entry)
            else:
                invalid += 1
    name = detect(path, entries) if agent == "auto" else agent
    if name is None:
        raise ValueError(f"{path}: not a Claude Code, Codex or generic session file (use --agent)")
    reader = READERS.get(name)
    if reader is None:
        raise ValueError(f"unknown agent {name!r}; known: auto, {', '.join(READERS)}")
    out = Transcript(path=path, agent=name, invalid=invalid)
    reader(entries, out, excerpt_chars)
    out.turns, narration = _without_narration(out.turns)
    out.noise += narration
    return out
