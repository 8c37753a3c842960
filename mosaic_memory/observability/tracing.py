"""OpenTelemetry traces, opt-in through the standard environment variables.

``Tracing.from_environment()`` turns tracing on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (and ``OTEL_SDK_DISABLED`` is not ``true``): spans
go through a batch processor to the OTLP exporter, which reads the rest of the ``OTEL_EXPORTER_OTLP_*``
variables itself (headers, timeout, protocol ``http/protobuf`` by default, ``grpc`` when its
package is installed); ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the process.
Otherwise every method is a no-op and no ``opentelemetry`` module is imported.

Spans: one per HTTP request (``GET /v1/insights/{insight_id}``, server kind, continuing an incoming
``traceparent``), one per database statement (client kind, the statement text without its
parameters) and one per call to the embedding model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["Tracing", "tracing_requested"]

_STATEMENT_CHARS = 2000


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def _exporter(env: Mapping[str, str]) -> Any:
    """The OTLP span exporter the variables name; it reads headers, timeout and TLS settings itself."""
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "").lower()
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            from mosaic_memory.errors import ConfigurationError

            raise ConfigurationError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the package opentelemetry-exporter-otlp-proto-grpc; "
                "install it, or use http/protobuf (the default)"
            ) from None
        return OTLPSpanExporter(endpoint=traces or base)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    # As the specification says: the signal's own endpoint is used as is, the base one gets /v1/traces.
    return HttpExporter(endpoint=traces or base.rstrip("/") + "/v1/traces")


def _resource_attributes(env: Mapping[str, str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for pair in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = value.strip()
    attributes["service.name"] = env.get("OTEL_SERVICE_NAME") or attributes.get("service.name") or "mosaic-memory"
    return attributes


class Tracing:
    """Where spans go: an OpenTelemetry ``TracerProvider``, or nowhere (``Tracing()``)."""

    def __init__(self, provider: Any | None = None, *, owns_provider: bool = False) -> None:
        self.provider = provider
        self._owns = owns_provider
        self._tracer = provider.get_tracer("mosaic_memory") if provider is not None else None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Tracing:
        """Tracing as the ``OTEL_*`` variables ask; off (and import-free) when no endpoint is set."""
        env = os.environ if environ is None else environ
        if not tracing_requested(env):
            return cls()
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create(_resource_attributes(env)))
        provider.add_span_processor(BatchSpanProcessor(_exporter(env)))
        return cls(provider, owns_provider=True)

    @contextmanager
    def span(self, name: str, *, kind: str = "internal", attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """A span around the block (the exception, if any, recorded on it); ``None`` when off."""
        if self._tracer is None:
            yield None
            return
        from opentelemetry.trace import SpanKind

        with self._tracer.start_as_current_span(
            name, kind=getattr(SpanKind, kind.upper()), attributes=dict(attributes or {})
        ) as span:
            yield span

    @contextmanager
    def server_span(self, method: str, headers: Mapping[str, str]) -> Iterator[Any]:
        """The span of one HTTP request, continuing the caller's trace (``traceparent``) if any."""
        if self._tracer is None:
            yield None
            return
        from opentelemetry import context, propagate
        from opentelemetry.trace import SpanKind

        parent = propagate.extract(dict(headers))
        token = context.attach(parent)
        try:
            with self._tracer.start_as_current_span(
                f"{method}", kind=SpanKind.SERVER, attributes={"http.request.method": method}
            ) as span:
                yield span
        finally:
            context.detach(token)

    def instrument_engine(self, engine: Any) -> None:
        """A client span per statement run through ``engine`` (an ``AsyncEngine`` or ``Engine``)."""
        if self._tracer is None:
            return
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from sqlalchemy import event

        tracer = self._tracer
        sync_engine = getattr(engine, "sync_engine", engine)
        database = sync_engine.url.database or ""

        @event.listens_for(sync_engine, "before_cursor_execute")
        def _start(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
            operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
            span = tracer.start_span(
                f"{operation} {database}".strip(),
                kind=SpanKind.CLIENT,
                attributes={
                    "db.system.name": "postgresql",
                    "db.namespace": database,
                    "db.operation.name": operation,
                    "db.query.text": statement[:_STATEMENT_CHARS],
                },
            )
            conn.info.setdefault("mosaic_spans", []).append(span)

        @event.listens_for(sync_engine, "after_cursor_execute")
        def _end(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
            spans = conn.info.get("mosaic_spans")
            if spans:
                spans.pop().end()

        @event.listens_for(sync_engine, "handle_error")
        def _error(context: Any) -> None:
            conn = context.connection
            spans = conn.info.get("mosaic_spans") if conn is not None else None
            if spans:
                span = spans.pop()
                span.set_status(Status(StatusCode.ERROR, type(context.original_exception).__name__))
                span.end()

    def shutdown(self) -> None:
        """Flush and stop the exporter this object built (a provider handed in is the caller's)."""
        if self._owns and self.provider is not None:
            self.provider.shutdown()
