"""Hook entries merged into each agent's own settings file, and removed again, leaving the rest.

Claude Code: ``hooks`` in ``settings.json`` maps an event name to a list of matcher groups
``{"matcher"?, "hooks": [{"type": "command", "command", "timeout"?}]}``. Ours is one group per
event whose single command runs ``mosaic-memory capture --agent claude-code``; another hook, in
its own group or beside ours, is never touched. Ours is recognised by its command (see
:func:`is_capture_command`), so an install over an older one replaces it instead of adding twice.

Codex: lifecycle hooks in ``hooks.json`` beside ``config.toml`` take the same shape as Claude
Code's ``hooks``; ours is on ``SessionStart`` (the start is stored and the context block injected).
``notify`` in ``config.toml`` is one program (an argv list) that Codex runs after every
turn with a JSON argument. It is a top-level key, so it must stand before the first table. The
file is edited as text (comments and layout kept); a notify of another program is replaced only
when forced, and then kept in a comment that uninstall restores.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

from mosaic_memory.capture.files import Change, InstallError, mosaic_program, read_config, write_config

__all__ = [
    "CLAUDE_CODE_EVENTS",
    "CODEX_HOOK_EVENTS",
    "Change",
    "InstallError",
    "capture_argv",
    "claude_code_install",
    "claude_code_uninstall",
    "codex_hooks_install",
    "codex_hooks_uninstall",
    "codex_install",
    "codex_uninstall",
    "is_capture_command",
]

# The events captured, and the matcher each group gets ("*": every tool; None: no matcher field).
CLAUDE_CODE_EVENTS: dict[str, str | None] = {
    "SessionStart": None,
    "UserPromptSubmit": None,
    "PostToolUse": "*",
    "Stop": None,
    "PreCompact": None,
}
# Codex's hooks.json: only the start (turns come through notify, with the user's input and answer).
CODEX_HOOK_EVENTS: dict[str, str | None] = {"SessionStart": None}
# Claude Code cancels a hook after this many seconds (its default is 60). Capture gives up on the
# service after capture.timeout_seconds (2 s) and spools; this only bounds a stuck start.
HOOK_TIMEOUT_S = 10

_OURS = "# mosaic-memory: "
_CODEX_MARK = "# mosaic-memory: Codex turns go to Mosaic Memory ('mosaic-memory hooks uninstall codex' removes this)"
_CODEX_SAVED = "# mosaic-memory: replaced notify = "
_HEADER = re.compile(r"^\s*\[")
_NOTIFY = re.compile(r"^\s*(?:notify|\"notify\"|'notify')\s*=")


def capture_argv(agent: str, program: str | None = None) -> list[str]:
    """The command a hook runs: this install's ``mosaic-memory`` (an absolute path when it is
    found, since an agent's hooks may run with another PATH), ``capture --agent AGENT``."""
    return [*shlex.split(program or mosaic_program()), "capture", "--agent", agent]


def is_capture_command(argv: list[str], agent: str) -> bool:
    """Whether a hook's argv is ours: a ``mosaic-memory`` (or ``python -m mosaic_memory``) program
    running ``capture --agent AGENT``."""
    names = [Path(a).name for a in argv]
    ours = "mosaic-memory" in names or "mosaic_memory" in argv
    return ours and "capture" in argv and any(a == "--agent" and b == agent for a, b in itertools.pairwise(argv))


def _ours(command: Any, agent: str) -> bool:
    """Whether a hook's command string (Claude Code's or Codex's hooks) is our capture command."""
    if not isinstance(command, str):
        return False
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = command.split()
    return is_capture_command(argv, agent)


# Claude Code's settings.json and Codex's hooks.json ------------------------------------------------
def _load_settings(path: Path, text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InstallError(f"{path} is not valid JSON ({exc}); fix it first, nothing was changed") from None
    if not isinstance(data, dict) or not isinstance(data.get("hooks", {}), dict):
        raise InstallError(f"{path} is not a hooks settings object; nothing was changed")
    return data


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _without_ours(groups: list[Any], agent: str) -> tuple[list[Any], int]:
    """The event's groups with our commands taken out (a group left empty by that goes too)."""
    kept: list[Any] = []
    removed = 0
    for group in groups:
        hooks = group.get("hooks") if isinstance(group, dict) else None
        if not isinstance(hooks, list):
            kept.append(group)
            continue
        mine = [h for h in hooks if isinstance(h, dict) and _ours(h.get("command"), agent)]
        if not mine:
            kept.append(group)
            continue
        removed += len(mine)
        rest = [h for h in hooks if h not in mine]
        if rest:
            kept.append({**group, "hooks": rest})
    return kept, removed


def claude_code_install(
    path: Path, *, program: str | None = None, background: bool = False, dry_run: bool = False
) -> Change:
    """Add (or refresh) our hook on each of :data:`CLAUDE_CODE_EVENTS` in the settings at ``path``.

    ``background`` marks the hooks ``"async": true``: recent Claude Code versions then run them
    without waiting (older ones may not know the field). Not ``SessionStart``: an async hook's
    output reaches Claude only on a later turn, too late for the memory it injects, and Claude
    Code already lets the user type while SessionStart hooks run."""
    return _hooks_install(
        path, "claude-code", CLAUDE_CODE_EVENTS, program=program, background=background, dry_run=dry_run
    )


def codex_hooks_install(path: Path, *, program: str | None = None, dry_run: bool = False) -> Change:
    """Add (or refresh) our ``SessionStart`` hook in Codex's ``hooks.json`` at ``path``."""
    return _hooks_install(path, "codex", CODEX_HOOK_EVENTS, program=program, background=False, dry_run=dry_run)


def _hooks_install(
    path: Path, agent: str, events: dict[str, str | None], *, program: str | None, background: bool, dry_run: bool
) -> Change:
    before = read_config(path)
    data = _load_settings(path, before)
    hooks: dict[str, Any] = data.setdefault("hooks", {})
    command = shlex.join(capture_argv(agent, program))
    refreshed = 0
    for event, matcher in events.items():
        groups = hooks.get(event)
        if groups is not None and not isinstance(groups, list):
            raise InstallError(f"{path}: hooks.{event} is not a list; nothing was changed")
        kept, removed = _without_ours(groups or [], agent)
        refreshed += removed
        group: dict[str, Any] = {} if matcher is None else {"matcher": matcher}
        hook: dict[str, Any] = {"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}
        if background and event != "SessionStart":
            hook["async"] = True
        group["hooks"] = [hook]
        hooks[event] = [*kept, group]
    after = _dump(data)
    note = "refreshed" if refreshed else "installed"
    if not dry_run and after != before:
        write_config(path, after)
    return Change(path, before, after, f"{note} capture hooks for {', '.join(events)}")


def claude_code_uninstall(path: Path, *, dry_run: bool = False) -> Change:
    """Remove exactly our hook commands from the settings at ``path``; every other hook stays."""
    return _hooks_uninstall(path, "claude-code", dry_run=dry_run)


def codex_hooks_uninstall(path: Path, *, dry_run: bool = False) -> Change:
    """Remove exactly our hook commands from Codex's ``hooks.json`` at ``path``."""
    return _hooks_uninstall(path, "codex", dry_run=dry_run)


def _hooks_uninstall(path: Path, agent: str, *, dry_run: bool) -> Change:
    before = read_config(path)
    if not before.strip():
        return Change(path, before, before, "no settings file: nothing to remove")
    data = _load_settings(path, before)
    hooks = data.get("hooks")
    removed = 0
    if isinstance(hooks, dict):
        for event in list(hooks):
            groups = hooks[event]
            if not isinstance(groups, list):
                continue
            kept, n = _without_ours(groups, agent)
            if n:
                removed += n
                if kept:
                    hooks[event] = kept
                else:
                    del hooks[event]  # emptied by us: it held only our hook
        if removed and not hooks:
            del data["hooks"]
    if not removed:
        return Change(path, before, before, "no capture hooks found: nothing removed")
    after = _dump(data)
    if not dry_run:
        write_config(path, after)
    return Change(path, before, after, f"removed {removed} capture hooks")


# Codex -----------------------------------------------------------------------------------------------
def _statements(lines: list[str]) -> list[tuple[int, int]]:
    """The (first, end) line spans of the top-level key/value statements, before the first table.

    A statement ends where the lines from its start parse as TOML, so multi-line arrays and
    strings are one statement."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        if _HEADER.match(lines[i]):
            break
        end = i + 1
        while end <= len(lines):
            try:
                tomllib.loads("".join(lines[i:end]))
                break
            except tomllib.TOMLDecodeError:
                end += 1
        spans.append((i, min(end, len(lines))))
        i = end
    return spans


def _first_table(lines: list[str], spans: list[tuple[int, int]]) -> int:
    start = spans[-1][1] if spans else 0
    for i in range(start, len(lines)):
        if _HEADER.match(lines[i]):
            return i
    return len(lines)


def _notify_span(lines: list[str]) -> tuple[int, int] | None:
    return next(((a, b) for a, b in _statements(lines) if _NOTIFY.match(lines[a])), None)


def _load_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InstallError(f"{path} is not valid TOML ({exc}); fix it first, nothing was changed") from None


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def _toml_array(argv: list[str]) -> str:
    # A JSON array of strings is a TOML array of basic strings (the same escapes).
    return json.dumps(argv, ensure_ascii=False)


def codex_install(path: Path, *, program: str | None = None, force: bool = False, dry_run: bool = False) -> Change:
    """Set ``notify`` in Codex's ``config.toml`` to our capture command.

    Raises InstallError when another notify program is set (unless ``force``: then it is kept in
    a comment, and :func:`codex_uninstall` puts it back)."""
    before = read_config(path)
    current = _load_toml(path, before).get("notify")
    argv = capture_argv("codex", program)
    given = [str(a) for a in current] if isinstance(current, list) else [str(current)]
    ours = isinstance(current, list) and is_capture_command(given, "codex")
    if current is not None and not ours and not force:
        raise InstallError(
            f"Codex already runs a notify program ({_toml_array(given)}) from {path}; "
            "Codex runs only one. Rerun with --force to replace it (it is kept in a comment and "
            "restored by 'mosaic-memory hooks uninstall codex'), or chain it from your own script."
        )
    lines = _lines(before)
    span = _notify_span(lines)
    notify = f"notify = {_toml_array(argv)}\n"
    if span is None:
        at = _first_table(lines, _statements(lines))
        lines[at:at] = [f"{_CODEX_MARK}\n", notify, *(["\n"] if at < len(lines) else [])]
    else:
        first, end = span
        while first > 0 and lines[first - 1].startswith(_OURS):
            first -= 1  # our marker, and the notify we replaced, above the notify
        if ours:
            saved = [line for line in lines[first:end] if line.startswith(_CODEX_SAVED)]
        else:
            saved = [f"{_CODEX_SAVED}{_toml_array(given)}\n"]
        lines[first:end] = [f"{_CODEX_MARK}\n", *saved, notify]
    after = "".join(lines)
    _load_toml(path, after)  # never write a file Codex cannot read
    if not dry_run and after != before:
        write_config(path, after)
    note = "replaced the notify program" if (current is not None and not ours) else "installed"
    return Change(path, before, after, f"{note}: Codex runs {shlex.join(argv)} after every turn")


def codex_uninstall(path: Path, *, dry_run: bool = False) -> Change:
    """Remove our ``notify`` (restoring one it replaced); another program's notify stays."""
    before = read_config(path)
    current = _load_toml(path, before).get("notify") if before.strip() else None
    if not (isinstance(current, list) and is_capture_command([str(a) for a in current], "codex")):
        return Change(path, before, before, "Codex's notify is not ours: nothing removed")
    lines = _lines(before)
    span = _notify_span(lines)
    assert span is not None  # tomllib found a top-level notify
    first, end = span
    restored: list[str] = []
    while first > 0 and lines[first - 1].startswith(_OURS):
        first -= 1
        if lines[first].startswith(_CODEX_SAVED):
            restored = [f"notify = {lines[first][len(_CODEX_SAVED) :].strip()}\n"]
    if not restored and end < len(lines) and not lines[end].strip():
        end += 1  # the blank line install put before the first table
    lines[first:end] = restored
    after = "".join(lines)
    _load_toml(path, after)
    if not dry_run:
        write_config(path, after)
    return Change(path, before, after, "restored the previous notify program" if restored else "removed")
