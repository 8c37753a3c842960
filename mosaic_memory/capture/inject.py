"""Memory injected at session start: the context block, fetched for a session-start hook and
printed in the form the agent adds to the model's context.

Both agents with a session-start hook read what a command hook prints on stdout, and take JSON
``{"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": TEXT}}`` as TEXT
to add to the model's context at the start of the conversation:

- Claude Code, https://code.claude.com/docs/en/hooks ("SessionStart decision control": plain
  stdout is added too; the JSON form is the documented structured one; a hook's injected context
  is capped at 10,000 characters, the rest moved to a file);
- Codex, https://developers.openai.com/codex/hooks ("SessionStart": ``additionalContext`` "is
  added as extra developer context"; stdout that starts with ``{`` and is not valid JSON of this
  shape fails the hook, so nothing else may be printed).

The block comes from ``POST /v1/context`` wrapped in the marker lines of
``mosaic_memory/context/markers.py``: when the agent later repeats it (in a prompt, a tool's
output, its transcript), capture's ``clean`` removes it before storing, so injected memory never
comes back as new memory.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

__all__ = ["SESSION_START", "Injection", "fetch_context", "hook_output", "is_session_start", "project_of"]

SESSION_START = "SessionStart"
# A project id (context.schemas.ProjectId) is letters, digits and "_.:@/-", starting with a letter,
# digit or "_", at most 240 characters; a folder's name has no "/".
_NOT_PROJECT = re.compile(r"[^A-Za-z0-9_.:@-]+")
_NOT_FIRST = re.compile(r"^[^A-Za-z0-9_]+")
_PROJECT_CHARS = 240


@dataclass
class Injection:
    """What a session-start hook injects: the block (empty: nothing), and why it is empty when
    the service did not answer (None when it did, even with no memory to show)."""

    text: str = ""
    problem: str | None = None


def is_session_start(payload: Any) -> TypeGuard[dict[str, Any]]:
    """A session-start hook's payload (Claude Code's, or Codex's ``hooks.json`` one: same field)."""
    return isinstance(payload, dict) and payload.get("hook_event_name") == SESSION_START


def project_of(cwd: Any) -> str | None:
    """The project of a session: the name of the folder it runs in, as a project id (characters a
    project id cannot hold become ``-``): ``/home/alice/projects/shop`` → ``shop``, the scope
    ``project:shop`` of the preferences docs/agents.md sets. None without a folder."""
    if not isinstance(cwd, str):
        return None
    name = re.split(r"[\\/]", cwd.rstrip("\\/"))[-1]
    project = _NOT_FIRST.sub("", _NOT_PROJECT.sub("-", name))[:_PROJECT_CHARS]
    return project or None


async def fetch_context(url: str, api_key: str, *, project: str | None, token_budget: int, timeout: float) -> Injection:
    """The block of ``POST /v1/context`` for ``project`` (no query: the service ranks insights
    and skills for the project's name), within ``timeout`` seconds in all. Never raises for a
    service that is down, slow or refusing: the answer's ``problem`` says why nothing came."""
    from mosaic_memory.client_core import MosaicClientError, RestClient  # httpx: only when a start is sent

    body: dict[str, Any] = {"token_budget": token_budget}
    if project:
        body["project"] = project
    try:
        async with RestClient(url, api_key, timeout=timeout) as client:
            out = await asyncio.wait_for(client.request("POST", "/v1/context", json=body), timeout=timeout)
    except TimeoutError:
        return Injection(problem=f"the service at {url} did not send the context in time")
    except MosaicClientError as exc:
        return Injection(problem=exc.detail if exc.status == 0 else f"{exc.error}: {exc.detail}")
    text = out.get("text") if isinstance(out, dict) else None
    return Injection(text=text if isinstance(text, str) else "")


def hook_output(text: str) -> str:
    """The one JSON line a session-start hook prints to have ``text`` added to the model's context."""
    return json.dumps({"hookSpecificOutput": {"hookEventName": SESSION_START, "additionalContext": text}})
