"""``mosaic-memory capture`` fed recorded hook payloads, with the service up and down."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from mosaic_memory.capture.text import INJECTED_END, INJECTED_START
from tests.capture.conftest import ROOT, User, payload

EVENTS = ("SessionStart", "UserPromptSubmit", "PostToolUse", "Stop", "PreCompact")
PROJECT = "/Users/alice/projects/shop"
# A hook that gets no answer from the service must still return at once: the 2 s budget plus the
# interpreter's start on a loaded machine. Measured figures are in docs/agents.md.
QUICK_S = 10


def _session() -> str:
    return f"sess-{uuid.uuid4().hex[:10]}"


def _quiet(run: object) -> None:
    """The hook succeeded and said nothing (stdout of some hooks goes into the model's context)."""
    assert run.returncode == 0, run.stderr  # type: ignore[attr-defined]
    assert run.stdout == "", run.stdout  # type: ignore[attr-defined]
    assert run.stderr == "", run.stderr  # type: ignore[attr-defined]


def test_each_claude_code_event_is_stored_as_a_log_with_its_fields(user: User) -> None:
    session = _session()
    for event in EVENTS:
        _quiet(user.capture("claude-code", payload(f"claude-code-{event}", session_id=session)))

    logs = user.logs(session_id=session)
    assert [log["metadata"]["hook"] for log in logs] == list(EVENTS)
    for log in logs:
        assert log["agent_id"] == "claude-code" and log["session_id"] == session
        assert log["metadata"]["project"] == PROJECT and log["metadata"]["source"] == "hook"
    start, prompt, tool, stop, compact = logs
    assert start["content"] == f"Claude Code session started (startup) in {PROJECT}"
    assert start["metadata"]["start"] == "startup" and start["metadata"]["model"] == "claude-sonnet-4-5"
    assert prompt["content"] == "Write a function to calculate the factorial of a number"
    assert prompt["metadata"]["role"] == "user"
    assert tool["content"].startswith("Bash: $ pytest -q tests/test_math.py\n....F\nFAILED")
    assert "1 failed, 4 passed" in tool["content"]
    assert tool["metadata"]["tool"] == "Bash" and tool["metadata"]["tool_use_id"] == "toolu_01ABC123"
    assert json.loads(tool["metadata"]["tool_input"])["command"] == "pytest -q tests/test_math.py"
    assert stop["content"] == "factorial(0) now returns 1; all five tests in tests/test_math.py pass."
    assert stop["metadata"]["role"] == "assistant"
    assert compact["content"] == "Context compacted (manual): keep the test results"
    assert not user.spool.exists() or user.spool.read_text() == ""


def test_tool_output_is_bounded_and_injected_memory_and_own_tools_are_not_stored(user: User) -> None:
    session = _session()
    noisy = payload(
        "claude-code-PostToolUse",
        session_id=session,
        tool_response={"stdout": "x" * 10_000, "stderr": "warning: slow", "interrupted": False},
    )
    _quiet(user.capture("claude-code", noisy))
    injected = f"{INJECTED_START}\nThe user prefers tabs.\n{INJECTED_END}\n"
    _quiet(user.capture("claude-code", payload("claude-code-UserPromptSubmit", session_id=session, prompt=injected)))
    mixed = f"{injected}Now fix the failing test."
    _quiet(user.capture("claude-code", payload("claude-code-UserPromptSubmit", session_id=session, prompt=mixed)))
    recall = payload(
        "claude-code-PostToolUse",
        session_id=session,
        tool_name="mcp__mosaic-memory__recall",
        tool_input={"query": "tabs"},
        tool_response=[{"type": "text", "text": "The user prefers tabs."}],
    )
    _quiet(user.capture("claude-code", recall))

    logs = user.logs(session_id=session)
    assert len(logs) == 2, [log["content"] for log in logs]
    tool, prompt = logs
    assert tool["content"].startswith("Bash: $ pytest -q tests/test_math.py\n" + "x" * 2000 + "\n… [")
    assert tool["content"].endswith("more characters]") and len(tool["content"]) < 2100
    assert prompt["content"] == "Now fix the failing test."
    assert all("prefers tabs" not in log["content"] for log in logs)


def test_stop_without_last_message_reads_the_answer_from_the_transcript(user: User, tmp_path: Path) -> None:
    session = _session()
    transcript = tmp_path / f"{session}.jsonl"
    lines = [
        {"type": "user", "message": {"role": "user", "content": "what failed?"}, "sessionId": session},
        {"type": "assistant", "message": {"id": "m1", "role": "assistant", "content": [{"type": "text", "text": "x"}]}},
        {"type": "user", "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}},
        {
            "type": "assistant",
            "message": {"id": "m2", "role": "assistant", "content": [{"type": "text", "text": "The zero case."}]},
        },
        {
            "type": "assistant",
            "message": {"id": "m2", "role": "assistant", "content": [{"type": "text", "text": "Fixed it."}]},
        },
    ]
    transcript.write_text("".join(json.dumps(line) + "\n" for line in lines))
    stop = payload("claude-code-Stop", session_id=session, transcript_path=str(transcript))
    del stop["last_assistant_message"]
    _quiet(user.capture("claude-code", stop))
    assert [log["content"] for log in user.logs(session_id=session)] == ["The zero case.\nFixed it."]


def test_service_down_spools_fast_and_the_next_capture_sends_all_in_order(user: User) -> None:
    session = _session()
    for event in ("UserPromptSubmit", "PostToolUse", "Stop"):
        run = user.capture("claude-code", payload(f"claude-code-{event}", session_id=session), down=True)
        assert run.returncode == 0 and run.stdout == ""
        assert run.seconds < QUICK_S, run.seconds
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot reach Mosaic Memory" in lines[0] and str(user.spool) in lines[0], lines
    assert [e["metadata"]["hook"] for e in user.spooled()] == ["UserPromptSubmit", "PostToolUse", "Stop"]
    assert user.logs(session_id=session) == []

    _quiet(user.capture("claude-code", payload("claude-code-PreCompact", session_id=session)))
    logs = user.logs(session_id=session)
    assert [log["metadata"]["hook"] for log in logs] == ["UserPromptSubmit", "PostToolUse", "Stop", "PreCompact"]
    assert user.spooled() == []
    _quiet(user.capture("claude-code", payload("claude-code-SessionStart", session_id=f"{session}-next")))
    assert len(user.logs(session_id=session)) == 4  # nothing sent twice


def test_a_resend_after_a_crash_between_send_and_truncate_doubles_nothing(user: User) -> None:
    session = _session()
    _quiet(user.capture("claude-code", payload("claude-code-UserPromptSubmit", session_id=session)))
    [stored] = user.logs(session_id=session)
    # The state a crash right after the send leaves: the event sent, still in the spool.
    fields = ("id", "session_id", "agent_id", "level", "content", "occurred_at", "metadata")
    user.spool.parent.mkdir(parents=True, exist_ok=True)
    user.spool.write_text(json.dumps({k: stored[k] for k in fields}) + "\n")

    flushed = user.cli("capture", "--flush")
    assert flushed.returncode == 0, flushed.stderr
    assert "sent 0 events (1 were already stored)" in flushed.stdout
    assert [log["id"] for log in user.logs(session_id=session)] == [stored["id"]]
    assert user.spooled() == []


def test_concurrent_hooks_while_the_service_is_down_all_land_in_the_spool(user: User) -> None:
    session = _session()
    procs = []
    for i in range(6):
        data = payload("claude-code-UserPromptSubmit", session_id=session, prompt=f"prompt number {i}")
        proc = subprocess.Popen(
            [sys.executable, "-m", "mosaic_memory", "capture", "--agent", "claude-code"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=user.env(down=True),
        )
        procs.append((proc, json.dumps(data)))
    for proc, text in procs:
        out, _ = proc.communicate(text, timeout=120)
        assert proc.returncode == 0 and out == ""
    spooled = user.spooled()
    assert sorted(e["content"] for e in spooled) == [f"prompt number {i}" for i in range(6)]
    assert len({e["id"] for e in spooled}) == 6

    flushed = user.cli("capture", "--flush")
    assert flushed.returncode == 0 and "sent 6 events" in flushed.stdout, (flushed.stdout, flushed.stderr)
    assert sorted(log["content"] for log in user.logs(session_id=session)) == [f"prompt number {i}" for i in range(6)]


def test_an_event_the_service_refuses_is_set_aside_and_the_rest_still_go(user: User) -> None:
    session = _session()
    bulky = {"session_id": session, "content": "a huge note", "metadata": {"blob": "x" * 70_000}}
    assert user.capture("generic", bulky, down=True).returncode == 0
    assert user.capture("generic", {"session_id": session, "content": "edge case"}, down=True).returncode == 0
    run = user.capture("generic", {"session_id": session, "content": "a small note", "role": "user"})
    assert run.returncode == 0 and "1 events refused" in run.stderr, run.stderr
    assert [log["content"] for log in user.logs(session_id=session)] == ["edge case", "a small note"]
    rejected = user.spool.with_name("spool.rejected.jsonl").read_text().splitlines()
    assert len(rejected) == 1 and json.loads(rejected[0])["event"]["content"] == "a huge note"
    assert user.spooled() == []


def test_codex_notify_payload_as_argument_or_on_stdin(user: User) -> None:
    first = payload("codex-agent-turn-complete", **{"thread-id": _session()})
    _quiet(user.capture("codex", first, argv=True))
    second = payload("codex-agent-turn-complete", **{"thread-id": _session(), "turn-id": "2"})
    _quiet(user.capture("codex", second))
    for data in (first, second):
        logs = user.logs(session_id=data["thread-id"])
        assert [(log["metadata"]["role"], log["content"]) for log in logs] == [
            ("user", "Rename `foo` to `bar` and update the callsites."),
            ("assistant", "Rename complete and verified `cargo build` succeeds."),
        ]
        for log in logs:
            assert log["agent_id"] == "codex" and log["metadata"]["project"] == "/Users/alice/projects/example"
            assert log["metadata"]["turn_id"] == data["turn-id"]


def test_bad_input_never_fails_the_agent(user: User) -> None:
    for args, stdin in (
        (("capture", "--agent", "claude-code"), "{not json"),
        (("capture", "--agent", "claude-code"), json.dumps({"hook_event_name": "Stop"})),
        (("capture", "--agent", "cursor"), "{}"),
        (("capture",), "{}"),
    ):
        run = user.cli(*args, stdin=stdin)
        assert run.returncode == 0 and run.stdout == "", (args, run.stdout)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mosaic-memory capture: "), (args, lines)
        assert "Traceback" not in run.stderr
    no_key = user.cli(
        "capture", "--agent", "claude-code", stdin=json.dumps(payload("claude-code-Stop")), MOSAIC_API_KEY=""
    )
    assert no_key.returncode == 0 and "no API key" in no_key.stderr
    assert [e["metadata"]["hook"] for e in user.spooled()] == ["Stop"]  # kept until a key is set


def test_a_credential_is_redacted_before_the_event_reaches_the_spool() -> None:
    from datetime import UTC, datetime

    from mosaic_memory.capture.text import log_event

    token = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    when = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    def event() -> dict[str, object]:
        return log_event(
            agent="claude-code",
            session_id="s-1",
            role="user",
            content=f"push with {token} please",
            occurred_at=when,
            source="hook",
            tool_input={"command": f"git push https://x:{token}@github.com/o/r"},
        )

    first, again = event(), event()
    assert token not in json.dumps(first) and "[REDACTED:github-token]" in str(first["content"])
    assert first["id"] == again["id"]  # stable: a re-send is still recognised
