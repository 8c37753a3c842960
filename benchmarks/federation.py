"""Federated search latency: one asking instance, two peers on loopback, beside the same search local-only.

``python -m benchmarks.federation [--rows 100] [--queries 40]`` starts three real ``serve``
processes (own data directories, embedded PostgreSQL, certificates from a CA made here), gives
the asking instance ``b`` a grant on each peer, and times ``POST /v1/search`` on ``b`` from an
HTTP client: local-only, then ``federated: true``, query by query interleaved, so load drifts hit
both alike. Prints JSON; the ratio federated/local is the figure (a federated search embeds the
query three times, once per instance, and waits for the slower peer).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import fact_texts, machine, question_texts, stats
from mosaic_memory.federation.identity import (
    FederationPaths,
    init_ca,
    init_identity,
    install_certificate,
    issue_certificate,
    trust_bundle,
)

ADMIN_KEY = "mm_0badc0de_federation-benchmark-admin-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
PASS = b"benchmark"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(root: Path, name: str) -> dict[str, Any]:
    data = root / name
    data.mkdir(mode=0o755)
    port, fed = _port(), _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env.update(
        MOSAIC_DATA_DIR=str(data),
        MOSAIC_TIER="local",
        MOSAIC_CONFIG_FILE="",
        MOSAIC_ADMIN_KEY=ADMIN_KEY,
        MOSAIC_JOBS__ENABLED="false",
        MOSAIC_LOGS__BACKGROUND_EMBEDDER="false",
        MOSAIC_FEDERATION__PORT=str(fed),
        HF_HUB_OFFLINE="1",
    )
    return {"name": name, "data": data, "port": port, "fed": fed, "env": env, "proc": None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.federation", description=__doc__)
    parser.add_argument("--rows", type=int, default=100, help="insights per instance")
    parser.add_argument("--queries", type=int, default=40, help="timed queries per mode")
    args = parser.parse_args(argv)
    root = Path(os.environ.get("MOSAIC_TEST_TMP", "/tmp")) / f"mosaic-fed-bench-{os.getpid()}"
    root.mkdir(mode=0o755)
    insts = {n: _start(root, n) for n in ("a", "b", "c")}
    paths = {n: FederationPaths.for_data_dir(i["data"]) for n, i in insts.items()}
    for n in insts:
        init_identity(paths[n], n)
    init_ca(paths["a"], PASS)
    for n in insts:
        trust_bundle(paths[n], paths["a"].ca_cert.read_bytes())
        cert, _ = issue_certificate(paths["a"], PASS, n, public_key_pem=paths[n].public_key.read_bytes())
        install_certificate(paths[n], cert)
    try:
        for inst in insts.values():
            log = (root / f"{inst['name']}.log").open("wb")
            inst["proc"] = subprocess.Popen(
                [sys.executable, "-m", "mosaic_memory", "serve", "--port", str(inst["port"])],
                env=inst["env"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for inst in insts.values():
            url = f"http://127.0.0.1:{inst['port']}"
            deadline = time.monotonic() + 600
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or inst["proc"].poll() is not None:
                    raise RuntimeError(f"{inst['name']} did not start; see {root}/{inst['name']}.log")
                time.sleep(0.5)
            inst["client"] = httpx.Client(base_url=url, timeout=60)
        keys = {}
        for n, inst in insts.items():
            r = inst["client"].post("/v1/admin/users", json={"name": "alice"}, headers=ADMIN)
            keys[n] = {"Authorization": f"Bearer {r.json()['api_key']}"}
            texts = fact_texts(args.rows, seed={"a": 1, "b": 2, "c": 3}[n])
            for i in range(0, len(texts), 100):
                items = [{"content": t} for t in texts[i : i + 100]]
                r = inst["client"].post("/v1/insights/batch", json={"items": items}, headers=keys[n])
                assert r.status_code == 201, r.text
        b = insts["b"]
        for n in ("a", "c"):
            peer = insts[n]
            peer["client"].post(
                "/v1/federation/peers", json={"name": "b", "url": f"https://127.0.0.1:{b['fed']}"}, headers=ADMIN
            )
            b["client"].post(
                "/v1/federation/peers", json={"name": n, "url": f"https://127.0.0.1:{peer['fed']}"}, headers=ADMIN
            )
            r = peer["client"].post(
                "/v1/federation/grants",
                json={"peer": "b", "owner": "user:alice", "kinds": ["insights"], "expires_in": "1d"},
                headers=keys[n],
            )
            assert r.status_code == 201, r.text
        queries = question_texts(args.queries + 5, seed=7)
        local_ms: list[float] = []
        fed_ms: list[float] = []
        failures = 0
        for i, q in enumerate(queries):
            for federated, sink in ((False, local_ms), (True, fed_ms)):
                started = time.perf_counter()
                r = b["client"].post(
                    "/v1/search", json={"query": q, "k": 10, "federated": federated}, headers=keys["b"]
                )
                elapsed = (time.perf_counter() - started) * 1000
                assert r.status_code == 200, r.text
                if federated and r.json()["peers_failed"]:
                    failures += 1
                if i >= 5:  # the first few warm the connection pools and caches
                    sink.append(elapsed)
        local, fed = stats(local_ms), stats(fed_ms)
        result = {
            "case": "federated search, 2 peers on loopback vs local-only",
            "rows_per_instance": args.rows,
            "queries": args.queries,
            "local_only_ms": local,
            "federated_ms": fed,
            "ratio_p50": round(fed["p50_ms"] / local["p50_ms"], 2),
            "ratio_p95": round(fed["p95_ms"] / local["p95_ms"], 2),
            "federated_with_peers_failed": failures,
            "machine": machine(),
        }
        print(json.dumps(result, indent=2))
        return 0
    finally:
        for inst in insts.values():
            proc = inst["proc"]
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
