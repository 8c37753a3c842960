"""The session-start hook injects the context block: real ``mosaic-memory capture`` processes fed
the recorded SessionStart payloads, against the suite's real service (up, down, hung)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mosaic_memory.capture.inject import project_of
from mosaic_memory.context.markers import CONTEXT_CLOSE, CONTEXT_OPEN
from mosaic_memory.context.schemas import ContextRequest
from tests.capture.conftest import ROOT, User, payload
from tests.conftest import auth

# Claude Code's payload runs in /Users/alice/projects/shop: the project is "shop".
PROJECT = "shop"
# The same loose bound as test_hook_capture.py: the budgets (here 2 s) plus a loaded machine's start.
QUICK_S = 10


def _session() -> str:
    return f"sess-{uuid.uuid4().hex[:10]}"


def _put_preference(user: User, key: str, value: Any, scope: str = "") -> None:
    r = httpx.put(
        f"{user.url}/v1/preferences/{key}", json={"value": value, "scope": scope}, headers=auth(user.key), timeout=30
    )
    assert r.status_code == 201, r.text


def _remember(user: User, content: str) -> None:
    r = httpx.post(f"{user.url}/v1/insights", json={"content": content}, headers=auth(user.key), timeout=30)
    assert r.status_code == 201, r.text


def _injected(run: Any) -> str:
    """The block a session-start hook printed, checked to be the one JSON object Claude Code and
    Codex read (and nothing else on stdout or stderr)."""
    assert run.returncode == 0, run.stderr
    assert run.stderr == "", run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 1, run.stdout
    out = json.loads(lines[0])
    assert list(out) == ["hookSpecificOutput"]
    assert out["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    text: str = out["hookSpecificOutput"]["additionalContext"]
    assert text.startswith(CONTEXT_OPEN + "\n") and text.endswith("\n" + CONTEXT_CLOSE), text
    return text


def test_session_start_injects_the_block_with_the_stored_preference_first(user: User) -> None:
    _remember(user, "The shop project's checkout page must load under one second")
    _put_preference(user, "test_command", "pytest -q (never python -m unittest)", scope=f"project:{PROJECT}")
    _put_preference(user, "editor_theme", "dark")
    _put_preference(user, "deploy_day", "friday", scope="project:another")
    session = _session()

    text = _injected(user.capture("claude-code", payload("claude-code-SessionStart", session_id=session)))

    lines = text.splitlines()
    assert lines[1] == "## Preferences"
    # The project's preference first, then the global one; another project's is not this session's.
    assert lines[2] == f"- test_command (project:{PROJECT}): pytest -q (never python -m unittest)"
    assert lines[3] == "- editor_theme: dark"
    assert "deploy_day" not in text
    assert lines[4] == "## Insights"
    assert lines[5] == "- The shop project's checkout page must load under one second"
    # The event itself is still stored, as before.
    [start] = user.logs(session_id=session)
    assert start["content"] == "Claude Code session started (startup) in /Users/alice/projects/shop"
    assert user.spooled() == []


def test_each_claude_code_start_source_injects(user: User) -> None:
    _put_preference(user, "language", "answers in English")
    for source in ("startup", "resume", "clear", "compact"):
        run = user.capture("claude-code", payload("claude-code-SessionStart", session_id=_session(), source=source))
        assert "- language: answers in English" in _injected(run), source


def test_the_configured_budget_is_the_one_asked_for(user: User) -> None:
    for i in range(30):
        _put_preference(user, f"rule_{i:02d}", f"house rule number {i} of the shop")
    start = json.dumps(payload("claude-code-SessionStart", session_id=_session()))

    whole = _injected(user.cli("capture", "--agent", "claude-code", stdin=start))
    small = _injected(
        user.cli("capture", "--agent", "claude-code", stdin=start, MOSAIC_CAPTURE__CONTEXT_TOKEN_BUDGET="100")
    )
    assert whole.count("\n- rule_") == 30 and "left out" not in whole
    assert 0 < small.count("\n- rule_") < 30
    assert "[left out to fit the token budget:" in small


def test_a_user_with_no_memory_or_injection_switched_off_gets_nothing_printed(user: User) -> None:
    start = json.dumps(payload("claude-code-SessionStart", session_id=_session()))
    empty = user.cli("capture", "--agent", "claude-code", stdin=start)
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "", "")

    _put_preference(user, "editor_theme", "dark")
    off = user.cli("capture", "--agent", "claude-code", stdin=start, MOSAIC_CAPTURE__INJECT_CONTEXT="false")
    assert (off.returncode, off.stdout, off.stderr) == (0, "", "")


def test_injected_memory_echoed_back_is_never_stored(user: User, tmp_path: Path) -> None:
    """The block the hook printed, repeated by the agent in a prompt, a tool's output, an answer
    and a transcript: capture stores the work around it and none of the memory."""
    _put_preference(user, "test_command", "pytest -q (never python -m unittest)", scope=f"project:{PROJECT}")
    session = _session()
    block = _injected(user.capture("claude-code", payload("claude-code-SessionStart", session_id=session)))

    prompt = f"{block}\nAdd a test for factorial of a negative number."
    for data in (
        payload("claude-code-UserPromptSubmit", session_id=session, prompt=prompt),
        payload("claude-code-PostToolUse", session_id=session, tool_response={"stdout": f"cat notes\n{block}"}),
        payload("claude-code-Stop", session_id=session, last_assistant_message=f"I was told:\n{block}\nDone."),
    ):
        run = user.capture("claude-code", data)
        assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
    # Claude Code's transcript of the same session holds the block as the hook's context.
    transcript = tmp_path / f"{session}.jsonl"
    lines = [
        {"type": "user", "message": {"role": "user", "content": block}, "sessionId": session},
        {"type": "user", "message": {"role": "user", "content": prompt}, "sessionId": session},
    ]
    for i, line in enumerate(lines):
        line.update(cwd="/Users/alice/projects/shop", uuid=str(uuid.uuid4()), timestamp=f"2026-12-06T10:00:0{i}Z")
    transcript.write_text("".join(json.dumps(line) + "\n" for line in lines))
    imported = user.cli("import-transcripts", str(transcript), "--include-live", "--json")
    assert imported.returncode == 0, imported.stderr

    contents = [log["content"] for log in user.logs(session_id=session)]
    assert sorted(contents) == sorted(
        [
            "Claude Code session started (startup) in /Users/alice/projects/shop",
            "Add a test for factorial of a negative number.",  # the hook's prompt
            "Bash: $ pytest -q tests/test_math.py\ncat notes",
            "I was told:\nDone.",
            "Add a test for factorial of a negative number.",  # the transcript's (the block alone: noise)
        ]
    )
    assert not [c for c in contents if "pytest -q (never" in c or "mosaic-memory-context" in c], contents


def test_service_down_injects_nothing_fast_and_still_spools_the_start(user: User) -> None:
    _put_preference(user, "editor_theme", "dark")
    session = _session()
    run = user.capture("claude-code", payload("claude-code-SessionStart", session_id=session), down=True)
    assert run.returncode == 0 and run.stdout == ""
    assert run.seconds < QUICK_S, run.seconds
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach Mosaic Memory" in lines[0] and "no memory injected" in lines[0], lines
    assert user.key not in run.stderr
    assert [e["metadata"]["hook"] for e in user.spooled()] == ["SessionStart"]

    # The next capture with the service up sends it; its own start injects as usual.
    text = _injected(user.capture("claude-code", payload("claude-code-SessionStart", session_id=f"{session}-2")))
    assert "- editor_theme: dark" in text
    assert [log["metadata"]["hook"] for log in user.logs(session_id=session)] == ["SessionStart"]


@pytest.fixture
def hung_url() -> Iterator[str]:
    """A port that accepts connections and never answers (a service stuck under load)."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        yield f"http://127.0.0.1:{hung.getsockname()[1]}"


def test_a_hung_service_injects_nothing_within_the_budget(user: User, hung_url: str) -> None:
    start = json.dumps(payload("claude-code-SessionStart", session_id=_session()))
    run = user.cli(
        "capture",
        "--agent",
        "claude-code",
        stdin=start,
        MOSAIC_URL=hung_url,
        MOSAIC_CAPTURE__TIMEOUT_SECONDS="1",
        MOSAIC_CAPTURE__CONTEXT_TIMEOUT_SECONDS="1",
    )
    assert run.returncode == 0 and run.stdout == ""
    assert run.seconds < QUICK_S, run.seconds
    assert "no memory injected" in run.stderr and user.key not in run.stderr
    assert [e["metadata"]["hook"] for e in user.spooled()] == ["SessionStart"]


def test_codex_session_start_hook_injects_and_is_stored_as_codex(user: User) -> None:
    _put_preference(user, "units", "metric", scope="project:example")
    data = payload("codex-SessionStart", session_id=_session())

    text = _injected(user.capture("codex", data))

    assert "- units (project:example): metric" in text
    [start] = user.logs(session_id=data["session_id"])
    assert start["agent_id"] == "codex"
    assert start["content"] == "Codex session started (startup) in /Users/alice/projects/example"


@pytest.mark.parametrize(
    ("cwd", "project"),
    [
        ("/Users/alice/projects/shop", "shop"),
        ("/home/bob/my project (2)/", "my-project-2-"),
        ("C:\\Users\\carol\\Web Shop", "Web-Shop"),
        ("/srv/.dotfiles", "dotfiles"),
        ("/srv/projekt-ü", "projekt--"),
        ("/", None),
        (None, None),
    ],
)
def test_the_project_is_the_folder_name_as_a_valid_project_id(cwd: str | None, project: str | None) -> None:
    assert project_of(cwd) == project
    if project is not None:
        assert ContextRequest.model_validate({"project": project}).project == project


HOOK_MODULES = """
import json, os, runpy, sys
sys.argv = ["mosaic-memory", "capture", "--agent", "claude-code"]
try:
    runpy.run_module("mosaic_memory", run_name="__main__")
finally:
    with open(os.environ["MODULES_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)
"""


def test_a_hook_sends_through_httpx_without_loading_its_command_line(user: User, tmp_path: Path) -> None:
    """httpx's own CLI (click, pygments, rich.syntax) is left out of the hook process, and the
    event still reaches the service through httpx."""
    session = _session()
    modules = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", HOOK_MODULES],
        input=json.dumps(payload("claude-code-UserPromptSubmit", session_id=session)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=user.env(MODULES_OUT=str(modules)),
        timeout=120,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    loaded = set(json.loads(modules.read_text()))
    assert "httpx" in loaded and "mosaic_memory.client_core" in loaded
    assert not loaded & {"httpx._main", "pygments", "click", "mosaic_memory.client"}, sorted(loaded)
    assert [log["metadata"]["hook"] for log in user.logs(session_id=session)] == ["UserPromptSubmit"]


def test_a_refused_key_injects_nothing_and_is_never_printed(user: User) -> None:
    wrong = "mm_0deadbee_this-key-was-never-issued-to-anyone"
    start = json.dumps(payload("claude-code-SessionStart", session_id=_session()))
    run = user.cli("capture", "--agent", "claude-code", stdin=start, MOSAIC_API_KEY=wrong)
    assert run.returncode == 0 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "no memory injected" in lines[0], lines
    assert wrong not in run.stderr and wrong[:12] not in run.stderr
    assert [e["metadata"]["hook"] for e in user.spooled()] == ["SessionStart"]  # waits for a good key
