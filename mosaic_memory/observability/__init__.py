"""Watching a running service: Prometheus metrics, OpenTelemetry traces (opt-in), structured logs.

Nothing here imports OpenTelemetry unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces-only
variant) is set; every object is built per process by the container, never at import.
"""

from __future__ import annotations

from mosaic_memory.observability.embedding import ObservedEmbedder
from mosaic_memory.observability.metrics import Metrics
from mosaic_memory.observability.tracing import Tracing

__all__ = ["Metrics", "ObservedEmbedder", "Tracing"]
