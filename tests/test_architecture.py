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


def _module_files(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def test_jobs_import_no_http_edge() -> None:
    """Jobs run from the scheduler and the CLI: only their routes (jobs/endpoints.py) know HTTP."""
    checked = 0
    for path in _module_files(ROOT / "jobs"):
        if path.name == "endpoints.py":
            continue
        checked += 1
        bad = {n for n in _imports(path) if n.startswith("mosaic_memory.api") or _top(n) in ("fastapi", "starlette")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
    assert checked >= 8


def test_config_imports_no_sql_module() -> None:
    """Settings are plain data: config.py imports no SQL module (ScanPolicy lives in common/scan_policy.py)."""
    sql_modules = {"mosaic_memory.common.vectors", "mosaic_memory.db"}
    found = _imports(ROOT / "mosaic_memory" / "config.py")
    bad = {n for n in found if _top(n) == "sqlalchemy" or n in sql_modules or n.endswith(".repository")}
    assert not bad, f"config.py imports {sorted(bad)}"
    assert "mosaic_memory.common.scan_policy" in found


# Known reaches into another domain's repository, each to be removed by the work named beside it.
# The test fails when one disappears, so this list can only shrink.
# Empty: every domain reaches another's rows through that domain's service. An entry here is a
# known exception (domain, module); the test fails when one is added without being listed.
KNOWN_REPOSITORY_REACHES: set[tuple[str, str]] = set()


def test_no_service_imports_another_domains_repository() -> None:
    seen: set[tuple[str, str]] = set()
    for path in sorted((ROOT / "mosaic_memory").rglob("service.py")):
        domain = path.parent.name
        for name in _imports(path):
            parts = name.split(".")
            if len(parts) == 3 and parts[0] == "mosaic_memory" and parts[2] == "repository" and parts[1] != domain:
                if parts[1] == "common":
                    continue  # shared repository steps, no domain's own
                assert (domain, name) in KNOWN_REPOSITORY_REACHES, f"{path.relative_to(ROOT)} imports {name}"
                seen.add((domain, name))
    assert seen == KNOWN_REPOSITORY_REACHES, f"no longer reached, drop from the list: {KNOWN_REPOSITORY_REACHES - seen}"


def test_domain_services_do_not_import_jobs() -> None:
    for path in _module_files(ROOT / "mosaic_memory"):
        if path.parent.name in ("api", "cli", "mcp_server") or path.name == "app.py":
            continue
        code = path.read_text()
        names = _imports(path)
        # container.py names JobControl for typing only (under TYPE_CHECKING, not executed).
        if path.name == "container.py":
            assert "if TYPE_CHECKING:" in code
            continue
        # The ledger's schemas are plain pydantic models (the client reads runs): importable anywhere.
        bad = {n for n in names if _top(n) == "jobs" and n != "jobs.ledger.schemas"}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_each_kind_spec_lives_in_its_own_package() -> None:
    from mosaic_memory.kinds import KIND_SPECS

    for kind, spec in KIND_SPECS.items():
        assert spec.name == kind
        package = {"logs": "logs"}.get(kind, kind)
        assert (ROOT / "mosaic_memory" / package / "spec.py").exists()
