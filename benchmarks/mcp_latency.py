"""MCP tool latency over the real ``/mcp`` endpoint, beside the same operation over REST.

Serves the real app with uvicorn on a loopback port (lifespan included) against a throw-away
embedded PostgreSQL and the bundled model, then times, one call at a time:

- ``recall`` (MCP tool) against ``POST /v1/search`` (REST), the same query and k;
- ``remember`` (MCP tool) against ``POST /v1/insights`` (REST), a fresh sentence each call;
- ``find_skill`` (MCP tool, k=3) against ``POST /v1/search`` with kinds ["skills"] (REST).

    python -m benchmarks.mcp_latency [--calls 200] [--warmup 10]

Prints p50 / p95 / mean in milliseconds per operation and transport; the MCP client is the SDK's
own (one session over streamable HTTP), the REST client a keep-alive httpx client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["MOSAIC_CONFIG_FILE"] = ""

ADMIN_KEY = "mm_0bench00_benchmark-admin-key-local-only"
QUERIES = (
    "how do we deploy to staging?",
    "which editor does the user prefer?",
    "what broke in the last release?",
    "where are the database backups kept?",
)


def fact(i: int) -> str:
    return f"Benchmark fact {i}: service {i % 37} answers on port {8000 + i % 500} behind proxy {i % 11}"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(calls: int, warmup: int, op: Callable[[int], Awaitable[None]]) -> list[float]:
    for i in range(warmup):
        await op(-1 - i)
    samples = []
    for i in range(calls):
        t = time.perf_counter()
        await op(i)
        samples.append((time.perf_counter() - t) * 1000)
    return samples


async def main(calls: int, warmup: int) -> None:
    import uvicorn
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    from mosaic_memory.api.app import create_app
    from mosaic_memory.config import Settings
    from mosaic_memory.container import bootstrap_admin, build_state

    data = Path(tempfile.mkdtemp(prefix="mosaic-bench-mcp-", dir="/tmp"))
    data.chmod(0o755)  # the embedded server refuses a 700 directory when run as root
    settings = Settings(data_dir=data, tier="local", admin_key=ADMIN_KEY)
    state = await build_state(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(settings, state=state), log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await bootstrap_admin(state)
        while not server.started:
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=url, timeout=120) as rest:
            r = await rest.post(
                "/v1/admin/users", json={"name": "bench"}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            )
            key = r.json()["api_key"]
            h = {"Authorization": f"Bearer {key}"}
            for i in range(200):  # something to find
                await rest.post("/v1/insights", json={"content": fact(100_000 + i)}, headers=h)
            for name, description in (
                ("deploy-to-staging", "Deploy the current branch to the staging environment"),
                ("write-release-notes", "Draft release notes from merged pull requests"),
                ("rotate-backups", "Rotate and verify the nightly database backups"),
            ):
                body = {"name": name, "description": description, "instructions": "1. Do it. 2. Check it."}
                await rest.post("/v1/skills", json=body, headers=h)

            async with (
                create_mcp_http_client(headers=h) as mcp_http,
                Client(streamable_http_client(f"{url}/mcp", http_client=mcp_http)) as mcp,
            ):

                async def tool(name: str, args: dict[str, Any]) -> None:
                    result = await mcp.call_tool(name, args)
                    assert not result.is_error, result.content

                async def post(path: str, body: dict[str, Any]) -> None:
                    r = await rest.post(path, json=body, headers=h)
                    assert r.status_code < 300, r.text

                cases: list[tuple[str, str, Callable[[int], Awaitable[None]]]] = [
                    ("recall", "mcp", lambda i: tool("recall", {"query": QUERIES[i % 4], "k": 10})),
                    ("recall", "rest", lambda i: post("/v1/search", {"query": QUERIES[i % 4], "k": 10})),
                    ("remember", "mcp", lambda i: tool("remember", {"content": fact(i)})),
                    ("remember", "rest", lambda i: post("/v1/insights", {"content": fact(50_000 + i)})),
                    ("find_skill", "mcp", lambda i: tool("find_skill", {"task": QUERIES[i % 4], "k": 3})),
                    (
                        "find_skill",
                        "rest",
                        lambda i: post("/v1/search", {"query": QUERIES[i % 4], "k": 3, "kinds": ["skills"]}),
                    ),
                ]
                print(f"{calls} calls each after {warmup} warm-up calls; {os.cpu_count()} cores; {url}")
                print("| operation | transport | p50 ms | p95 ms | mean ms |")
                print("| --- | --- | --- | --- | --- |")
                for op, transport, fn in cases:
                    samples = await timed(calls, warmup, fn)
                    mean = sum(samples) / len(samples)
                    p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
                    print(f"| {op} | {transport} | {p50:.1f} | {p95:.1f} | {mean:.1f} |", flush=True)
    finally:
        server.should_exit = True
        await serving
        sock.close()
        await state.aclose()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.warmup))
