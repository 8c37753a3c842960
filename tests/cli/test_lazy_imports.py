"""The CLI starts fast: importing it, ``--help`` and ``version`` load none of the service.

Every check runs in a fresh interpreter (this test process has long since imported everything).
Timings are measured by ``python -m benchmarks.cli_startup``, not asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from mosaic_memory import __version__

ROOT = Path(__file__).resolve().parents[2]

# The libraries a command loads when it runs, never to build the app or print its help.
HEAVY = (
    "sqlalchemy",
    "alembic",
    "asyncpg",
    "psycopg",
    "pgvector",
    "httpx",
    "torch",
    "numpy",
    "sentence_transformers",
    "psutil",
    "pydantic_settings",
    "uvicorn",
    "fastapi",
    "mcp",
    "apscheduler",
    "asyncio",
    "embeddings",
    "jobs",
    "textual",
)
# Of mosaic_memory itself, only the CLI, the package and the error tree (a few classes) may load.
ALLOWED_SERVICE_MODULES = {"mosaic_memory", "mosaic_memory.errors"}

REPORT = """
import json, sys
{run}
loaded = sorted(sys.modules)
print(json.dumps(loaded), file=sys.stderr)
"""

RUN_MAIN = """
sys.argv = ["mosaic-memory", *{args!r}]
try:
    {entry}
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
"""
CLI_MAIN = "from mosaic_memory.cli.main import main; main()"
DASH_M = "import runpy; runpy.run_module('mosaic_memory', run_name='__main__')"  # python -m mosaic_memory


def _loaded_after(run: str) -> tuple[set[str], str]:
    """The modules loaded after running ``run`` in a fresh interpreter, and its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env["MOSAIC_CONFIG_FILE"] = ""
    result = subprocess.run(
        [sys.executable, "-c", REPORT.format(run=run)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stderr.strip().splitlines()[-1])), result.stdout


def _assert_light(loaded: set[str]) -> None:
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"heavy modules loaded: {heavy}"
    service = sorted(
        m
        for m in loaded
        if m.split(".")[0] == "mosaic_memory"
        and m not in ALLOWED_SERVICE_MODULES
        and m != "mosaic_memory.cli"
        and not m.startswith("mosaic_memory.cli.")
    )
    assert not service, f"service modules loaded (import them inside the command that uses them): {service}"


def test_importing_the_cli_loads_nothing_heavy() -> None:
    loaded, _ = _loaded_after("import mosaic_memory.cli.main")
    assert "mosaic_memory.cli.main" in loaded
    for name in ("sqlalchemy", "alembic", "httpx", "torch", "numpy", "psycopg", "mosaic_memory.db"):
        assert name not in loaded, f"{name} imported by mosaic_memory.cli.main"
    assert "mosaic_memory.config" not in loaded, "settings read at import"
    _assert_light(loaded)


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("version",),
        ("db", "--help"),
        ("federation", "grant", "--help"),
        ("jobs", "run", "--help"),
        ("search", "--help"),
        ("export", "--help"),
        ("hooks", "install", "--help"),
        ("capture", "--help"),
        ("import-transcripts", "--help"),
        ("tui", "--help"),
    ],
)
def test_help_and_version_load_nothing_heavy(args: tuple[str, ...]) -> None:
    loaded, out = _loaded_after(RUN_MAIN.format(args=list(args), entry=CLI_MAIN))
    _assert_light(loaded)
    assert "mosaic_memory.config" not in loaded, "settings read for help or version"
    if args == ("version",):
        assert out.strip() == __version__
    else:
        assert "Usage" in out


def test_python_dash_m_is_as_light() -> None:
    """``python -m mosaic_memory`` goes through the same lazy module."""
    loaded, out = _loaded_after(RUN_MAIN.format(args=["version"], entry=DASH_M))
    _assert_light(loaded)
    assert __version__ in out


# run(): the expected failures become one line, though their classes are looked up only when loaded
def _fails_with(exc: Exception, capsys: pytest.CaptureFixture[str]) -> str:
    from mosaic_memory.cli.common import run

    async def boom() -> None:
        raise exc

    with pytest.raises(typer.Exit) as info:
        run(boom())
    assert info.value.exit_code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    return lines[0].removeprefix("error: ")


def test_run_turns_expected_failures_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy.exc import OperationalError

    from embeddings import EmbeddingError
    from mosaic_memory.client import MosaicClientError
    from mosaic_memory.errors import InvalidInput

    assert _fails_with(InvalidInput("bad owner"), capsys) == "bad owner"
    assert _fails_with(MosaicClientError(404, "NotFound", "no such insight"), capsys) == "NotFound: no such insight"
    assert _fails_with(MosaicClientError(0, "ConnectError", "connection refused"), capsys) == "connection refused"
    assert _fails_with(EmbeddingError("model missing"), capsys) == "model missing"
    missing = FileNotFoundError(2, "No such file or directory")
    assert _fails_with(missing, capsys) == "FileNotFoundError: No such file or directory"
    unreachable = OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused\nsecond line"))
    assert _fails_with(unreachable, capsys) == "the database is unreachable: connection refused"


def test_run_lets_unexpected_errors_through() -> None:
    from mosaic_memory.cli.common import run

    async def boom() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run(boom())
