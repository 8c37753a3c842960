"""The LLM summarizer against a small OpenAI-compatible server on 127.0.0.1 (a real socket)."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from mosaic_memory.config import LLMSummarizerSettings
from mosaic_memory.container import AppState
from mosaic_memory.summaries.llm import CONTRADICTION_PROMPT, parse_facts
from tests.conftest import UserFactory
from tests.jobs.conftest import insight_rows, log_rows, make_logs, owner_id, runner_for, source_rows
from tests.jobs.topics import FONT, TRIP

EVENT = re.compile(r"^\[(\d+)\] \S+ \S+ \w+: (.*)$", re.MULTILINE)


class ChatServer(ThreadingHTTPServer):
    """Answers /v1/chat/completions with the first two events as facts, each citing its event's
    number; 500 when a log says FAIL."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.requests: list[dict[str, Any]] = []
        self.plain = False  # answer with plain strings that cite nothing

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        user = body["messages"][-1]["content"]
        if self.path.split("?")[0] != "/v1/chat/completions":
            return self._send(404, {"error": {"message": "not found"}})
        if body["messages"][0]["content"] == CONTRADICTION_PROMPT:
            old, new = user.split("\nNEW: ")
            verdict = "yes" if "Iosevka" in old and "JetBrains" in new else "no"
            return self._send(200, self._reply(body, verdict))
        if "FAIL" in user:
            return self._send(500, {"error": {"message": "model crashed"}})
        facts = [{"fact": f"The user: {line.rstrip('.')}", "sources": [int(n)]} for n, line in EVENT.findall(user)[:2]]
        answer: list[Any] = [f["fact"] for f in facts] if self.server.plain else facts
        self._send(200, self._reply(body, "```json\n" + json.dumps(answer) + "\n```"))

    @staticmethod
    def _reply(body: dict[str, Any], content: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 90, "completion_tokens": 10, "total_tokens": 100},
        }

    def _send(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    server = ChatServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def llm(chat: ChatServer, **overrides: Any) -> LLMSummarizerSettings:
    return LLMSummarizerSettings(
        base_url=chat.base_url, model="tiny-chat", api_key="sk-local", max_retries=1, **overrides
    )


def test_parse_facts_accepts_json_lists_objects_and_lines() -> None:
    assert parse_facts('["a", "b", "a"]') == [("a", ()), ("b", ())]
    assert parse_facts('```json\n{"facts": ["x"]}\n```') == [("x", ())]
    assert parse_facts("- one\n2. two\n\n") == [("one", ()), ("two", ())]
    cited = '[{"fact": "a", "sources": [2, "3"]}, {"fact": "b", "sources": 1}, {"fact": "a", "sources": [4]}]'
    assert parse_facts(cited) == [("a", (2, 3, 4)), ("b", (1,))]


async def test_facts_become_insights_and_a_failing_group_is_recorded_and_skipped(
    make_user: UserFactory, state: AppState, chat: ChatServer
) -> None:
    await runner_for(state).run("summarize", trigger="test")  # nothing else pending
    name, _ = await make_user()
    owner = await owner_id(state, name)
    good = await make_logs(state, owner, session_id="llm-good", contents=TRIP)
    bad = await make_logs(state, owner, session_id="llm-bad", contents=["FAIL: the disk is full", *FONT[:2]])

    runner = runner_for(state, summarizer="llm", llm=llm(chat))
    run = await runner.run("summarize", trigger="test")
    assert run.status == "partial", run
    assert [e["session_id"] for e in run.errors] == ["llm-bad"]
    assert run.errors[0]["error"] == "SummarizerUnavailable" and "HTTP 500" in run.errors[0]["detail"]
    rows = await insight_rows(state, owner)
    texts = sorted(r["content"] for r in rows.values())
    assert texts == sorted(f"The user: {line}" for line in TRIP[:2])
    # each fact cites exactly the event it named
    cited = {(rows[i]["content"], log) for i, log in await source_rows(state, owner)}
    assert cited == {(f"The user: {TRIP[0]}", good[0]), (f"The user: {TRIP[1]}", good[1])}
    logs = await log_rows(state, owner)
    assert all(logs[i]["summarized_by_run"] == run.id for i in good)
    assert all(logs[i]["summarized_at"] is None for i in bad)

    request = chat.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-local"
    assert request["body"]["model"] == "tiny-chat"
    assert '"sources"' in request["body"]["messages"][0]["content"]
    assert "atomic" in request["body"]["messages"][0]["content"]
    assert sum("FAIL" in r["body"]["messages"][-1]["content"] for r in chat.requests) == 2  # one retry

    # the next run (extractive) finishes the skipped group
    rest = await runner_for(state).run("summarize", trigger="test")
    assert rest.status == "succeeded"
    logs = await log_rows(state, owner)
    assert all(logs[i]["summarized_at"] is not None for i in bad)


async def test_budget_stops_the_run_and_leaves_the_rest_for_the_next(
    make_user: UserFactory, state: AppState, chat: ChatServer
) -> None:
    await runner_for(state).run("summarize", trigger="test")
    name, _ = await make_user()
    owner = await owner_id(state, name)
    await make_logs(state, owner, session_id="budget-1", contents=TRIP)
    await make_logs(state, owner, session_id="budget-2", contents=FONT)

    runner = runner_for(state, summarizer="llm", llm=llm(chat, max_calls_per_run=1))
    run = await runner.run("summarize", trigger="test")
    assert run.status == "partial" and run.message and "budget" in run.message
    assert len(chat.requests) == 1
    logs = await log_rows(state, owner)
    done = {r["session_id"] for r in logs.values() if r["summarized_at"] is not None}
    assert len(done) == 1
    assert len(await insight_rows(state, owner)) == 2  # two facts from the one call
    await runner_for(state).run("summarize", trigger="test")  # leave nothing pending for other tests


async def test_a_contradicting_fact_supersedes_the_stored_insight_and_rolls_back(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState, chat: ChatServer
) -> None:
    await runner_for(state).run("summarize", trigger="test")
    name, h = await make_user()
    owner = await owner_id(state, name)
    old = await http.post("/v1/insights", json={"content": "The user's editor font is Iosevka"}, headers=h)
    assert old.status_code == 201
    before = await insight_rows(state, owner)
    await make_logs(
        state,
        owner,
        session_id="font-switch",
        contents=["User switched the editor font from Iosevka to JetBrains Mono", "User wants larger line spacing"],
    )
    runner = runner_for(state, summarizer="llm", llm=llm(chat))
    run = await runner.run("summarize", trigger="test")
    assert run.status == "succeeded", run
    assert run.counts["insights_superseded"] == 1
    stored = (await http.get(f"/v1/insights/{old.json()['id']}", headers=h)).json()
    new_id = stored["superseded_by"]
    assert new_id and stored["valid_to"] is not None
    new = (await http.get(f"/v1/insights/{new_id}", headers=h)).json()
    assert "JetBrains Mono" in new["content"]

    await runner.rollback(run.id)
    assert await insight_rows(state, owner) == before


@pytest.mark.parametrize("reachable", [False, True])
async def test_llm_errors_never_carry_credentials_of_the_base_url(reachable: bool) -> None:
    """A base URL may hold a password or a key in its query (Azure-style): errors go to the
    job ledger and the log, so they name the endpoint without them."""
    from mosaic_memory.errors import SummarizerUnavailable
    from mosaic_memory.summaries.llm import LLMSummarizer

    server = ChatServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1] if reachable else 1
        base = f"http://bob:Pa55-word@127.0.0.1:{port}/nowhere?api-key=Qu3ry-key"
        settings = LLMSummarizerSettings(base_url=base, api_key="sk-h3ader", max_retries=0)
        with pytest.raises(SummarizerUnavailable) as caught:
            await LLMSummarizer(settings).contradicts("new", "old")
        # The same URL with the right path works: the query stays a query, after the path.
        settings = settings.model_copy(update={"base_url": base.replace("/nowhere", "/v1")})
        if reachable:
            assert await LLMSummarizer(settings).contradicts("new", "old") is False
            assert server.requests[-1]["path"] == "/v1/chat/completions?api-key=Qu3ry-key"
    finally:
        server.shutdown()
        thread.join()
    message = str(caught.value)
    assert "127.0.0.1" in message
    for secret in ("Pa55-word", "Qu3ry-key", "sk-h3ader", "bob"):
        assert secret not in message, message


@pytest.mark.parametrize("plain", [False, True])
async def test_facts_cite_the_events_they_name_or_every_event_shown(chat: ChatServer, plain: bool) -> None:
    from datetime import UTC, datetime

    import numpy as np

    from mosaic_memory.summaries.llm import LLMSummarizer
    from mosaic_memory.summaries.summarizers import LogLine, SummaryGroup

    chat.plain = plain
    when = datetime(2026, 11, 24, tzinfo=UTC)
    lines = [LogLine(uuid.uuid4(), text, "a", "info", when) for text in TRIP[:3]]
    group = SummaryGroup("s", None, lines, np.zeros((3, 4), dtype=np.float32))
    out = await LLMSummarizer(llm(chat), max_logs=2).summarize(group)  # the model sees lines 1 and 2
    assert [s.text for s in out] == [f"The user: {TRIP[1]}", f"The user: {TRIP[2]}"]
    assert [s.sources for s in out] == ([(1, 2), (1, 2)] if plain else [(1,), (2,)])
