"""Canary secrets: a password in the database URL, an API key and the LLM summarizer's key,
configured on a real ``serve`` process (JSON logs at DEBUG, then text logs), appear in none of its
outputs: its log, error bodies, ``/metrics``, the web UI's pages, the traces it exports (OTLP over
HTTP to a receiver on a real socket), ``doctor`` (text and ``--json``), ``config show`` (text and
``--json``) and ``mosaic-memory export``."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from mosaic_memory.container import AppState
from tests.conftest import free_port, scratch_dir, start_serve

ROLE = "mm_canary_" + secrets.token_hex(4)
CANARIES = {
    "database password": "DbPw" + secrets.token_hex(12),
    "API key": secrets.token_hex(16) + "CanaryKey",
    "LLM key": "sk-LlmCanary" + secrets.token_hex(12),
}
ADMIN_KEY = f"mm_{secrets.token_hex(4)}_{CANARIES['API key']}"


def leaks(text: str | bytes) -> list[str]:
    """The canaries found in ``text`` (whole, or any 12-character piece of them)."""
    blob = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    found = []
    for name, value in CANARIES.items():
        pieces = {value[i : i + 12] for i in range(0, len(value) - 11, 6)}
        if value in blob or any(p in blob for p in pieces):
            found.append(name)
    return found


class OtlpReceiver(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP traces endpoint (``POST /v1/traces``, protobuf): keeps every request's headers
    and body, answers an empty ExportTraceServiceResponse."""

    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append(str(self.headers).encode() + body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class EchoingLLM(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that refuses the key and quotes it back in its error, as
    some providers do: the service must not pass that text on."""

    keys: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        self.keys.append(key)
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}", "code": "invalid_api_key"}})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def listening(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def llm() -> Iterator[tuple[str, list[str]]]:
    with listening(EchoingLLM) as url:
        yield f"{url}/v1", EchoingLLM.keys


@pytest.fixture(scope="module")
def otlp() -> Iterator[tuple[str, list[bytes]]]:
    with listening(OtlpReceiver) as url:
        yield url, OtlpReceiver.received


@pytest.fixture(scope="module")
def canary_url(state: AppState) -> Iterator[str]:
    """The suite's database URL as a role whose password is the canary (checked over the socket)."""
    with psycopg.connect(state.database.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{CANARIES['database password']}'")
        hba = Path(str(conn.execute("SHOW hba_file").fetchone()[0]))  # type: ignore[index]
        before = hba.read_text()
        hba.write_text(f"local all {ROLE} scram-sha-256\n" + before)
        conn.execute("SELECT pg_reload_conf()")
    url = make_url(state.database.url).set(username=ROLE, password=CANARIES["database password"])
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(state.database.url, autocommit=True) as conn:
        hba.write_text(before)
        conn.execute("SELECT pg_reload_conf()")
        conn.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{ROLE}'")
        conn.execute(f"DROP OWNED BY {ROLE}")
        conn.execute(f"DROP ROLE {ROLE}")


def canary_env(canary_url: str, llm_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSAIC_", "OTEL_"))}
    env.update(
        MOSAIC_DATA_DIR=str(data_dir),
        MOSAIC_TIER="standalone",
        MOSAIC_DATABASE_URL=canary_url,
        MOSAIC_ADMIN_KEY=ADMIN_KEY,
        MOSAIC_API_KEY=ADMIN_KEY,
        MOSAIC_CONFIG_FILE="",
        MOSAIC_JOBS__SUMMARIZER="llm",
        MOSAIC_JOBS__LLM__BASE_URL=llm_url,
        MOSAIC_JOBS__LLM__API_KEY=CANARIES["LLM key"],
        MOSAIC_JOBS__LLM__MAX_RETRIES="0",
        MOSAIC_JOBS__ENABLED="false",
        MOSAIC_LOGS__BACKGROUND_EMBEDDER="false",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        **extra,
    )
    return env


@contextlib.contextmanager
def canary_serve(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    proc = start_serve(port, env, log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)  # a clean stop also flushes the last spans
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mosaic_memory", *args], capture_output=True, text=True, env=env, timeout=180
    )
    return f"$ {' '.join(args)} (exit {result.returncode})\n{result.stdout}{result.stderr}"


def drive_http(url: str) -> dict[str, str]:
    """Every HTTP surface once, with the canary key (and wrong keys made of it); what each answered."""
    out: dict[str, str] = {}
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=url, timeout=120) as http:
        r = http.post("/v1/admin/users", json={"name": f"canary-{secrets.token_hex(4)}"}, headers=admin)
        assert r.status_code == 201, r.text
        user = {"Authorization": f"Bearer {r.json()['api_key']}"}
        r = http.post("/v1/insights", json={"content": "the deploy runs on Fridays"}, headers=user)
        assert r.status_code == 201, r.text
        events = [{"content": f"deployed build {i} to staging", "session_id": "s1"} for i in range(3)]
        r = http.post("/v1/logs", json={"events": events}, headers=user)
        assert r.status_code in (200, 201, 202), r.text
        out["search"] = http.post("/v1/search", json={"query": "deploy"}, headers=user).text
        # The LLM summarizer is called (and fails): its key must not surface in the run or its errors.
        r = http.post("/v1/jobs/summarize/runs", json={}, headers=admin)
        out["summarize run"] = f"{r.status_code} {r.text}"
        out["job runs"] = http.get("/v1/jobs/runs", headers=admin).text
        wrong = ADMIN_KEY[:-4] + "XXXX"  # the right prefix, a wrong secret made of the canary
        for name, headers in {
            "wrong secret": {"Authorization": f"Bearer {wrong}"},
            "malformed key": {"Authorization": f"Bearer {CANARIES['API key']}"},
            "basic": {"Authorization": f"Basic {CANARIES['API key']}"},
        }.items():
            r = http.get("/v1/insights", headers=headers)
            assert r.status_code == 401, r.text
            out[f"401 {name}"] = r.text + str(r.headers)
        out["422"] = http.post("/v1/insights", json={"content": ""}, headers=admin).text
        out["404"] = http.get("/v1/nothing-here", headers=admin).text
        out["metrics"] = http.get("/metrics").text
        assert "mosaic_" in out["metrics"]
        out["readyz"] = http.get("/readyz").text
        out["openapi"] = http.get("/v1/openapi.json").text
        out |= drive_web(http)
    return out


def drive_web(http: httpx.Client) -> dict[str, str]:
    """The web UI without a browser: sign in with the canary key, then every page an admin reaches."""
    out: dict[str, str] = {}
    page = http.get("/ui/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    bad = http.post("/ui/signin", data={"csrf_token": token.group(1), "api_key": ADMIN_KEY[:-4] + "XXXX"})
    out["ui bad sign-in"] = bad.text
    r = http.post("/ui/signin", data={"csrf_token": token.group(1), "api_key": ADMIN_KEY, "next": "/ui/search"})
    assert r.status_code == 303, r.text
    for path in (
        "/ui/search?q=deploy",
        "/ui/insights",
        "/ui/preferences",
        "/ui/logs",
        "/ui/skills",
        "/ui/jobs",
        "/ui/admin",
    ):
        r = http.get(path)
        assert r.status_code == 200, (path, r.status_code)
        out[f"page {path}"] = r.text + str(r.headers)
    return out


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_canary_in_any_output(
    log_format: str, canary_url: str, otlp: tuple[str, list[bytes]], llm: tuple[str, list[str]]
) -> None:
    endpoint, received = otlp
    llm_url, llm_keys = llm
    received.clear()
    llm_keys.clear()
    data_dir = scratch_dir("mosaic-canary-")
    log = data_dir / "serve.log"
    env = canary_env(
        canary_url,
        llm_url,
        data_dir,
        MOSAIC_LOG_FORMAT=log_format,
        MOSAIC_LOG_LEVEL="DEBUG",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    try:
        with canary_serve(env, log) as url:
            outputs = drive_http(url)
            client_env = {**env, "MOSAIC_URL": url}
            outputs["export"] = cli(client_env, "export")
            assert "the deploy runs on Fridays" in outputs["export"]  # the admin exports every owner's rows
            for args in (("doctor", "--no-model"), ("doctor", "--json", "--no-model")):
                outputs[" ".join(args)] = cli(env, *args)
            for args in (("config", "show"), ("config", "show", "--json")):
                outputs[" ".join(args)] = cli(env, *args)
        outputs["serve log"] = log.read_text()
        outputs["traces"] = b"\n".join(received).decode("utf-8", "replace")
        # Each surface was really exercised (so a clean result means something).
        assert llm_keys and set(llm_keys) == {CANARIES["LLM key"]}, "the summarizer called the LLM with its key"
        assert "SummarizerUnavailable" in outputs["summarize run"]
        assert "/v1/search" in outputs["traces"], "the serve process exported its spans"
        assert "127.0.0.1" in outputs["config show"] and "llm" in outputs["config show --json"]
        assert '"probes"' in outputs["doctor --json --no-model"]
        assert (log_format == "json") == outputs["serve log"].lstrip().startswith("{")
        found = {name: leaks(text) for name, text in outputs.items()}
        assert not {k: v for k, v in found.items() if v}, {k: v for k, v in found.items() if v}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
