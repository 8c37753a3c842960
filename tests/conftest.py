"""Shared fixtures: one real embedded PostgreSQL + pgvector and the real bundled model per session.

Every test that writes memory uses users of its own (``make_user``), so tests never see each
other's rows; migrations run in the session fixture, so they are exercised on every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import event

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tests must not read a developer's config file.
os.environ["MOSAIC_CONFIG_FILE"] = ""
# The CLI's rich consoles fix their width when first imported: the same width in every test
# process, whichever test (and whichever CliRunner env) happens to import the CLI first.
os.environ.setdefault("COLUMNS", "200")

from mosaic_memory.api.app import create_app
from mosaic_memory.config import JobsSettings, LogSettings, Settings
from mosaic_memory.container import AppState, bootstrap_admin, build_state

ADMIN_KEY = "mm_0badc0de_test-admin-key-for-the-suite-only"


def scratch_dir(prefix: str) -> Path:
    """A directory outside any home directory that the embedded server (as 'pgserver') can reach."""
    base = Path(os.environ.get("MOSAIC_TEST_TMP", "/tmp"))
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    path = scratch_dir("mosaic-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, tier="local", admin_key=ADMIN_KEY)


@pytest.fixture(scope="session")
async def state(settings: Settings) -> AsyncIterator[AppState]:
    built = await build_state(settings)
    await bootstrap_admin(built)
    yield built
    await built.aclose()


@pytest.fixture(scope="session")
async def app(settings: Settings, state: AppState) -> Any:
    application = create_app(settings, state=state)
    application.state.mosaic = state  # ASGITransport does not run the lifespan
    return application


@pytest.fixture(scope="session")
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the app in-process (no auth header)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mosaic.test", timeout=60) as client:
        yield client


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # leave Ctrl-C to pytest


@pytest.fixture(scope="session")
async def live_url(app: Any) -> AsyncIterator[str]:
    """The session app served over real HTTP by uvicorn (lifespan included), e.g. for /mcp.

    It runs as a task on the session event loop, not in a thread: the session state's
    connection pool belongs to this loop. So only async tests may call it (a blocking call
    from the test itself would stall the server); subprocesses may call it freely.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _QuietServer(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises what stopped the server
            raise RuntimeError("uvicorn exited before it started")
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    sock.close()


def wait_until_up(
    url: str, proc: Any, output: Callable[[], str], *, deadline: float, path: str = "/readyz", poll: float = 0.3
) -> None:
    """Poll ``url + path`` until it answers 200; RuntimeError with ``output()`` when the process
    ``proc`` (a ``subprocess.Popen``) exits first or ``deadline`` (``time.monotonic()``) passes."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}:\n{output()[-4000:]}")
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(poll)
    raise RuntimeError(f"serve did not answer {path} in time:\n{output()[-4000:]}")


def own_lifespan_settings(state: AppState, data_dir: Path, *, jobs: bool) -> Settings:
    """Settings for an app whose lifespan builds its own state on the session's database, as
    ``serve`` does (``create_app(settings)`` without ``state``)."""
    return Settings(
        tier="standalone",
        database_url=state.database.url,
        data_dir=data_dir,
        auto_migrate=False,
        jobs=JobsSettings(enabled=jobs),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_in_thread(server: uvicorn.Server, *, timeout: float = 120) -> threading.Thread:
    """Run a uvicorn server in a daemon thread of its own; returns once it accepts connections."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    return thread


def wait_until_ready(proc: subprocess.Popen[Any], url: str, *, timeout: float = 180, log: Path | None = None) -> None:
    """:func:`wait_until_up` for a ``serve`` process: its output is ``log``'s tail or what it
    printed, and it is killed if it is not ready in time."""

    def output() -> str:
        if log is not None:
            return log.read_text()
        return str(proc.stdout.read()) if proc.stdout and proc.poll() is not None else ""

    try:
        wait_until_up(url, proc, output, deadline=time.monotonic() + timeout)
    except RuntimeError:
        if proc.poll() is None:
            proc.kill()
        raise


def start_serve(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m mosaic_memory serve --port PORT`` with exactly ``env``, its output to ``log``;
    returns once ``/readyz`` answers 200 (RuntimeError with the log's tail if it exits or hangs)."""
    root = Path(__file__).resolve().parents[1]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mosaic_memory", "serve", "--port", str(port)],
            env=env,
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_until_ready(proc, f"http://127.0.0.1:{port}", log=log)
    return proc


@contextlib.contextmanager
def serve_process(state: AppState, prefix: str, **env: str) -> Iterator[str]:
    """A separate ``mosaic-memory serve`` process on the suite's embedded database (as a
    standalone URL), with no scheduler and no background embedder, so it does only what a test
    asks; ``env``: further variables (``MOSAIC_...``). Yields its URL once it is ready."""
    with serve_subprocess(state, prefix, **env) as (url, _proc):
        yield url


@contextlib.contextmanager
def serve_subprocess(state: AppState, prefix: str, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`serve_process` that also yields the process (its pid, e.g. to watch its memory)."""
    port = free_port()
    data_dir = scratch_dir(prefix)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    full_env.update(
        MOSAIC_DATA_DIR=str(data_dir),
        MOSAIC_TIER="standalone",
        MOSAIC_DATABASE_URL=state.database.url,
        MOSAIC_ADMIN_KEY=ADMIN_KEY,
        MOSAIC_CONFIG_FILE="",
        MOSAIC_JOBS__ENABLED="false",
        MOSAIC_LOGS__BACKGROUND_EMBEDDER="false",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        **env,
    )
    # Its output goes to a file: a pipe nobody reads fills up and stops the server mid-test.
    proc = start_serve(port, full_env, data_dir / "serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        yield url, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def cli_url(settings: Settings, state: AppState) -> Iterator[str]:
    """A real HTTP server on loopback in a thread of its own, for CLI commands and subprocesses
    (blocking clients may call it). It reaches the suite's embedded database as a standalone URL
    (so its shutdown leaves that server running) and runs no background embedder."""
    own = settings.model_copy(
        update={
            "tier": "standalone",
            "database_url": SecretStr(state.database.url),
            "logs": LogSettings(background_embedder=False),
        }
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(own), host="127.0.0.1", port=port, log_level="warning"))
    thread = start_in_thread(server)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=60)


@pytest.fixture
def captured(state: AppState) -> Iterator[list[str]]:
    """Every SQL statement the suite's engine sends while the test runs, in order."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        statements.append(statement)

    event.listen(state.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(state.engine.sync_engine, "before_cursor_execute", record)


@pytest.fixture
def cli_env(state: AppState, data_dir: Path) -> dict[str, str]:
    """The environment for a CLI command that goes straight to the suite's database (admin, jobs,
    federation): a standalone URL, so the command never starts or stops the embedded server."""
    return {
        "MOSAIC_TIER": "standalone",
        "MOSAIC_DATABASE_URL": state.database.url,
        "MOSAIC_AUTO_MIGRATE": "false",
        "MOSAIC_DATA_DIR": str(data_dir),
        "MOSAIC_CONFIG_FILE": "",
    }


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="session")
def admin_headers() -> dict[str, str]:
    return auth(ADMIN_KEY)


UserFactory = Callable[..., Awaitable[tuple[str, dict[str, str]]]]


@pytest.fixture
def make_user(http: httpx.AsyncClient, admin_headers: dict[str, str]) -> UserFactory:
    """Create a fresh user; returns (name, auth headers of its first key)."""

    async def factory(prefix: str = "user") -> tuple[str, dict[str, str]]:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        r = await http.post("/v1/admin/users", json={"name": name}, headers=admin_headers)
        assert r.status_code == 201, r.text
        return name, auth(r.json()["api_key"])

    return factory


@pytest.fixture
def refuse_secrets(state: AppState) -> Iterator[None]:
    """The service set to refuse writes that hold a secret (as with MOSAIC_SECRETS__MODE=refuse)."""
    before = state.settings.secrets.mode
    state.settings.secrets.mode = "refuse"
    yield
    state.settings.secrets.mode = before


@pytest.fixture
def make_team(http: httpx.AsyncClient, admin_headers: dict[str, str]) -> Callable[..., Awaitable[str]]:
    async def factory(*members: str) -> str:
        name = f"team-{uuid.uuid4().hex[:8]}"
        r = await http.post("/v1/admin/teams", json={"name": name, "members": list(members)}, headers=admin_headers)
        assert r.status_code == 201, r.text
        return name

    return factory
