"""``mosaic-memory prefs`` and ``skills`` through the client against a real HTTP server.

The server is uvicorn in a thread, serving the suite's app state (same database, same loaded
model) through an engine of its own, so the CLI's own event loop talks real HTTP to it.
"""

from __future__ import annotations

import dataclasses
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
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from mosaic_memory.api.app import create_app
from mosaic_memory.cli.main import app as cli
from mosaic_memory.client import MosaicClient
from mosaic_memory.config import Settings
from mosaic_memory.container import AppState
from mosaic_memory.db import create_sessionmaker
from mosaic_memory.tiers import to_async_url
from tests.conftest import ADMIN_KEY


@pytest.fixture(scope="module")
def live_url(settings: Settings, state: AppState) -> Iterator[str]:
    # NullPool: connections belong to the server thread's event loop and close with each request.
    engine = create_async_engine(to_async_url(state.database.url), poolclass=NullPool)
    served = dataclasses.replace(state, engine=engine, sessionmaker=create_sessionmaker(engine))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings, state=served), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def mm(live_url: str) -> Any:
    """Run the CLI as a fresh user; returns invoke(*args) -> click Result."""
    name = f"cli-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{live_url}/v1/admin/users", json={"name": name}, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 201, r.text
    env = {"MOSAIC_URL": live_url, "MOSAIC_API_KEY": r.json()["api_key"], "COLUMNS": "200"}
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(cli, list(args), env=env)

    invoke.user = name  # type: ignore[attr-defined]
    return invoke


def ok(result: Any) -> Any:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_prefs_set_get_list_history_delete(mm: Any) -> None:
    out = json.loads(ok(mm("prefs", "set", "code_review_style", "small PRs, tests first", "--json")).stdout)
    assert out["created"] is True and out["value"] == "small PRs, tests first" and out["mutable"] is True
    text = ok(mm("prefs", "set", "editor", '{"theme": "dark", "tabs": 4}', "--json-value", "--immutable")).stdout
    assert "created editor" in text and '"theme":"dark"' in text and "(immutable)" in text
    ok(mm("prefs", "set", "editor", '{"theme": "light"}', "--json-value"))
    assert ok(mm("prefs", "get", "editor")).stdout.strip() == '{"theme":"light"}'
    got = json.loads(ok(mm("prefs", "get", "editor", "--json")).stdout)
    assert got["value"] == {"theme": "light"} and got["mutable"] is False  # omitted flag keeps it
    ok(mm("prefs", "set", "lang", "pt", "--scope", "project:site"))
    assert ok(mm("prefs", "get", "lang", "--scope", "project:site")).stdout.strip() == "pt"

    table = ok(mm("prefs", "list")).stdout
    for word in ("code_review_style", "small PRs, tests first", "editor", "project:site"):
        assert word in table
    listed = json.loads(ok(mm("prefs", "list", "--json", "--scope", "project:site")).stdout)
    assert [p["key"] for p in listed["items"]] == ["lang"]

    changes = json.loads(ok(mm("prefs", "history", "editor", "--json")).stdout)
    assert [c["action"] for c in changes] == ["update", "create"]
    assert "update" in ok(mm("prefs", "history", "editor")).stdout

    ok(mm("prefs", "delete", "lang", "--scope", "project:site"))
    gone = mm("prefs", "get", "lang", "--scope", "project:site")
    assert gone.exit_code == 1 and "PreferenceNotFound" in gone.output


def test_prefs_bad_input_is_one_line_and_exit_1(mm: Any) -> None:
    bad = mm("prefs", "set", "k", "{not json", "--json-value")
    assert bad.exit_code == 1 and "not valid JSON" in bad.output
    bad = mm("prefs", "set", "bad key", "x")
    assert bad.exit_code == 1 and "InvalidInput" in bad.output
    assert "no preferences" in ok(mm("prefs", "list")).stdout


def test_skills_add_list_get_find_delete(mm: Any) -> None:
    for name, description in [
        ("send-invoice", "Create and email a monthly invoice to a client"),
        ("book-travel", "Book flights and a hotel for a business trip"),
    ]:
        ok(mm("skills", "add", name, "--description", description))
    made = json.loads(
        ok(
            mm(
                "skills",
                "add",
                "deploy-to-staging",
                "-d",
                "Deploy the current branch to the staging environment",
                "-i",
                "make deploy ENV=staging",
                "--tag",
                "deploy",
                "--json",
            )
        ).stdout
    )
    assert made["instructions"] == "make deploy ENV=staging" and made["tags"] == ["deploy"]
    dup = mm("skills", "add", "deploy-to-staging", "-d", "again")
    assert dup.exit_code == 1 and "SkillExists" in dup.output

    table = ok(mm("skills", "list")).stdout
    assert "deploy-to-staging" in table and "send-invoice" in table
    assert "make deploy ENV=staging" in ok(mm("skills", "get", made["id"])).stdout

    found = json.loads(ok(mm("skills", "find", "push my branch to the test environment", "--json")).stdout)
    assert found["hits"][0]["id"] == made["id"]
    assert "deploy-to-staging" in ok(mm("skills", "find", "push my branch to the test environment", "-k", "1")).stdout

    changed = json.loads(
        ok(mm("skills", "update", made["id"], "-i", "make deploy ENV=stage", "-t", "ops", "--json")).stdout
    )
    assert changed["instructions"] == "make deploy ENV=stage" and changed["tags"] == ["ops"]
    assert changed["description"] == made["description"]  # what was not given stays
    nothing = mm("skills", "update", made["id"])
    assert nothing.exit_code == 1 and "nothing to change" in nothing.output
    taken = mm("skills", "update", made["id"], "--name", "send-invoice")
    assert taken.exit_code == 1 and len(taken.output.strip().splitlines()) == 1

    ok(mm("skills", "delete", made["id"]))
    gone = mm("skills", "get", made["id"])
    assert gone.exit_code == 1 and "SkillNotFound" in gone.output
    assert mm("skills", "get", "not-a-uuid").exit_code == 1


def test_sync_client_has_the_new_methods(live_url: str) -> None:
    name = f"sync-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{live_url}/v1/admin/users", json={"name": name}, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    with MosaicClient(live_url, r.json()["api_key"]) as mm:
        assert mm.set_preference("units", "metric").created
        assert mm.get_preference("units").value == "metric"
        assert [c.action for c in mm.preference_history("units")] == ["create"]
        skill = mm.create_skill("convert-units", "Convert imperial measurements to metric")
        assert mm.find_skills("how many centimetres is 3 inches?").hits[0].id == skill.id
        assert [s.id for s in mm.list_skills().items] == [skill.id]


def test_search_in_each_mode_and_federated(mm: Any) -> None:
    theme = json.loads(ok(mm("remember", "Prefers dark themes in every editor", "--json")).stdout)
    ok(mm("remember", "Backups run nightly at two"))

    def ids(*args: str) -> list[str]:
        return [h["id"] for h in json.loads(ok(mm("search", *args, "--kind", "insights", "--json")).stdout)["hits"]]

    assert ids("what colour scheme does she like?", "--mode", "semantic")[0] == theme["id"]
    assert ids("what colour scheme does she like?", "--mode", "keyword") == []  # no word in common
    assert ids("dark themes", "--mode", "hybrid")[0] == theme["id"]
    # no peer holds a grant for this user: the federated search is the local one, labelled so
    table = ok(mm("search", "dark themes", "--kind", "insights", "--federated")).stdout
    assert "origin" in table and "local" in table
    bad = mm("search", "dark themes", "--mode", "fuzzy")
    assert bad.exit_code != 0


def test_whoami(mm: Any) -> None:
    me = json.loads(ok(mm("whoami", "--json")).stdout)
    assert me == {"user": mm.user, "owners": [f"user:{mm.user}"], "scopes": ["read", "write"], "agent_id": None}
    assert ok(mm("whoami")).stdout.strip() == f"{mm.user} (read, write) reads user:{mm.user}"
