"""A real ``mosaic-memory serve`` process on the suite's database, for OAuth clients to talk to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mosaic_memory.container import AppState
from tests.conftest import ADMIN_KEY, free_port, scratch_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def service_url(state: AppState) -> Iterator[str]:
    """The URL of a separate service process sharing the suite's embedded database (as a standalone
    URL); no scheduler and no background embedder, so it does only what the tests ask."""
    port = free_port()
    data_dir = scratch_dir("mosaic-oauth-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env.update(
        MOSAIC_DATA_DIR=str(data_dir),
        MOSAIC_TIER="standalone",
        MOSAIC_DATABASE_URL=state.database.url,
        MOSAIC_ADMIN_KEY=ADMIN_KEY,
        MOSAIC_CONFIG_FILE="",
        MOSAIC_JOBS__ENABLED="false",
        MOSAIC_LOGS__BACKGROUND_EMBEDDER="false",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mosaic_memory", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("serve did not become ready")
        time.sleep(0.3)
    yield url
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
