"""What capture stores of a text: injected memory and reminders removed, length bounded.

One log event is built here for hooks and transcripts alike (:func:`log_event`), so both paths
store the same shape: ``session_id``, ``agent_id``, ``content``, ``level``, ``occurred_at``, a
stable ``id`` (the service treats a known id as a duplicate) and ``metadata`` with ``role``,
``source`` (``hook`` or ``transcript``), ``project`` and, for tool calls, ``tool``.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any, Literal

from mosaic_memory.common.secret_scan import SecretCheck
from mosaic_memory.context.markers import CONTEXT_CLOSE, CONTEXT_OPEN, strip_injected

__all__ = [
    "INJECTED_END",
    "INJECTED_START",
    "ROLES",
    "TEXT_CHARS",
    "Role",
    "bound",
    "clean",
    "compact_json",
    "event_id",
    "log_event",
    "strip_injected",
]

# What stands between the context block's markers came from Mosaic Memory (POST /v1/context and its
# MCP tool emit them): stored again as new memory, recalls would echo forever. One rule, in
# mosaic_memory/context/markers.py, for the block that is injected and the capture that strips it.
INJECTED_START = CONTEXT_OPEN
INJECTED_END = CONTEXT_CLOSE

# Prompts and answers keep this many characters: at 4 bytes a character at most, still under the
# service's default max_content_bytes (32 KiB).
TEXT_CHARS = 8000

Role = Literal["user", "assistant", "tool", "event"]
ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant", "tool": "tool", "event": "event"}

# Claude Code adds these to prompts and tool results; they are instructions to the model, not work.
_REMINDERS = re.compile(r"<system-reminder>.*?(?:</system-reminder>|\Z)", re.DOTALL)
_BLANK_LINES = re.compile(r"\n{3,}")
_NAMESPACE = uuid.UUID("6f1c2b7e-3d4a-5e8f-9a0b-1c2d3e4f5a6b")


def clean(text: str) -> str:
    """``text`` without injected memory and system reminders, trimmed; "" when nothing is left."""
    text = _REMINDERS.sub("", strip_injected(text))
    return _BLANK_LINES.sub("\n\n", text).strip()


def bound(text: str, limit: int) -> str:
    """At most ``limit`` characters plus a note of how many were cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… [{len(text) - limit} more characters]"


def compact_json(value: Any, limit: int) -> str:
    """A one-line JSON rendering of ``value`` (a string as is), bounded."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return bound(text, limit)


def event_id(*parts: str) -> uuid.UUID:
    """The same id for the same parts (agent, session, time, role, content, ...): a re-sent or
    re-imported event is recognised by the service as a duplicate."""
    return uuid.uuid5(_NAMESPACE, "\x1f".join(parts))


def log_event(
    *,
    agent: str,
    session_id: str,
    role: Role,
    content: str,
    occurred_at: datetime,
    source: Literal["hook", "transcript"],
    project: str | None = None,
    level: str = "info",
    key: tuple[str, ...] = (),
    **metadata: Any,
) -> dict[str, Any]:
    """One ``POST /v1/logs`` event (JSON-ready). ``key`` adds parts to the stable id when time and
    content alone may repeat (the n-th identical turn of a transcript, a Codex turn id)."""
    content = bound(content, TEXT_CHARS)
    meta = {"role": role, "source": source, **({"project": project} if project else {}), **metadata}
    when = occurred_at.isoformat()
    event_uuid = event_id(agent, session_id, when, role, content, *key)
    # Redacted here, before the event touches the spool: a credential in a prompt or a tool's
    # output never sits on disk in clear, whatever the service's secrets mode (the service scans
    # again with the same rules, so its stored text and this one agree).
    check = SecretCheck("redact")
    return {
        "id": str(event_uuid),
        "session_id": session_id[:256],
        "agent_id": agent,
        "level": level,
        "content": check.text(content),
        "occurred_at": when,
        "metadata": check.json({k: v for k, v in meta.items() if v is not None}),
    }
