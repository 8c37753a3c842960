"""strip_injected: injected memory blocks are removed whole, whatever surrounds or cuts them."""

from __future__ import annotations

import json

import pytest

from mosaic_memory.context import CONTEXT_CLOSE, CONTEXT_OPEN, strip_injected

BLOCK = f"{CONTEXT_OPEN}\n## Preferences\n- editor_theme: dark\n{CONTEXT_CLOSE}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no markers here\n\n  kept as is  ", "no markers here\n\n  kept as is  "),
        (f"{BLOCK}\nfix the login bug", "fix the login bug"),
        (f"before\n{BLOCK}\nafter", "before\nafter"),
        (f"a {BLOCK} b", "a  b"),
        (f"one\n{BLOCK}\ntwo\n{BLOCK}\nthree", "one\ntwo\nthree"),
        (f"kept\n{CONTEXT_OPEN}\n- editor_theme: da", "kept"),  # cut short: removed to the end
        ("- editor_theme: dark\n" + CONTEXT_CLOSE + "\nkept", "kept"),  # starts inside a block
        (f"x\n\n\n{BLOCK}\n\n\ny", "x\n\ny"),
        (BLOCK, ""),
    ],
)
def test_strip_injected(text: str, expected: str) -> None:
    assert strip_injected(text) == expected


def test_markers_inside_json_escaped_text() -> None:
    line = json.dumps({"type": "user", "message": f"{BLOCK}\nplease refactor the parser"})
    stripped = strip_injected(line)
    assert CONTEXT_OPEN not in stripped and "editor_theme" not in stripped
    assert json.loads(stripped)["message"] == "\nplease refactor the parser"


def test_markers_are_stable() -> None:
    """Other components (capture hooks) match these exact strings."""
    assert (CONTEXT_OPEN, CONTEXT_CLOSE) == ("<mosaic-memory-context>", "</mosaic-memory-context>")
