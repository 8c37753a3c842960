"""``mosaic-memory mcp config``: each client's entry, printed and parsed, and merged into its own file.

Real ``mosaic-memory`` processes with HOME (and CODEX_HOME, XDG_CONFIG_HOME) in a scratch folder,
so the client files a person has are never touched. Whether the entries really connect is
tested against a running service in ``tests/mcp/test_mcp_eras.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import scratch_dir

ROOT = Path(__file__).resolve().parents[2]
URL = "http://127.0.0.1:8765"
KEY = "mm_1234abcd_a-key-that-must-never-be-written-or-printed"


@pytest.fixture
def home() -> Iterator[Path]:
    path = scratch_dir("mosaic-mcpcfg-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSAIC_", "CODEX_", "XDG_"))}
    env.update(HOME=str(home), MOSAIC_CONFIG_FILE="", MOSAIC_API_KEY=KEY, MOSAIC_URL=URL)
    run = subprocess.run(
        [sys.executable, "-m", "mosaic_memory", "mcp", "config", *args],
        capture_output=True,
        text=True,
        cwd=home,
        env=env,
        timeout=120,
    )
    assert KEY not in run.stdout + run.stderr
    return run


def entry_of(client: str, text: str) -> dict[str, Any]:
    data = tomllib.loads(text) if client == "codex" else json.loads(text)
    servers: dict[str, Any] = data["mcp_servers" if client == "codex" else "mcpServers"]
    assert list(servers) == ["mosaic"]
    return dict(servers["mosaic"])


# What each client is given ------------------------------------------------------------------------
EXPECTED_HTTP = {
    "claude-code": {"type": "http", "url": f"{URL}/mcp", "headers": {"Authorization": "Bearer ${MOSAIC_API_KEY}"}},
    "cursor": {"url": f"{URL}/mcp", "headers": {"Authorization": "Bearer ${env:MOSAIC_API_KEY}"}},
    "codex": {"url": f"{URL}/mcp", "bearer_token_env_var": "MOSAIC_API_KEY"},
}


@pytest.mark.parametrize("client", sorted(EXPECTED_HTTP))
def test_http_entries(home: Path, client: str) -> None:
    run = cli(home, client, "--url", f"{URL}/mcp/")  # the endpoint typed in full is the same service
    assert run.returncode == 0, run.stderr
    assert entry_of(client, run.stdout) == EXPECTED_HTTP[client]
    assert "MOSAIC_API_KEY" in run.stderr  # the note says where the key comes from


STDIO_KEY = {
    "claude-code": {"MOSAIC_API_KEY": "${MOSAIC_API_KEY}"},
    "cursor": {"MOSAIC_API_KEY": "${env:MOSAIC_API_KEY}"},
    "codex": {},  # forwarded by name: env_vars
    "claude-desktop": {},  # read by mosaic-memory from its own config file
}


@pytest.mark.parametrize("client", sorted(STDIO_KEY))
def test_stdio_entries(home: Path, client: str) -> None:
    args = [] if client == "claude-desktop" else ["--stdio"]  # Claude Desktop's default
    run = cli(home, client, *args)
    assert run.returncode == 0, run.stderr
    entry = entry_of(client, run.stdout)
    assert Path(entry["command"]).name == "mosaic-memory" and entry["args"] == ["mcp"]
    assert entry["env"] == {"MOSAIC_URL": URL, **STDIO_KEY[client]}
    assert entry.get("type", "stdio") == "stdio"
    if client == "codex":
        assert entry["env_vars"] == ["MOSAIC_API_KEY"]
    if client == "claude-desktop":
        assert "api_key" in run.stderr and "config.toml" in run.stderr


def test_claude_desktop_over_http_goes_through_mcp_remote_and_is_only_printed(home: Path) -> None:
    run = cli(home, "claude-desktop", "--http")
    assert run.returncode == 0, run.stderr
    entry = entry_of("claude-desktop", run.stdout)
    assert entry["command"] == "npx" and entry["args"][:3] == ["-y", "mcp-remote", f"{URL}/mcp"]
    assert entry["args"][3:] == ["--header", "Authorization:${MOSAIC_AUTH_HEADER}"]
    refused = cli(home, "claude-desktop", "--http", "--write")
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "--stdio" in refused.stderr
    assert not (home / ".config" / "Claude").exists()


# --write ------------------------------------------------------------------------------------------
OTHER_JSON = {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv"]}
CODEX_BEFORE = """\
# my Codex settings
model = "o3"
notify = ["notify-send", "codex"]

[mcp_servers.docs]
url = "https://docs.example.com/mcp"  # keep me

[profiles.fast]
model = "o4-mini"
"""

JSON_FILES = {
    "claude-code": ("--project", "proj", Path("proj/.mcp.json")),
    "cursor": (None, None, Path(".cursor/mcp.json")),
    "claude-desktop": (None, None, Path(".config/Claude/claude_desktop_config.json")),
}


@pytest.mark.parametrize("client", sorted(JSON_FILES))
def test_write_merges_into_a_json_file_with_another_server(home: Path, client: str) -> None:
    flag, value, relative = JSON_FILES[client]
    path = home / relative
    path.parent.mkdir(parents=True)
    before = {"mcpServers": {"files": OTHER_JSON}, "theme": "dark"}
    path.write_text(json.dumps(before))
    args = [client, "--write", *([flag, str(home / value)] if flag and value else [])]
    run = cli(home, *args)
    assert run.returncode == 0, run.stderr
    assert "added server 'mosaic'" in run.stdout and "kept 1 other servers (files)" in run.stdout
    data = json.loads(path.read_text())
    assert data["theme"] == "dark" and data["mcpServers"]["files"] == OTHER_JSON
    assert set(data["mcpServers"]) == {"files", "mosaic"}
    assert KEY not in path.read_text()
    assert json.loads((path.parent / (path.name + ".mosaic-backup")).read_text()) == before
    again = cli(home, *args)
    assert again.returncode == 0 and "already configured" in again.stdout
    assert json.loads(path.read_text()) == data


def test_write_merges_into_codex_config_toml_keeping_comments(home: Path) -> None:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text(CODEX_BEFORE)
    run = cli(home, "codex", "--write")
    assert run.returncode == 0, run.stderr
    assert "added server 'mosaic' (http); kept 1 other servers (docs)" in run.stdout
    text = path.read_text()
    assert "# my Codex settings" in text and "# keep me" in text
    data = tomllib.loads(text)
    assert data["model"] == "o3" and data["notify"] == ["notify-send", "codex"]
    assert data["profiles"] == {"fast": {"model": "o4-mini"}}
    assert data["mcp_servers"]["docs"] == {"url": "https://docs.example.com/mcp"}
    assert data["mcp_servers"]["mosaic"] == EXPECTED_HTTP["codex"]
    # switching transport replaces our entry, and only ours
    stdio = cli(home, "codex", "--stdio", "--write")
    assert stdio.returncode == 0 and "replaced server 'mosaic' (stdio)" in stdio.stdout
    data = tomllib.loads(path.read_text())
    assert data["mcp_servers"]["mosaic"]["env_vars"] == ["MOSAIC_API_KEY"]
    assert "url" not in data["mcp_servers"]["mosaic"]
    assert data["mcp_servers"]["docs"] == {"url": "https://docs.example.com/mcp"}
    assert (path.parent / "config.toml.mosaic-backup").read_text() == text


def test_write_creates_a_missing_file_and_honours_codex_home(home: Path) -> None:
    codex_home = home / "elsewhere"
    env_run = subprocess.run(
        [sys.executable, "-m", "mosaic_memory", "mcp", "config", "codex", "--write", "--name", "memory"],
        capture_output=True,
        text=True,
        cwd=home,
        env={**os.environ, "HOME": str(home), "CODEX_HOME": str(codex_home), "MOSAIC_CONFIG_FILE": ""},
        timeout=120,
    )
    assert env_run.returncode == 0, env_run.stderr
    assert list(tomllib.loads((codex_home / "config.toml").read_text())["mcp_servers"]) == ["memory"]
    assert not (codex_home / "config.toml.mosaic-backup").exists()  # nothing was there to keep


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["vscode"], "unknown client 'vscode'"),
        (["cursor", "--http", "--stdio"], "choose one of --http and --stdio"),
        (["cursor", "--url", "ftp://example.org"], "--url must be the service's http(s) URL"),
        (["cursor", "--url", "http://me:pw@example.org"], "must not carry credentials"),
        (["cursor", "--url", "ftp://me:pw@example.org"], "must not carry credentials"),
        (["claude-desktop", "--project", "."], "no project configuration"),
        (["cursor", "--name", "my server"], "--name must be"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(home: Path, args: list[str], says: str) -> None:
    run = cli(home, *args, *(["--write"] if args[0] == "claude-desktop" else []))
    assert run.returncode == 1
    assert len(run.stderr.strip().splitlines()) == 1 and says in run.stderr, run.stderr
    assert run.stdout == ""
    assert "pw" not in run.stderr


def test_an_unreadable_client_file_is_left_as_it_is(home: Path) -> None:
    path = home / ".cursor" / "mcp.json"
    path.parent.mkdir()
    path.write_text('{"mcpServers": {"files": ')
    run = cli(home, "cursor", "--write")
    assert run.returncode == 1 and "is not valid JSON" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert path.read_text() == '{"mcpServers": {"files": '
    assert not (path.parent / "mcp.json.mosaic-backup").exists()
