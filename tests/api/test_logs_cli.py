"""`mosaic-memory logs ...` against a running service (uvicorn in a thread, the suite's database)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from typer.testing import CliRunner

from mosaic_memory.api.app import create_app
from mosaic_memory.cli.main import app as cli
from mosaic_memory.config import LogSettings, Settings
from mosaic_memory.container import AppState
from tests.conftest import ADMIN_KEY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_url(settings: Settings, state: AppState) -> Iterator[str]:
    """A real HTTP server on loopback. It reaches the suite's embedded database as a standalone
    URL (so its shutdown leaves that server running) and runs no background embedder."""
    own = settings.model_copy(
        update={
            "tier": "standalone",
            "database_url": SecretStr(state.database.url),
            "logs": LogSettings(background_embedder=False),
        }
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(own), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=60)


@pytest.fixture
def env(live_url: str) -> dict[str, str]:
    r = httpx.post(
        f"{live_url}/v1/admin/users",
        json={"name": f"cli-{uuid.uuid4().hex[:8]}"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert r.status_code == 201, r.text
    return {"MOSAIC_URL": live_url, "MOSAIC_API_KEY": r.json()["api_key"], "MOSAIC_CONFIG_FILE": ""}


def mm(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_logs_add_list_search(env: dict[str, str]) -> None:
    first = mm(env, "logs", "add", "--session", "S1", "the nightly build ran out of disk space", "--json")
    assert first["count"] == 1
    mm(env, "logs", "add", "--session", "S1", "cleaned the cache", "--agent", "janitor", "--level", "debug", "--json")
    mm(env, "logs", "add", "--session", "S2", "a different session entirely", "--json")

    page = mm(env, "logs", "list", "--session", "S1", "--json")
    assert [e["content"] for e in page["items"]] == ["the nightly build ran out of disk space", "cleaned the cache"]
    assert page["items"][0]["id"] == first["ids"][0]
    assert [e["level"] for e in page["items"]] == ["info", "debug"]
    assert page["items"][1]["agent_id"] == "janitor"
    one = mm(env, "logs", "list", "--session", "S1", "--limit", "1", "--json")
    rest = mm(env, "logs", "list", "--session", "S1", "--cursor", one["next_cursor"], "--json")
    assert [e["id"] for e in one["items"] + rest["items"]] == [e["id"] for e in page["items"]]

    # Keyword search is the one that holds right after a write (vectors may still be pending).
    hits = mm(env, "logs", "search", "disk space", "--session", "S1", "--mode", "keyword", "--json")["hits"]
    assert [h["id"] for h in hits] == first["ids"] and hits[0]["kind"] == "logs"
    assert mm(env, "logs", "search", "disk space", "--session", "S2", "--mode", "keyword", "--json")["hits"] == []
    hits = mm(env, "logs", "search", "cache", "--agent", "janitor", "--mode", "keyword", "--json")["hits"]
    assert [h["content"] for h in hits] == ["cleaned the cache"]
    assert "nightly" in mm(env, "logs", "search", "disk space", "--session", "S1")

    table = mm(env, "logs", "list", "--session", "S1")
    assert "nightly" in table and "janitor" in table
    assert "logged " in mm(env, "logs", "add", "--session", "S3", "plain output")


def test_logs_cli_errors_are_one_line(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["logs", "add", "--session", "S1", "x", "--level", "loud"], env=env)
    assert result.exit_code == 1
    assert "InvalidInput" in result.output
    assert mm(env, "logs", "list", "--json")["items"] == []
