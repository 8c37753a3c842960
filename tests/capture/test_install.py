"""``mosaic-memory hooks install|uninstall``: ours merged in and taken out, everything else kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from mosaic_memory.capture.install import CLAUDE_CODE_EVENTS
from tests.capture.conftest import ROOT

# A project's own settings, with hooks of its own on two of the events we use and one we do not.
THEIRS: dict[str, Any] = {
    "permissions": {"allow": ["Bash(npm run lint)"], "deny": ["Read(./.env)"]},
    "env": {"FOO": "bar"},
    "hooks": {
        "PostToolUse": [
            {"matcher": "Write|Edit", "hooks": [{"type": "command", "command": "npx prettier --write", "timeout": 30}]}
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send 'Claude is done'"}]}],
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./guard.sh"}]}],
    },
}

CODEX_CONFIG = """\
# my Codex settings
model = "gpt-5-codex"
approval_policy = "on-request"

[mcp_servers.docs]
command = "docs-server"
args = ["--port", "4000"]

[profiles.fast]
model = "o4-mini"
"""


def mm(*args: str, home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSAIC_", "CODEX_HOME", "CLAUDE_CONFIG_DIR"))}
    env.update(HOME=str(home), MOSAIC_CONFIG_FILE="", **extra)
    return subprocess.run(
        [sys.executable, "-m", "mosaic_memory", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def _ours(settings: dict[str, Any]) -> dict[str, list[str]]:
    """Per event, the capture commands in the settings."""
    found: dict[str, list[str]] = {}
    for event, groups in settings.get("hooks", {}).items():
        for group in groups:
            for hook in group["hooks"]:
                if "capture --agent claude-code" in hook["command"]:
                    found.setdefault(event, []).append(hook["command"])
    return found


def test_install_merges_with_other_hooks_and_uninstall_takes_out_exactly_ours(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    settings = project / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps(THEIRS, indent=4))

    dry = ok(mm("hooks", "install", "claude-code", "--project", str(project), "--dry-run", home=tmp_path))
    assert "+" in dry and "capture --agent claude-code" in dry
    assert json.loads(settings.read_text()) == THEIRS  # a dry run writes nothing

    ok(mm("hooks", "install", "claude-code", "--project", str(project), home=tmp_path))
    installed = json.loads(settings.read_text())
    assert set(_ours(installed)) == set(CLAUDE_CODE_EVENTS)
    assert installed["permissions"] == THEIRS["permissions"] and installed["env"] == THEIRS["env"]
    assert installed["hooks"]["PreToolUse"] == THEIRS["hooks"]["PreToolUse"]
    assert installed["hooks"]["PostToolUse"][0] == THEIRS["hooks"]["PostToolUse"][0]
    assert installed["hooks"]["PostToolUse"][1]["matcher"] == "*"
    assert installed["hooks"]["Stop"][0] == THEIRS["hooks"]["Stop"][0]
    command = installed["hooks"]["Stop"][1]["hooks"][0]
    assert command["type"] == "command" and command["timeout"] == 10
    assert command["command"].split()[-3:] == ["capture", "--agent", "claude-code"]

    ok(mm("hooks", "install", "claude-code", "--project", str(project), home=tmp_path))  # again: no second copy
    assert json.loads(settings.read_text()) == installed
    ok(mm("hooks", "install", "claude-code", "--project", str(project), "--background", home=tmp_path))
    background = json.loads(settings.read_text())
    assert all(len(commands) == 1 for commands in _ours(background).values())
    assert background["hooks"]["Stop"][1]["hooks"][0]["async"] is True
    # The start stays synchronous: the memory it injects must reach Claude before its first answer.
    assert "async" not in background["hooks"]["SessionStart"][-1]["hooks"][0]

    ok(mm("hooks", "uninstall", "claude-code", "--project", str(project), home=tmp_path))
    assert json.loads(settings.read_text()) == THEIRS
    again = ok(mm("hooks", "uninstall", "claude-code", "--project", str(project), home=tmp_path))
    assert "nothing removed" in again and json.loads(settings.read_text()) == THEIRS


def test_user_settings_are_created_and_a_broken_file_is_left_alone(tmp_path: Path) -> None:
    ok(mm("hooks", "install", "claude-code", "--user", home=tmp_path))
    user_settings = tmp_path / ".claude" / "settings.json"
    assert set(_ours(json.loads(user_settings.read_text()))) == set(CLAUDE_CODE_EVENTS)
    ok(mm("hooks", "uninstall", "claude-code", home=tmp_path))  # --user is the default
    assert json.loads(user_settings.read_text()) == {}

    broken = tmp_path / "broken" / ".claude" / "settings.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"hooks": {,}}')
    result = mm("hooks", "install", "claude-code", "--project", str(tmp_path / "broken"), home=tmp_path)
    assert result.returncode == 1 and "not valid JSON" in result.stderr and "Traceback" not in result.stderr
    assert broken.read_text() == '{"hooks": {,}}'


def test_codex_notify_is_added_before_the_first_table_and_removed_again(tmp_path: Path) -> None:
    config = tmp_path / ".codex" / "config.toml"
    config.parent.mkdir()
    config.write_text(CODEX_CONFIG)

    ok(mm("hooks", "install", "codex", home=tmp_path))
    installed = tomllib.loads(config.read_text())
    assert installed["notify"][-3:] == ["capture", "--agent", "codex"]
    assert installed["mcp_servers"] == {"docs": {"command": "docs-server", "args": ["--port", "4000"]}}
    assert installed["profiles"]["fast"] == {"model": "o4-mini"}  # notify stayed top-level
    assert "# my Codex settings" in config.read_text()
    ok(mm("hooks", "install", "codex", home=tmp_path))
    assert config.read_text().count("notify =") == 1

    ok(mm("hooks", "uninstall", "codex", home=tmp_path))
    assert tomllib.loads(config.read_text()) == tomllib.loads(CODEX_CONFIG)
    assert config.read_text() == CODEX_CONFIG


def test_codex_session_start_hook_goes_into_hooks_json_beside_other_hooks(tmp_path: Path) -> None:
    home = tmp_path / ".codex"
    home.mkdir()
    (home / "config.toml").write_text(CODEX_CONFIG)
    theirs = {"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "echo hi"}]}]}}
    hooks_file = home / "hooks.json"
    hooks_file.write_text(json.dumps(theirs))

    ok(mm("hooks", "install", "codex", home=tmp_path))
    ok(mm("hooks", "install", "codex", home=tmp_path))  # a second install refreshes, never adds twice
    groups = json.loads(hooks_file.read_text())["hooks"]["SessionStart"]
    assert groups[0] == theirs["hooks"]["SessionStart"][0]
    ours = [h["command"] for g in groups[1:] for h in g["hooks"]]
    assert len(groups) == 2 and len(ours) == 1 and ours[0].endswith("capture --agent codex")

    ok(mm("hooks", "uninstall", "codex", home=tmp_path))
    assert json.loads(hooks_file.read_text()) == theirs
    assert config_has_no_notify(home / "config.toml")


def config_has_no_notify(path: Path) -> bool:
    return "notify" not in tomllib.loads(path.read_text())


def test_codex_refuses_to_replace_another_notify_unless_forced_and_uninstall_restores_it(tmp_path: Path) -> None:
    config = tmp_path / "codex-home" / "config.toml"
    config.parent.mkdir()
    theirs = 'notify = [\n  "python3",\n  "/Users/alice/notify.py",\n]\nmodel = "o3"\n\n[tui]\nnotifications = true\n'
    config.write_text(theirs)
    refused = mm("hooks", "install", "codex", "--settings", str(config), home=tmp_path)
    assert refused.returncode == 1 and "--force" in refused.stderr and "notify.py" in refused.stderr
    assert config.read_text() == theirs

    # Codex finds its config through CODEX_HOME when that is set; so do we.
    ok(mm("hooks", "install", "codex", "--force", home=tmp_path, CODEX_HOME=str(config.parent)))
    forced = tomllib.loads(config.read_text())
    assert forced["notify"][-3:] == ["capture", "--agent", "codex"] and forced["model"] == "o3"
    assert forced["tui"] == {"notifications": True}

    ok(mm("hooks", "uninstall", "codex", home=tmp_path, CODEX_HOME=str(config.parent)))
    assert tomllib.loads(config.read_text()) == tomllib.loads(theirs)
    assert tomllib.loads(config.read_text())["notify"] == ["python3", "/Users/alice/notify.py"]
