"""One hook payload → the log events to store, per agent.

Payload shapes, from each client's documentation (fixtures in ``tests/capture/payloads/``):

- **Claude Code** (a command hook, JSON on stdin): every event carries ``session_id``,
  ``transcript_path``, ``cwd``, ``hook_event_name``; ``UserPromptSubmit`` adds ``prompt``;
  ``PostToolUse`` ``tool_name``, ``tool_input``, ``tool_response`` (and ``tool_use_id``);
  ``SessionStart`` ``source`` (startup, resume, clear, compact); ``PreCompact`` ``trigger``
  (manual, auto) and ``custom_instructions``; ``Stop`` ``stop_hook_active`` and, in recent
  versions, ``last_assistant_message`` (else the answer is read from the transcript's tail).
- **Codex** (``notify`` in ``~/.codex/config.toml``, JSON as the last argument): ``type``
  ``agent-turn-complete`` with ``thread-id``, ``turn-id``, ``cwd``, ``input-messages``,
  ``last-assistant-message``; and its ``hooks.json`` ``SessionStart`` hook (JSON on stdin, the
  shape of Claude Code's: ``session_id``, ``transcript_path``, ``cwd``, ``hook_event_name``,
  ``model``, ``permission_mode``, ``source``), for the memory it injects (``capture/inject.py``).
- **generic** (any agent with a hook that can run a command): ``session_id``, ``content``
  (or ``prompt`` / ``message``), optional ``role``, ``agent``, ``cwd``, ``level``, ``metadata``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from mosaic_memory.capture.text import ROLES, clean, compact_json, log_event
from mosaic_memory.capture.tools import INPUT_CHARS, tool_content

__all__ = ["HOOK_READERS", "PayloadError", "hook_events", "last_assistant_text", "own_tool"]

HookReader = Callable[[dict[str, Any], datetime, int], list[dict[str, Any]]]

# Calls to our own MCP tools return memory: storing their output would echo it back as new memory.
_OWN_TOOL = re.compile(r"^mcp__mosaic[-_]?memory__", re.IGNORECASE)
_TAIL_BYTES = 512 * 1024
# log_event's own arguments: a generic payload's metadata cannot override them.
_RESERVED = {"agent", "session_id", "role", "content", "occurred_at", "source", "project", "level", "key"}


class PayloadError(ValueError):
    """The payload is not one this agent's hook sends (the message says what is missing)."""


def own_tool(name: str) -> bool:
    """A tool of Mosaic Memory's own MCP server (its output is memory already)."""
    return bool(_OWN_TOOL.match(name))


def _text_blocks(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text" and b.get("text")
        )
    return ""


def last_assistant_text(transcript: str | None) -> str:
    """The text of the last assistant message in a Claude Code transcript (its last 512 KiB read)."""
    if not transcript:
        return ""
    path = Path(transcript).expanduser()
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - _TAIL_BYTES))
            tail = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    parts: list[str] = []
    message_id: Any = None
    for line in reversed(tail):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("type") != "assistant":
            if parts:
                break
            continue
        message = entry.get("message") or {}
        text = _text_blocks(message)
        if parts and message.get("id") != message_id:
            break
        if text:
            parts.append(text)
            message_id = message.get("id")
    return "\n".join(reversed(parts))


def _lifecycle_fields(agent: str, session: str, hook: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What every event of a lifecycle hook (Claude Code's, Codex's hooks.json) carries."""
    return {
        "agent": agent,
        "session_id": session,
        "occurred_at": now,
        "source": "hook",
        "project": payload.get("cwd"),
        "hook": hook,
    }


def _session_start(name: str, payload: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    start = str(payload.get("source") or "startup")
    where = f" in {payload['cwd']}" if payload.get("cwd") else ""
    content = f"{name} session started ({start}){where}"
    return log_event(role="event", content=content, start=start, model=payload.get("model"), **common)


def _claude_code(payload: dict[str, Any], now: datetime, excerpt_chars: int) -> list[dict[str, Any]]:
    session = payload.get("session_id")
    hook = payload.get("hook_event_name")
    if not isinstance(session, str) or not session or not isinstance(hook, str):
        raise PayloadError("a Claude Code hook payload has session_id and hook_event_name")
    common = _lifecycle_fields("claude-code", session, hook, payload, now)
    if hook == "UserPromptSubmit":
        text = clean(str(payload.get("prompt") or ""))
        return [log_event(role="user", content=text, **common)] if text else []
    if hook in ("PostToolUse", "PostToolUseFailure"):
        name = str(payload.get("tool_name") or "tool")
        if own_tool(name):
            return []
        response = payload.get("tool_response", payload.get("error"))
        content, failed = tool_content(name, payload.get("tool_input"), response, excerpt_chars)
        return [
            log_event(
                role="tool",
                content=content,
                level="error" if failed or hook == "PostToolUseFailure" else "info",
                tool=name,
                tool_input=compact_json(payload.get("tool_input"), INPUT_CHARS),
                tool_use_id=payload.get("tool_use_id"),
                **common,
            )
        ]
    if hook == "Stop":
        text = clean(str(payload.get("last_assistant_message") or last_assistant_text(payload.get("transcript_path"))))
        return [log_event(role="assistant", content=text, **common)] if text else []
    if hook == "SessionStart":
        return [_session_start("Claude Code", payload, common)]
    if hook == "PreCompact":
        trigger = str(payload.get("trigger") or "auto")
        extra = clean(str(payload.get("custom_instructions") or ""))
        content = f"Context compacted ({trigger})" + (f": {extra}" if extra else "")
        return [log_event(role="event", content=content, trigger=trigger, **common)]
    if hook == "SessionEnd":
        reason = str(payload.get("reason") or "other")
        return [log_event(role="event", content=f"Claude Code session ended ({reason})", **common)]
    return []  # an event we do not record (PreToolUse, Notification, ...)


def _codex(payload: dict[str, Any], now: datetime, excerpt_chars: int) -> list[dict[str, Any]]:
    if payload.get("hook_event_name") == "SessionStart":  # a hooks.json hook, not notify
        session = payload.get("session_id")
        if not isinstance(session, str) or not session:
            raise PayloadError("a Codex SessionStart hook payload has session_id")
        return [_session_start("Codex", payload, _lifecycle_fields("codex", session, "SessionStart", payload, now))]
    if payload.get("type") != "agent-turn-complete":
        return []  # other notifications carry no turn
    session = payload.get("thread-id")
    if not isinstance(session, str) or not session:
        raise PayloadError("a Codex notify payload of type agent-turn-complete has thread-id")
    turn = str(payload.get("turn-id") or "")
    common: dict[str, Any] = {
        "agent": "codex",
        "session_id": session,
        "occurred_at": now,
        "source": "hook",
        "project": payload.get("cwd"),
        "turn_id": turn or None,
    }
    events: list[dict[str, Any]] = []
    inputs = payload.get("input-messages") or []
    for i, message in enumerate(inputs if isinstance(inputs, list) else [inputs]):
        text = clean(str(message or ""))
        if text:
            events.append(log_event(role="user", content=text, key=(turn, "in", str(i)), **common))
    answer = clean(str(payload.get("last-assistant-message") or ""))
    if answer:
        events.append(log_event(role="assistant", content=answer, key=(turn, "out"), **common))
    return events


def _generic(payload: dict[str, Any], now: datetime, excerpt_chars: int) -> list[dict[str, Any]]:
    session = payload.get("session_id")
    text = next((payload[k] for k in ("content", "prompt", "message") if isinstance(payload.get(k), str)), None)
    if not isinstance(session, str) or not session or text is None:
        raise PayloadError("a generic payload has session_id and content")
    role = ROLES.get(str(payload.get("role")), "event")
    given = payload.get("metadata")
    extra = {k: v for k, v in given.items() if k not in _RESERVED} if isinstance(given, dict) else {}
    level = str(payload["level"]) if payload.get("level") in ("debug", "info", "warning", "error") else "info"
    content = clean(text)
    if not content:
        return []
    agent = str(payload.get("agent") or "generic")
    project = payload.get("cwd") or payload.get("project")
    return [
        log_event(
            **extra,
            agent=agent,
            session_id=session,
            role=role,
            content=content,
            occurred_at=now,
            source="hook",
            project=project,
            level=level,
        )
    ]


HOOK_READERS: dict[str, HookReader] = {"claude-code": _claude_code, "codex": _codex, "generic": _generic}


def hook_events(agent: str, payload: Any, *, now: datetime, excerpt_chars: int) -> list[dict[str, Any]]:
    """The events one hook call should store (often one, sometimes none).

    Raises PayloadError for a payload that is not a JSON object of the agent's shape, and
    KeyError naming the known agents for an unknown one."""
    reader = HOOK_READERS.get(agent)
    if reader is None:
        raise KeyError(f"unknown agent {agent!r}; known: {', '.join(HOOK_READERS)}")
    if not isinstance(payload, dict):
        raise PayloadError("the hook payload is not a JSON object")
    return reader(payload, now, excerpt_chars)
