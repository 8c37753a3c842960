"""Capture through real ``mosaic-memory`` processes against the suite's ``cli_url`` server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, auth, free_port, scratch_dir

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = Path(__file__).resolve().parent / "payloads"


def payload(name: str, **changes: Any) -> dict[str, Any]:
    """A recorded hook payload (``payloads/NAME.json``), with fields replaced."""
    data: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    data.update(changes)
    return data


@dataclass
class Run:
    result: subprocess.CompletedProcess[str]
    seconds: float

    @property
    def returncode(self) -> int:
        return self.result.returncode

    @property
    def stdout(self) -> str:
        return self.result.stdout

    @property
    def stderr(self) -> str:
        return self.result.stderr


@dataclass
class User:
    """A user of the service with its own data dir (so its own capture spool)."""

    url: str
    key: str
    data_dir: Path
    down_url: str = field(default_factory=lambda: f"http://127.0.0.1:{free_port()}")  # nothing listens there

    @property
    def spool(self) -> Path:
        return self.data_dir / "capture" / "spool.jsonl"

    def env(self, *, down: bool = False, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
        env.update(
            MOSAIC_URL=self.down_url if down else self.url,
            MOSAIC_API_KEY=self.key,
            MOSAIC_DATA_DIR=str(self.data_dir),
            MOSAIC_CONFIG_FILE="",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
        )
        env.update(extra)
        return env

    def cli(self, *args: str, stdin: str | None = None, down: bool = False, **extra: str) -> Run:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "mosaic_memory", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=self.env(down=down, **extra),
            timeout=120,
        )
        return Run(result, time.perf_counter() - started)

    def capture(self, agent: str, data: dict[str, Any], *, argv: bool = False, down: bool = False) -> Run:
        """What a hook does: ``mosaic-memory capture --agent AGENT`` with the JSON on stdin (or as argv)."""
        text = json.dumps(data)
        if argv:
            return self.cli("capture", "--agent", agent, text, down=down)
        return self.cli("capture", "--agent", agent, stdin=text, down=down)

    def logs(self, **params: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/v1/logs", params={"limit": 1000, **params}, headers=auth(self.key), timeout=30)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def spooled(self) -> list[dict[str, Any]]:
        if not self.spool.exists():
            return []
        return [json.loads(line) for line in self.spool.read_text().splitlines() if line.strip()]


@pytest.fixture
def user(cli_url: str) -> Iterator[User]:
    name = f"capture-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{cli_url}/v1/admin/users", json={"name": name}, headers=auth(ADMIN_KEY), timeout=30)
    assert r.status_code == 201, r.text
    folder = scratch_dir("mosaic-capture-")
    yield User(cli_url, r.json()["api_key"], folder)
    shutil.rmtree(folder, ignore_errors=True)
