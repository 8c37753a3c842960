"""The marker lines around injected memory, and :func:`strip_injected`, which removes what they enclose.

``POST /v1/context`` wraps its block in :data:`CONTEXT_OPEN` … :data:`CONTEXT_CLOSE`. Whatever
captures an agent's session (hooks, transcript import) passes text through :func:`strip_injected`
before storing it, so memory injected into a session is never stored back as new memory.
This module imports nothing but ``re``: a hook can load it in milliseconds.
"""

from __future__ import annotations

import re

__all__ = ["CONTEXT_CLOSE", "CONTEXT_OPEN", "strip_injected"]

CONTEXT_OPEN = "<mosaic-memory-context>"
CONTEXT_CLOSE = "</mosaic-memory-context>"

# An opened block runs to its close marker (and the line break after it), or to the end of the
# text when it was cut short.
_BLOCK = re.compile(re.escape(CONTEXT_OPEN) + r".*?(?:" + re.escape(CONTEXT_CLOSE) + r"\n?|\Z)", re.DOTALL)
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


def strip_injected(text: str) -> str:
    """``text`` without any injected memory block, markers included.

    A block opened and never closed (an excerpt cut short) is removed to the end of the text; a
    close marker with no opening before it (an excerpt that starts inside a block) removes
    everything up to it. The markers need not stand on lines of their own (a JSON-escaped
    transcript holds them mid-line). Blank lines left where a block stood collapse into one;
    a text without markers comes back unchanged.
    """
    if CONTEXT_OPEN not in text and CONTEXT_CLOSE not in text:
        return text
    stripped = _BLOCK.sub("", text)
    orphan = stripped.rfind(CONTEXT_CLOSE)
    if orphan >= 0:
        stripped = stripped[orphan + len(CONTEXT_CLOSE) :]
    return _BLANK_RUNS.sub("\n\n", stripped).strip()
