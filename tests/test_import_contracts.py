"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they catch what they name.

A copy of the source tree is checked twice by the real ``lint-imports``: as it is (every contract
kept), then with one forbidden import planted per rule (each of those contracts reported broken).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import scratch_dir

ROOT = Path(__file__).resolve().parent.parent

# module (path in the copy) → the import planted there → the contract that must then break
PLANTED = [
    ("embeddings/base.py", "import mosaic_memory.errors", "embeddings/ is a leaf library"),
    ("mosaic_memory/insights/service.py", "import fastapi", "import no transport or scheduler library"),
    ("mosaic_memory/skills/service.py", "import apscheduler", "Only jobs.scheduler imports APScheduler"),
    ("mosaic_memory/skills/repository.py", "import mosaic_memory.skills.service", "Repositories sit below services"),
    ("mosaic_memory/models/base.py", "import mosaic_memory.logs.repository", "Models sit below repositories"),
    (
        "mosaic_memory/logs/service.py",
        "import mosaic_memory.insights.repository",
        "insights.repository is imported only by insights/",
    ),
    ("mosaic_memory/owners/service.py", "import mosaic_memory.api.deps", "Nothing imports the HTTP edge"),
    ("mosaic_memory/preferences/service.py", "import mosaic_memory.mcp_server", "The MCP edge is built only"),
    ("mosaic_memory/search/service.py", "import jobs", "Only the composition roots (app factory, CLI) import jobs"),
    ("mosaic_memory/container.py", "import mosaic_memory.cli.common", "The CLI is imported only by"),
    ("mosaic_memory/capture/spool.py", "import mosaic_memory.db", "capture/ is a client of the REST API"),
]


@pytest.fixture
def tree() -> Iterator[Path]:
    """A copy of the three packages and pyproject.toml, importable from its own root."""
    path = scratch_dir("mosaic-contracts-")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("mosaic_memory", "embeddings", "jobs"):
        shutil.copytree(ROOT / package, path / package, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", path / "pyproject.toml")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # Wide columns: a contract's name and its verdict stay on one line.
    env = os.environ | {"PYTHONPATH": str(tree), "COLUMNS": "1000", "NO_COLOR": "1"}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )


def verdicts(output: str) -> dict[str, str]:
    """Each contract line's verdict: name → "KEPT" or "BROKEN"."""
    found = {}
    for line in output.splitlines():
        for verdict in ("KEPT", "BROKEN"):
            if f" {verdict}" in line:
                found[line.split(f" {verdict}")[0].strip()] = verdict
    return found


def test_the_tree_keeps_every_contract_and_each_planted_import_breaks_its_own(tree: Path) -> None:
    clean = lint_imports(tree)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    kept = verdicts(clean.stdout)
    assert len(kept) >= 18 and set(kept.values()) == {"KEPT"}, clean.stdout

    for relative, statement, _ in PLANTED:
        module = tree / relative
        module.write_text(module.read_text() + f"\n{statement}  # planted\n")
    planted = lint_imports(tree)
    assert planted.returncode != 0, planted.stdout
    broken = {name for name, verdict in verdicts(planted.stdout).items() if verdict == "BROKEN"}
    for relative, statement, contract in PLANTED:
        assert any(contract in name for name in broken), (relative, statement, contract, sorted(broken))
