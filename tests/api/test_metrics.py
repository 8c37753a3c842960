"""/metrics: Prometheus text a real parser reads, with every metric of docs/operations.md moving
when its event happens, and no owner, key or query among the labels."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from mosaic_memory.container import AppState
from tests.api.test_logs import deferred_batch, principal_of
from tests.conftest import UserFactory

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: httpx.AsyncClient) -> tuple[Samples, str]:
    r = await http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, r.text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_with_what_happens(
    http: httpx.AsyncClient, make_user: UserFactory, admin_headers: dict[str, str], state: AppState
) -> None:
    name, h = await make_user("metrics")
    query = f"which editor theme does {uuid.uuid4().hex} prefer"
    before, _ = await scrape(http)

    created = await http.post("/v1/insights", json={"content": "Prefers a dark editor theme"}, headers=h)
    assert created.status_code == 201, created.text
    insight_id = created.json()["id"]
    assert (await http.get(f"/v1/insights/{insight_id}", headers=h)).status_code == 200
    found = await http.post("/v1/search", json={"query": query, "mode": "hybrid", "kinds": ["insights"]}, headers=h)
    assert found.status_code == 200
    assert (await http.post("/v1/search", json={"query": query, "mode": "keyword"}, headers=h)).status_code == 200
    assert (await http.get(f"/no/such/{uuid.uuid4()}")).status_code == 404
    logged = await http.post("/v1/logs", json={"events": deferred_batch(state.settings, "metrics")}, headers=h)
    assert logged.status_code in (200, 201, 202), logged.text
    assert logged.json()["pending"] > 0
    ran = await http.post("/v1/jobs/expire-decay/runs", headers=admin_headers)
    assert ran.status_code == 200, ran.text

    after, text = await scrape(http)

    def grew(metric: str, by: float = 1.0, **labels: str) -> None:
        assert value(after, metric, **labels) - value(before, metric, **labels) >= by, (metric, labels)

    http_count = "mosaic_http_request_duration_seconds_count"
    grew(http_count, method="POST", route="/v1/search", status="200", by=2)
    grew(http_count, method="POST", route="/v1/insights", status="201")
    grew(http_count, method="GET", route="/v1/insights/{insight_id}", status="200")
    grew(http_count, method="GET", route="<unmatched>", status="404")
    grew("mosaic_search_duration_seconds_count", mode="hybrid", kinds="insights")
    grew("mosaic_search_duration_seconds_count", mode="keyword", kinds="all")
    grew("mosaic_embedding_duration_seconds_count", operation="query")
    grew("mosaic_embedding_duration_seconds_count", operation="documents")
    grew("mosaic_embedding_batch_size_sum", operation="documents")
    grew("mosaic_job_runs_total", job="expire-decay", status="succeeded")
    grew("mosaic_job_duration_seconds_count", job="expire-decay")
    assert value(after, "mosaic_log_embeddings_pending") >= logged.json()["pending"]
    assert value(after, "mosaic_info", version=_version(), tier="local") == 1.0
    pool = {dict(labels)["state"] for (metric, labels) in after if metric == "mosaic_db_pool_connections"}
    assert pool == {"in_use", "idle"}

    key = h["Authorization"].split()[-1]
    owner_ids = [str(o) for o in (await principal_of(state, h)).owner_ids]
    labels = {v for (_, pairs) in after for _, v in pairs}
    for secret in (name, key, query, insight_id, *owner_ids, "dark editor theme"):
        assert not any(secret in label for label in labels), secret
        assert secret not in text


def _version() -> str:
    from mosaic_memory import __version__

    return __version__


async def test_request_id_round_trip(http: httpx.AsyncClient) -> None:
    given = await http.get("/healthz", headers={"X-Request-ID": "trace-me-123"})
    assert given.headers["x-request-id"] == "trace-me-123"
    fresh = await http.get("/healthz", headers={"X-Request-ID": "not a valid id; <x>"})
    assert fresh.headers["x-request-id"] != "not a valid id; <x>" and len(fresh.headers["x-request-id"]) == 32
