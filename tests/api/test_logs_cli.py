"""`mosaic-memory logs ...` against a running service (uvicorn in a thread, the suite's database)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from mosaic_memory.cli.common import short_id
from mosaic_memory.cli.main import app as cli
from mosaic_memory.container import AppState
from tests.conftest import ADMIN_KEY
from tests.jobs.conftest import runner_for


@pytest.fixture
def env(cli_url: str) -> dict[str, str]:
    r = httpx.post(
        f"{cli_url}/v1/admin/users",
        json={"name": f"cli-{uuid.uuid4().hex[:8]}"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert r.status_code == 201, r.text
    return {"MOSAIC_URL": cli_url, "MOSAIC_API_KEY": r.json()["api_key"], "MOSAIC_CONFIG_FILE": ""}


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


async def test_insights_sources_shows_the_logs_an_insight_came_from(env: dict[str, str], state: AppState) -> None:
    deploy = "User said they want all deploy notifications in #ops-alerts, not #general"
    migration = "Ran the migration 0042 on staging; it took 14 minutes and locked the orders table"
    for line in (deploy, "ok", migration):
        await asyncio.to_thread(mm, env, "logs", "add", "--session", "ops-1", "--agent", "deployer", line, "--json")
    run = await runner_for(state).run("summarize", trigger="test")
    assert run.status == "succeeded", run

    listed = (await asyncio.to_thread(mm, env, "insights", "list", "--json"))["items"]
    (insight,) = [i for i in listed if i["content"].startswith(deploy)]
    page = await asyncio.to_thread(mm, env, "insights", "sources", insight["id"], "--json")
    assert [(x["content"], x["session_id"], x["agent_id"]) for x in page["items"]] == [(deploy, "ops-1", "deployer")]
    assert page["next_cursor"] is None
    table = await asyncio.to_thread(mm, env, "insights", "sources", insight["id"])
    assert "ops-1" in table and "deployer" in table and short_id(page["items"][0]["id"]) in table, table

    missing = await asyncio.to_thread(CliRunner().invoke, cli, ["insights", "sources", str(uuid.uuid4())], env=env)
    assert missing.exit_code == 1 and "not found" in missing.output and "Traceback" not in missing.output
