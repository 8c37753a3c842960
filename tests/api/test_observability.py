"""Traces (OpenTelemetry SDK, in-memory exporter) for HTTP requests, database statements and
embedding calls; tracing off and import-free without an endpoint; JSON logs with request ids and
no secrets."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from mosaic_memory.api.app import create_app
from mosaic_memory.config import LogSettings, Settings
from mosaic_memory.container import AppState, build_state
from mosaic_memory.observability import Tracing
from mosaic_memory.observability.logs import JsonFormatter, _Context
from tests.conftest import UserFactory

API_KEY = "mm_0badc0de_Zk3vQ9rT1xWb7YpL2mN8sHc4JdF6gKa0"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
async def traced(settings: Settings, state: AppState) -> AsyncIterator[tuple[httpx.AsyncClient, InMemorySpanExporter]]:
    """A second app over the suite's database whose spans land in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    own = settings.model_copy(
        update={
            "tier": "standalone",
            "database_url": SecretStr(state.database.url),
            "logs": LogSettings(background_embedder=False),
        }
    )
    traced_state = await build_state(own, tracing=Tracing(provider))
    app = create_app(own, state=traced_state)
    app.state.mosaic = traced_state
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mosaic.test") as client:
        yield client, exporter
    await traced_state.aclose()
    provider.shutdown()


async def test_a_search_is_one_trace_of_http_database_and_embedding_spans(
    traced: tuple[httpx.AsyncClient, InMemorySpanExporter], make_user: UserFactory
) -> None:
    client, exporter = traced
    _, h = await make_user("traced")
    # something to find: a search over kinds the caller owns nothing of embeds nothing
    stored = await client.post("/v1/insights", json={"content": "Prefers dark editor themes"}, headers=h)
    assert stored.status_code == 201, stored.text
    exporter.clear()
    r = await client.post(
        "/v1/search", json={"query": "editor colours", "kinds": ["insights"]}, headers={**h, "traceparent": TRACEPARENT}
    )
    assert r.status_code == 200, r.text
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind == SpanKind.SERVER]
    assert [s.name for s in server] == ["POST /v1/search"]
    root = server[0]
    assert root.attributes is not None and root.attributes["http.route"] == "/v1/search"
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["mosaic.request_id"] == r.headers["x-request-id"]
    trace_id = int(TRACEPARENT.split("-")[1], 16)
    assert root.context is not None and root.context.trace_id == trace_id  # the caller's trace continues
    database = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert database, [s.name for s in spans]
    assert all(s.context is not None and s.context.trace_id == trace_id for s in database)
    statements = [str((s.attributes or {}).get("db.query.text", "")) for s in database]
    assert any("insights" in q for q in statements)
    assert all("editor colours" not in q for q in statements)  # parameters are never recorded
    embed = [s for s in spans if s.name == "embed query"]
    assert len(embed) == 1 and embed[0].parent is not None
    assert embed[0].context is not None and embed[0].context.trace_id == trace_id
    key = h["Authorization"].split()[-1]
    for span in spans:
        assert key not in json.dumps({k: str(v) for k, v in (span.attributes or {}).items()})


async def test_a_failed_statement_marks_its_span(traced: tuple[httpx.AsyncClient, InMemorySpanExporter]) -> None:
    client, exporter = traced
    exporter.clear()
    r = await client.get("/v1/insights", headers={"Authorization": "Bearer mm_00000000_nope"})
    assert r.status_code == 401
    server = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert [s.name for s in server] == ["GET /v1/insights"]
    assert server[0].attributes is not None and server[0].attributes["http.response.status_code"] == 401


def test_tracing_is_off_and_import_free_without_an_endpoint() -> None:
    """Neither the SDK nor an exporter loads (the OpenTelemetry *API* does: the MCP SDK imports it)."""
    code = (
        "import sys\n"
        "from mosaic_memory.config import Settings\n"
        "from mosaic_memory.api.app import create_app\n"
        "from mosaic_memory.observability import Tracing\n"
        "create_app(Settings())\n"
        "t = Tracing.from_environment()\n"
        "with t.span('x') as s: assert s is None\n"
        "assert not t.enabled\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter'))))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "MOSAIC_CONFIG_FILE": "", "PYTHONPATH": ":".join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_tracing_follows_the_standard_variables() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    on = Tracing.from_environment(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
            "OTEL_SERVICE_NAME": "memory-eu",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        }
    )
    try:
        assert on.enabled
        provider: Any = on.provider
        assert provider.resource.attributes["service.name"] == "memory-eu"
        assert provider.resource.attributes["deployment.environment"] == "test"
        processors = provider._active_span_processor._span_processors
        assert isinstance(processors[0], BatchSpanProcessor)
        exporter = processors[0]._batch_processor._exporter
        assert isinstance(exporter, OTLPSpanExporter)
        assert exporter._endpoint == "http://127.0.0.1:4318/v1/traces"
    finally:
        on.shutdown()
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    assert not Tracing.from_environment(disabled).enabled
    assert not Tracing.from_environment({}).enabled


async def test_json_access_log_carries_the_request_id_and_no_secret(http: httpx.AsyncClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(_Context())
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("mosaic_memory.access")
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        r = await http.get("/healthz", headers={"X-Request-ID": "req-42"})
        assert r.status_code == 200
        logging.getLogger("mosaic_memory.access").warning(
            "reaching postgresql://bob:Sup3rS3cretPw@db.internal/mosaic failed for %s", API_KEY
        )
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    request = next(line for line in lines if line.get("route") == "/healthz")
    assert request["request_id"] == "req-42"
    assert request["status"] == 200 and request["method"] == "GET" and request["level"] == "info"
    assert "Sup3rS3cretPw" not in stream.getvalue() and API_KEY not in stream.getvalue()
    assert lines[-1]["message"] == (
        "reaching postgresql://bob:[REDACTED:url-password]@db.internal/mosaic failed for mm_0badc0de_***"
    )
