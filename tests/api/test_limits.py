"""Limits: body size (413), batch sizes, ``k`` and query length (422), each with the service's
JSON error body; a slow or failing embedding provider answers 503 at once and loses no
acknowledged write; a restart of the embedded PostgreSQL costs at most one 503. The per-key
request rate (429) is in test_auth_matrix.py."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import httpx
import pytest

from embeddings import get_embedder
from mosaic_memory.container import AppState
from mosaic_memory.observability import ObservedEmbedder
from tests.conftest import UserFactory


def assert_error(r: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == error and isinstance(body["detail"], str) and body["detail"], body
    return body


@pytest.fixture
def small_limits(state: AppState) -> Iterator[None]:
    """Small limits, as an operator could set them (MOSAIC_LIMITS__MAX_REQUEST_BYTES and so on)."""
    limits, logs = state.settings.limits, state.settings.logs
    before = (limits.max_request_bytes, state.settings.max_batch_items, logs.max_events_per_call)
    limits.max_request_bytes, state.settings.max_batch_items, logs.max_events_per_call = 4096, 3, 3
    yield
    limits.max_request_bytes, state.settings.max_batch_items, logs.max_events_per_call = before


async def count_insights(http: httpx.AsyncClient, h: dict[str, str]) -> int:
    r = await http.get("/v1/insights", params={"limit": 500}, headers=h)
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


async def test_body_size_and_batch_limits(http: httpx.AsyncClient, make_user: UserFactory, small_limits: None) -> None:
    _, h = await make_user()
    big = json.dumps({"content": "x" * 5000}).encode()
    r = await http.post("/v1/insights", content=big, headers={**h, "Content-Type": "application/json"})
    assert_error(r, 413, "ContentTooLarge")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"content": "'
        for _ in range(5):
            yield b"y" * 1000
        yield b'"}'

    r = await http.post("/v1/insights", content=chunks(), headers={**h, "Content-Type": "application/json"})
    assert_error(r, 413, "ContentTooLarge")

    topics = ("prefers tabs over spaces", "deploys on Fridays never", "drinks green tea", "owns a red bicycle")
    items = [{"content": topic} for topic in topics]
    body = assert_error(await http.post("/v1/insights/batch", json={"items": items}, headers=h), 422, "InvalidInput")
    assert "at most 3" in body["detail"]
    events = [{"session_id": "s", "content": f"event {i}"} for i in range(4)]
    body = assert_error(await http.post("/v1/logs", json={"events": events}, headers=h), 422, "InvalidInput")
    assert "at most 3" in body["detail"]
    assert await count_insights(http, h) == 0
    assert (await http.get("/v1/logs", headers=h)).json()["items"] == []
    # Within the limits the same calls are accepted.
    r = await http.post("/v1/insights/batch", json={"items": items[:3]}, headers=h)
    assert r.status_code == 201, r.text
    assert await count_insights(http, h) == 3


async def test_mcp_body_size(live_url: str, admin_headers: dict[str, str], small_limits: None) -> None:
    async with httpx.AsyncClient(base_url=live_url, timeout=60) as client:
        payload = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "z" * 5000}}
        headers = {**admin_headers, "Accept": "application/json, text/event-stream"}
        assert_error(await client.post("/mcp", json=payload, headers=headers), 413, "ContentTooLarge")


async def test_k_and_query_length(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    for body in ({"query": "tabs", "k": 101}, {"query": "tabs", "k": 0}, {"query": "q" * 4097}):
        r = await http.post("/v1/search", json=body, headers=h)
        payload = assert_error(r, 422, "InvalidInput")
        assert payload["errors"] and payload["errors"][0]["loc"][-1] in ("k", "query")
    assert (await http.post("/v1/search", json={"query": "q" * 4096, "k": 100}, headers=h)).status_code == 200


class StandIn:
    """A remote embedding provider on a real socket (OpenAI's POST /v1/embeddings) that hangs
    until released, or fails with 500: the provider in trouble."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.mode = "hang"
        self.calls = 0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                stand_in.calls += 1
                if stand_in.mode == "hang":
                    stand_in.release.wait(60)
                reply = b'{"error": {"message": "overloaded"}}'
                try:
                    self.send_response(500)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the client gave up first

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
async def provider_in_trouble(state: AppState) -> AsyncIterator[tuple[StandIn, Any]]:
    """A stand-in provider, and a call that points the service's embedder at it (1 s timeout)."""
    stand_in = StandIn()
    observed = cast(ObservedEmbedder, state.embedder)
    inner, timeout = observed.inner, observed.timeout
    remote = get_embedder("openai-compatible", base_url=stand_in.url, model="m", dimensions=384, max_retries=0)

    def engage() -> None:
        observed.inner, observed.timeout = remote, 1.0

    yield stand_in, engage
    observed.inner, observed.timeout = inner, timeout
    stand_in.close()
    await remote.aclose()


async def test_embedding_provider_in_trouble(
    http: httpx.AsyncClient, make_user: UserFactory, provider_in_trouble: tuple[StandIn, Any]
) -> None:
    stand_in, engage = provider_in_trouble
    _, h = await make_user()
    kept = await http.post("/v1/insights", json={"content": "acknowledged before the outage"}, headers=h)
    assert kept.status_code == 201, kept.text
    engage()

    # Hanging: the write is answered 503 while the provider still holds the call (it is released
    # only below), so the answer came from the timeout, not from the provider.
    r = await http.post("/v1/insights", json={"content": "written during the outage"}, headers=h)
    body = assert_error(r, 503, "EmbeddingUnavailable")
    assert "answer in 1 s" in body["detail"]
    assert stand_in.calls == 1 and not stand_in.release.is_set()
    assert_error(
        await http.post("/v1/search", json={"query": "outage", "mode": "semantic"}, headers=h),
        503,
        "EmbeddingUnavailable",
    )
    # A log write is acknowledged without the provider (embedded later) and is kept.
    r = await http.post(
        "/v1/logs", json={"events": [{"session_id": "s", "content": "logged in the outage"}]}, headers=h
    )
    assert r.status_code == 201, r.text
    stand_in.release.set()

    # Failing: 503 as well.
    stand_in.mode = "fail"
    r = await http.post("/v1/insights", json={"content": "written while it fails"}, headers=h)
    assert_error(r, 503, "EmbeddingUnavailable")

    # Nothing refused was stored; everything acknowledged is there.
    items = (await http.get("/v1/insights", headers=h)).json()["items"]
    assert [i["content"] for i in items] == ["acknowledged before the outage"]
    logs = (await http.get("/v1/logs", headers=h)).json()["items"]
    assert [log["content"] for log in logs] == ["logged in the outage"]


async def test_embedded_postgres_restart_is_survived(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState
) -> None:
    """Restart the embedded server under the running service (as an operator or a crash-restart
    would): the next requests succeed after at most one 503, with no service restart."""
    _, h = await make_user()
    r = await http.post("/v1/insights", json={"content": "written before the restart"}, headers=h)
    assert r.status_code == 201, r.text
    server = state.database.server
    before = server.get_pid()
    server.stop()
    with server._lock:  # the library's own start, on the same data directory and socket
        server.ensure_postgres_running()
    assert server.get_pid() not in (None, before), "the server was not restarted"
    statuses = []
    for topic in ("likes jazz records", "keeps a sourdough starter", "runs marathons", "collects stamps"):
        r = await http.post("/v1/insights", json={"content": topic}, headers=h)
        statuses.append(r.status_code)
        if r.status_code == 503:
            assert r.json()["error"] == "DatabaseUnavailable"
    assert statuses.count(503) <= 1 and statuses[1:] == [201, 201, 201], statuses
    listed = await http.get("/v1/insights", headers=h)
    assert listed.status_code == 200, listed.text
    contents = {i["content"] for i in listed.json()["items"]}
    assert "written before the restart" in contents and len(contents) == 1 + statuses.count(201)
