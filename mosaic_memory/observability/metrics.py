"""The service's Prometheus metrics, in a registry of their own per process (one per ``AppState``).

Labels are bounded by design: a route *template*, a status code, a search mode and kinds, a job id,
an outcome. Never an owner, a key, a query or a path with ids in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metrics", "kinds_label"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: from a cached keyword lookup (~1 ms) to a cold model or a slow provider (~10 s).
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_JOB_SECONDS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


def kinds_label(kinds: Sequence[str] | None, every: Sequence[str]) -> str:
    """One label value for the kinds a search covered: ``all``, or the sorted names joined by ``+``."""
    chosen = sorted(set(kinds or every))
    return "all" if chosen == sorted(set(every)) else "+".join(chosen)


class _PoolCollector(Collector):
    """Reads the SQLAlchemy pool at scrape time (a gauge set on checkout would miss idle periods)."""

    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self._read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        in_use, idle = self._read()
        family = GaugeMetricFamily(
            "mosaic_db_pool_connections", "Database connections of this process's pool", labels=["state"]
        )
        family.add_metric(["in_use"], in_use)
        family.add_metric(["idle"], idle)
        yield family


class Metrics:
    """Every metric of one process. Methods are cheap enough for the request path."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.info = Gauge("mosaic_info", "This process: version and storage tier", ["version", "tier"], registry=r)
        self.http_duration = Histogram(
            "mosaic_http_request_duration_seconds",
            "HTTP requests by method, route template and status code",
            ["method", "route", "status"],
            buckets=_LATENCY,
            registry=r,
        )
        self.search_duration = Histogram(
            "mosaic_search_duration_seconds",
            "Searches by mode and the kinds they covered",
            ["mode", "kinds"],
            buckets=_LATENCY,
            registry=r,
        )
        self.embedding_duration = Histogram(
            "mosaic_embedding_duration_seconds",
            "Calls to the embedding model by operation (documents or query)",
            ["operation"],
            buckets=_LATENCY,
            registry=r,
        )
        self.embedding_batch = Histogram(
            "mosaic_embedding_batch_size",
            "Texts per call to the embedding model",
            ["operation"],
            buckets=_BATCH,
            registry=r,
        )
        self.embedding_errors = Counter(
            "mosaic_embedding_errors_total", "Failed calls to the embedding model", ["operation"], registry=r
        )
        self.job_runs = Counter(
            "mosaic_job_runs_total", "Job runs by job id and outcome", ["job", "status"], registry=r
        )
        self.job_duration = Histogram(
            "mosaic_job_duration_seconds", "Job run durations by job id", ["job"], buckets=_JOB_SECONDS, registry=r
        )
        self.logs_pending = Gauge(
            "mosaic_log_embeddings_pending",
            "Agent log events stored without their vector yet (read at scrape time)",
            registry=r,
        )

    def watch_pool(self, pool: Any) -> None:
        """Report ``pool`` (a SQLAlchemy ``QueuePool``) as ``mosaic_db_pool_connections``."""

        def read() -> tuple[int, int]:
            return int(pool.checkedout()), int(pool.checkedin())

        self.registry.register(_PoolCollector(read))

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
