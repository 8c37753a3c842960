"""The CLI as a person uses it: real `mosaic-memory` processes against a real `serve` process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, scratch_dir, start_serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    def __init__(self, data_dir: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.data_dir, self.port, self.proc = data_dir, port, proc
        self.url = f"http://127.0.0.1:{port}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
        env.update(MOSAIC_DATA_DIR=str(self.data_dir), MOSAIC_URL=self.url, MOSAIC_CONFIG_FILE="")
        env.update(extra)
        return env

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mosaic_memory", *args],
            capture_output=True,
            text=True,
            env=self.env(**env),
            timeout=120,
        )


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    data_dir = scratch_dir("mosaic-cli-")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env.update(MOSAIC_DATA_DIR=str(data_dir), MOSAIC_ADMIN_KEY=ADMIN_KEY, MOSAIC_CONFIG_FILE="")
    svc = Service(data_dir, port, start_serve(port, env, data_dir / "serve.log"))
    yield svc
    if svc.proc.poll() is None:
        svc.proc.send_signal(signal.SIGTERM)
        svc.proc.wait(timeout=30)
    shutil.rmtree(data_dir, ignore_errors=True)


def test_users_remember_recall(service: Service) -> None:
    created = service.cli("users", "create", "carla", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["api_key"]
    stored = service.cli("remember", "Carla prefers dark themes in every editor", "--tag", "ui", MOSAIC_API_KEY=key)
    assert stored.returncode == 0, stored.stderr
    assert "stored" in stored.stdout
    again = service.cli("remember", "Carla prefers dark themes in every editor", MOSAIC_API_KEY=key)
    assert "already stored" in again.stdout
    found = service.cli("recall", "what colour scheme does she like?", "--json", MOSAIC_API_KEY=key)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert hits[0]["content"] == "Carla prefers dark themes in every editor"
    assert service.cli("remember", "Deploys go out on Tuesdays after the standup", MOSAIC_API_KEY=key).returncode == 0
    table = service.cli("recall", "colour scheme", "-k", "3", MOSAIC_API_KEY=key)
    assert "dark themes" in table.stdout
    listed = service.cli("recall", "colour scheme", "-k", "3", "--json", MOSAIC_API_KEY=key)
    ids = [hit["id"] for hit in json.loads(listed.stdout)["hits"]]
    # ids written within a minute share their first 8 digits (UUIDv7): the table shows the last 8
    assert len(ids) == 2 and ids[0][:8] == ids[1][:8]
    assert all(i[-8:] in table.stdout for i in ids)


def test_insights_group_and_search_filters(service: Service) -> None:
    key = json.loads(service.cli("users", "create", "erin", "--json").stdout)["api_key"]
    first = json.loads(
        service.cli(
            "insights",
            "add",
            "Erin's laptop runs Debian testing",
            "--tag",
            "hw",
            "--category",
            "setup",
            "--json",
            MOSAIC_API_KEY=key,
        ).stdout
    )
    service.cli("insights", "add", "Erin's phone is a Pixel", "--tag", "hw", MOSAIC_API_KEY=key)
    listed = json.loads(service.cli("insights", "list", "--json", MOSAIC_API_KEY=key).stdout)
    assert len(listed["items"]) == 2
    got = service.cli("insights", "get", first["id"], MOSAIC_API_KEY=key)
    assert "Debian testing" in got.stdout
    updated = service.cli(
        "insights", "update", first["id"], "--importance", "0.9", "--pinned", "--json", MOSAIC_API_KEY=key
    )
    assert json.loads(updated.stdout)["pinned"] is True
    hits = json.loads(
        service.cli("search", "operating system", "--category", "setup", "--json", MOSAIC_API_KEY=key).stdout
    )["hits"]
    assert [h["id"] for h in hits] == [first["id"]]
    none = json.loads(
        service.cli("search", "operating system", "--before", "2001-01-01", "--json", MOSAIC_API_KEY=key).stdout
    )["hits"]
    assert none == []
    bad = service.cli("search", "x", "--meta", "novalue", MOSAIC_API_KEY=key)
    assert bad.returncode == 1 and "KEY=VALUE" in bad.stderr
    assert service.cli("insights", "delete", first["id"], MOSAIC_API_KEY=key).returncode == 0
    gone = service.cli("insights", "get", first["id"], MOSAIC_API_KEY=key)
    assert gone.returncode == 1 and "InsightNotFound" in gone.stderr


def test_keys_and_teams(service: Service) -> None:
    assert service.cli("users", "create", "dan").returncode == 0
    made = service.cli("keys", "create", "--user", "dan", "--scope", "read", "--agent", "bot", "--json")
    assert made.returncode == 0, made.stderr
    body = json.loads(made.stdout)
    listed = service.cli("keys", "list", "--user", "dan", "--json")
    prefixes = [k["prefix"] for k in json.loads(listed.stdout)]
    assert body["key"]["prefix"] in prefixes
    assert body["api_key"] not in listed.stdout
    denied = service.cli("remember", "read-only keys cannot write", MOSAIC_API_KEY=body["api_key"])
    assert denied.returncode == 1
    assert "PermissionDenied" in denied.stderr
    assert service.cli("keys", "revoke", body["key"]["prefix"]).returncode == 0
    revoked = service.cli("recall", "anything", MOSAIC_API_KEY=body["api_key"])
    assert revoked.returncode == 1 and "revoked" in revoked.stderr
    team = service.cli("teams", "create", "ops", "--member", "dan", "--json")
    assert json.loads(team.stdout)["members"] == ["dan"]
    dup = service.cli("teams", "create", "ops")
    assert dup.returncode == 1 and len(dup.stderr.strip().splitlines()) == 1
    assert service.cli("users", "create", "eve").returncode == 0
    joined = service.cli("teams", "add-member", "ops", "eve")
    assert joined.returncode == 0 and "dan, eve" in joined.stdout
    teams = {t["name"]: t["members"] for t in json.loads(service.cli("teams", "list", "--json").stdout)}
    assert sorted(teams["ops"]) == ["dan", "eve"]
    users = {u["name"] for u in json.loads(service.cli("users", "list", "--json").stdout)}
    assert {"dan", "eve"} <= users
    stranger = service.cli("teams", "add-member", "ops", "nobody")
    assert stranger.returncode == 1 and len(stranger.stderr.strip().splitlines()) == 1
    left = service.cli("teams", "remove-member", "ops", "eve")
    assert left.returncode == 0 and left.stdout.strip() == "team ops: dan"
    again = service.cli("teams", "remove-member", "ops", "eve")
    assert again.returncode == 1 and again.stderr.strip().splitlines() == [again.stderr.strip()]
    assert "not a member" in again.stderr


def test_errors_are_one_line(service: Service) -> None:
    nokey = service.cli("recall", "anything")
    assert nokey.returncode == 1
    assert nokey.stderr.strip().splitlines() == [nokey.stderr.strip()]
    assert "MOSAIC_API_KEY" in nokey.stderr
    bad_k = service.cli("recall", "x", "-k", "0", MOSAIC_API_KEY=ADMIN_KEY)
    assert bad_k.returncode != 0
    down = service.cli("recall", "x", MOSAIC_API_KEY=ADMIN_KEY, MOSAIC_URL="http://127.0.0.1:9")
    assert down.returncode == 1 and "cannot reach" in down.stderr


def test_config_show_redacts_secrets(service: Service) -> None:
    out = service.cli(
        "config",
        "show",
        "--json",
        MOSAIC_DATABASE_URL="postgresql://mm:hunter2-secret@db.example:5432/mosaic",
        MOSAIC_API_KEY="mm_12345678_supersecretvalue-abcdef",
        MOSAIC_EMBEDDINGS__API_KEY="sk-embedding-secret",
    )
    assert out.returncode == 0, out.stderr
    assert "hunter2" not in out.stdout
    assert "supersecretvalue" not in out.stdout
    assert "sk-embedding-secret" not in out.stdout
    data = json.loads(out.stdout)
    assert data["effective_tier"] == "standalone"
    assert data["database_url"].startswith("postgresql://mm:***@db.example")
    table = service.cli("config", "show", MOSAIC_DATABASE_URL="postgresql://mm:hunter2-secret@db/x")
    assert "hunter2" not in table.stdout and "data_dir" in table.stdout


def test_serve_stops_the_embedded_server_on_exit(service: Service) -> None:
    pid_file = service.data_dir / "pg" / "postmaster.pid"
    assert pid_file.exists()
    service.proc.send_signal(signal.SIGTERM)
    service.proc.wait(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status reports it
    assert service.proc.returncode in (0, -signal.SIGTERM)
    output = (service.data_dir / "serve.log").read_text()
    assert "Traceback" not in output, output
    deadline = time.monotonic() + 10
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_file.exists()
