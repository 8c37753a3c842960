"""The dependency direction of STYLE.md, held by a test: edges → services → repositories → models."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EDGE_LIBRARIES = ("fastapi", "starlette", "typer", "mcp", "apscheduler", "uvicorn", "rich")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _top(name: str) -> str:
    return name.split(".")[0]


def test_embeddings_is_a_leaf_library() -> None:
    for path in (ROOT / "embeddings").rglob("*.py"):
        ours = {n for n in _imports(path) if _top(n) in ("mosaic_memory", "jobs")}
        assert not ours, f"{path.relative_to(ROOT)} imports {sorted(ours)}"


def test_services_and_repositories_import_no_edge_library() -> None:
    checked = 0
    for path in (ROOT / "mosaic_memory").rglob("*.py"):
        if path.name not in ("service.py", "repository.py", "schemas.py"):
            continue
        checked += 1
        edge = {n for n in _imports(path) if _top(n) in EDGE_LIBRARIES}
        assert not edge, f"{path.relative_to(ROOT)} imports {sorted(edge)}"
        assert not any(_top(n) == "jobs" for n in _imports(path)), f"{path} imports jobs"
    assert checked >= 6


def test_only_repositories_and_infrastructure_run_sql() -> None:
    """Services build no SQL: no select/insert/update/delete/text from sqlalchemy."""
    sql_builders = {"select", "insert", "update", "delete", "text"}
    for path in (ROOT / "mosaic_memory").rglob("service.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sqlalchemy"):
                used = {a.name for a in node.names} & sql_builders
                assert not used, f"{path.relative_to(ROOT)} imports {sorted(used)} from {node.module}"


def test_no_side_effects_at_import() -> None:
    """Importing the app factory must not start a database, load a model or read settings."""
    import subprocess
    import sys

    code = (
        "import sys, mosaic_memory.api.app, mosaic_memory.cli.main;"
        "assert 'sentence_transformers' not in sys.modules, 'model library imported';"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
