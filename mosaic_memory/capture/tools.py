"""Tool calls in a few words: what was called with what, and an excerpt of what came back.

Shared by the hooks (Claude Code's ``tool_input`` / ``tool_response``) and the transcript readers
(``tool_use`` / ``tool_result`` blocks, Codex ``function_call`` / ``function_call_output``).
"""

from __future__ import annotations

import json
from typing import Any

from mosaic_memory.capture.text import bound, clean, compact_json

__all__ = ["INPUT_CHARS", "SUMMARY_CHARS", "describe_call", "output_text", "tool_content"]

SUMMARY_CHARS = 300  # the call's one-line description in the content
INPUT_CHARS = 1000  # the call's arguments kept in metadata

# The argument that says what a call does, by the names tools commonly give it, in this order.
_SALIENT = ("command", "cmd", "file_path", "notebook_path", "path", "url", "query", "pattern", "description", "prompt")
# Response fields that hold bulk copies of what the call already says (whole files before an edit).
_BULK = {"originalFile", "oldString", "newString", "content_base64"}


def describe_call(name: str, arguments: Any) -> str:
    """``Bash: $ pytest -q``, ``Edit: src/app.py``, or the arguments as compact JSON."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return f"{name}: {bound(arguments.strip(), SUMMARY_CHARS)}"
    if isinstance(arguments, dict):
        for key in _SALIENT:
            value = arguments.get(key)
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                value = " ".join(value)  # Codex shell: ["bash", "-lc", "ls"]
            if isinstance(value, str) and value.strip():
                shown = f"$ {value.strip()}" if key in ("command", "cmd") else value.strip()
                return f"{name}: {bound(shown, SUMMARY_CHARS)}"
    if arguments in (None, {}, []):
        return name
    return f"{name}: {compact_json(arguments, SUMMARY_CHARS)}"


def _blocks_text(blocks: list[Any]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "\n".join(parts)


def _patch_text(hunks: list[Any]) -> str:
    lines: list[str] = []
    for hunk in hunks:
        if isinstance(hunk, dict) and isinstance(hunk.get("lines"), list):
            lines.extend(str(line) for line in hunk["lines"])
    return "\n".join(lines)


def output_text(response: Any) -> tuple[str, bool]:
    """The readable part of a tool's response and whether it reports a failure."""
    if response is None:
        return "", False
    if isinstance(response, str):
        return response, False
    if isinstance(response, list):
        return _blocks_text(response), False
    if not isinstance(response, dict):
        return str(response), False
    failed = bool(response.get("is_error") or response.get("isError") or response.get("interrupted"))
    if isinstance(response.get("error"), str) and response["error"]:
        return response["error"], True
    if "stdout" in response or "stderr" in response:  # shells
        out, err = str(response.get("stdout") or ""), str(response.get("stderr") or "")
        code = response.get("exit_code", response.get("exitCode"))
        failed = failed or (isinstance(code, int) and code != 0)
        return (out + (f"\nstderr: {err}" if err.strip() else "")).strip(), failed
    for key in ("result", "output", "content", "text", "message"):
        value = response.get(key)
        if isinstance(value, str) and value.strip():
            return value, failed
        if isinstance(value, list) and value:
            return _blocks_text(value), failed
    if isinstance(response.get("structuredPatch"), list):  # Edit, Write: the diff itself
        return _patch_text(response["structuredPatch"]), failed
    file = response.get("file")
    if isinstance(file, dict) and isinstance(file.get("content"), str):  # Read
        return file["content"], failed
    if isinstance(response.get("filenames"), list):  # Glob, Grep
        return "\n".join(str(f) for f in response["filenames"]), failed
    rest = {k: v for k, v in response.items() if k not in _BULK}
    return json.dumps(rest, ensure_ascii=False, separators=(",", ":")), failed


def tool_content(name: str, arguments: Any, response: Any, excerpt_chars: int) -> tuple[str, bool]:
    """A tool call's log content (description, then a bounded excerpt of its output) and whether it failed."""
    text, failed = output_text(response)
    text = clean(text)
    head = describe_call(name, arguments)
    return (f"{head}\n{bound(text, excerpt_chars)}" if text else head), failed
