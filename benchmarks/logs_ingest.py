"""Agent-log ingest: how long a write waits, and how fast the backlog is embedded.

Runs the real app in-process against a throw-away embedded PostgreSQL and the bundled model:

    python benchmarks/logs_ingest.py [--events 5000] [--small 25]

Prints the model's throughput on short log lines, the latency of a small (inline-embedded)
and a large (deferred) POST /v1/logs, and the background embedder's drain rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["MOSAIC_CONFIG_FILE"] = ""


def line(i: int) -> str:
    return f"step {i}: tool search_files('config {i % 97}') returned {i % 13} matches in {i % 400} ms"


async def main(events: int, small: int) -> None:
    from mosaic_memory.api.app import create_app
    from mosaic_memory.config import Settings
    from mosaic_memory.container import bootstrap_admin, build_state
    from mosaic_memory.logs.worker import LogEmbeddingWorker

    data = Path(tempfile.mkdtemp(prefix="mosaic-bench-", dir="/tmp"))
    data.chmod(0o755)
    admin = "mm_0badc0de_benchmark-admin-key-only"
    settings = Settings(data_dir=data, tier="local", admin_key=admin)
    state = await build_state(settings)
    try:
        await bootstrap_admin(state)
        app = create_app(settings, state=state)
        app.state.mosaic = state
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b", timeout=600) as http:
            r = await http.post("/v1/admin/users", json={"name": "bench"}, headers={"Authorization": f"Bearer {admin}"})
            h = {"Authorization": f"Bearer {r.json()['api_key']}"}

            texts = [line(i) for i in range(200)]
            await state.embedder.embed_documents(texts[:8])
            t = time.perf_counter()
            await state.embedder.embed_documents(texts)
            rate = len(texts) / (time.perf_counter() - t)
            print(f"model: {rate:.0f} short texts/s ({state.embedder.model_id}, batch of {len(texts)})")
            print(
                f"config: budget {settings.logs.embed_inline_budget_ms} ms x {settings.logs.embed_texts_per_s:.0f}/s"
                f" -> inline up to {settings.logs.inline_max_events} events"
            )

            body = {"events": [{"session_id": "small", "content": line(10_000 + i)} for i in range(small)]}
            t = time.perf_counter()
            r = await http.post("/v1/logs", json=body, headers=h)
            ms = (time.perf_counter() - t) * 1000
            print(f"POST {small} events: {ms:.0f} ms, status {r.status_code}, pending {r.json()['pending']}")

            body = {"events": [{"session_id": "burst", "content": line(i)} for i in range(events)]}
            t = time.perf_counter()
            r = await http.post("/v1/logs", json=body, headers=h)
            ms = (time.perf_counter() - t) * 1000
            print(f"POST {events} events: {ms:.0f} ms, status {r.status_code}, pending {r.json()['pending']}")

            r = await http.post(
                "/v1/search", json={"query": "config 42", "kinds": ["logs"], "mode": "keyword"}, headers=h
            )
            print(f"keyword search right after: {len(r.json()['hits'])} hits")

            worker = LogEmbeddingWorker(state.logs, state.sessionmaker)
            t = time.perf_counter()
            n = await worker.drain()
            s = time.perf_counter() - t
            print(
                f"background drain: {n} events in {s:.1f} s = {n / s:.0f} events/s "
                f"(batches of {settings.logs.embed_batch_size})"
            )
    finally:
        await state.aclose()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--small", type=int, default=25)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.small))
