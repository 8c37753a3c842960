"""Real processes: who owns the embedded PostgreSQL after a crash, two services on one data
directory, a server left from other binaries, ``db status`` and ``db stop``.

Each test gets its own data directory and looks for PostgreSQL through the process table
(a ``postgres`` process whose command line names that data directory) and ``postmaster.pid``.
"""

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
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from mosaic_memory import embedded
from tests.conftest import scratch_dir, wait_until_up

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
START_LIMIT = 300.0  # a generous guard for a loaded machine; nothing is asserted about time


def env_for(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env.update(
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        MOSAIC_DATA_DIR=str(data_dir),
        MOSAIC_TIER="local",
        MOSAIC_JOBS__ENABLED="false",
        MOSAIC_LOGS__BACKGROUND_EMBEDDER="false",
    )
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postmasters(pgdata: Path) -> list[int]:
    """Pids of PostgreSQL servers running on ``pgdata`` (its backends rename themselves)."""
    found = []
    for proc in psutil.process_iter(attrs=("name", "cmdline")):
        cmdline = proc.info["cmdline"] or []
        if (proc.info["name"] or "").startswith("postgres") and str(pgdata) in cmdline:
            found.append(proc.pid)
    return found


class Serve:
    """``mosaic-memory serve`` as a child process, its output in a file (it is chatty)."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.port = port
        self.log = data_dir / f"serve-{port}-{time.monotonic_ns()}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mosaic_memory", "serve", "--port", str(port)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env_for(data_dir),
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text()

    def wait_healthy(self) -> None:
        wait_until_up(
            f"http://127.0.0.1:{self.port}",
            self.proc,
            self.output,
            deadline=time.monotonic() + START_LIMIT,
            path="/healthz",
        )

    def healthy_now(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(120)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mosaic_memory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env_for(data_dir),
        timeout=180,
    )


def status(data_dir: Path) -> dict[str, Any]:
    r = cli(data_dir, "db", "status", "--json")
    assert r.returncode == 0, r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A scratch data directory; anything a failed test left running on it is stopped at the end."""
    path = scratch_dir("mosaic-owned-")
    yield path
    for proc in psutil.Process().children(recursive=True):
        with suppress(psutil.Error):
            if "serve" in proc.cmdline():
                proc.kill()
    for pid in postmasters((path / "pg").resolve()):
        with suppress(psutil.Error):
            embedded.stop_postmaster(psutil.Process(pid), timeout=20)
    shutil.rmtree(path, ignore_errors=True)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_a_serve_that_joins_a_crashed_ones_server_stops_it(data_dir: Path) -> None:
    pgdata = (data_dir / "pg").resolve()
    first = Serve(data_dir, free_port())
    first.wait_healthy()
    before = status(data_dir)
    assert before["running"] and before["pid"] == postmasters(pgdata)[0]
    assert [(h["pid"], h["role"], h["port"]) for h in before["holders"]] == [(first.pid, "serve", first.port)]

    first.kill()  # kill -9: no lifespan shutdown, no exit hooks
    left = postmasters(pgdata)
    assert left == [before["pid"]], "the server outlives a killed serve (what the next one must adopt)"
    after_crash = status(data_dir)
    assert after_crash["running"] and after_crash["holders"] == []
    assert after_crash["stale_pids"] == [first.pid]

    second = Serve(data_dir, free_port())
    second.wait_healthy()
    assert postmasters(pgdata) == left, "the second serve joins the same server, not a second one"
    assert "joined the embedded PostgreSQL" in second.output()
    second.terminate()

    assert postmasters(pgdata) == [], "a clean stop of the adopting serve stops the server"
    assert not (pgdata / "postmaster.pid").exists()
    assert status(data_dir)["running"] is False


def test_two_serves_share_one_server_and_the_last_out_stops_it(data_dir: Path) -> None:
    pgdata = (data_dir / "pg").resolve()
    a = Serve(data_dir, free_port())
    a.wait_healthy()  # one at a time: the first initialises the data directory
    b = Serve(data_dir, free_port())
    b.wait_healthy()
    servers = postmasters(pgdata)
    assert len(servers) == 1, "never two PostgreSQL servers on one data directory"
    assert "sharing the embedded PostgreSQL" in b.output() and f"serve pid {a.pid}" in b.output()
    holders = {(h["pid"], h["role"], h["port"]) for h in status(data_dir)["holders"]}
    assert holders == {(a.pid, "serve", a.port), (b.pid, "serve", b.port)}

    same_port = cli(data_dir, "serve", "--port", str(a.port))
    assert same_port.returncode != 0
    line = one_line(same_port.stderr)
    assert f"pid {a.pid}" in line and f":{a.port}" in line and "Traceback" not in same_port.stderr

    refused = cli(data_dir, "db", "stop")
    assert refused.returncode != 0
    line = one_line(refused.stderr)
    assert f"serve pid {a.pid}" in line and f"serve pid {b.pid}" in line
    assert postmasters(pgdata) == servers

    joined = cli(data_dir, "db", "current")  # an admin command joins the running database
    assert joined.returncode == 0, joined.stderr
    assert postmasters(pgdata) == servers, "a CLI command leaving must not stop a server services use"

    a.terminate()
    assert postmasters(pgdata) == servers, "the first one out leaves it to the other"
    assert b.healthy_now()
    assert [h["pid"] for h in status(data_dir)["holders"]] == [b.pid]
    b.terminate()
    assert postmasters(pgdata) == []
    assert not (pgdata / "postmaster.pid").exists()


def _fake_old_install(base: Path) -> Path:
    """A second copy of the PostgreSQL binaries at another path, standing in for the files of an
    earlier package version (the binaries themselves are copies; lib/ and share/ are shared)."""
    real = embedded.current_binary().parent.parent
    fake = base / "old-install"
    (fake / "bin").mkdir(parents=True)
    for name in ("postgres", "pg_ctl"):
        shutil.copy2(real / "bin" / name, fake / "bin" / name)
    for name in ("lib", "share"):
        (fake / name).symlink_to(real / name)
    return fake / "bin"


def _start_with(bin_dir: Path, pgdata: Path) -> int:
    user = "pgserver" if os.geteuid() == 0 else None
    subprocess.run(
        [
            str(bin_dir / "pg_ctl"),
            "-w",
            "-o",
            f'-h "" -k {pgdata}',
            "-l",
            str(pgdata / "log"),
            "-D",
            str(pgdata),
            "start",
        ],
        check=True,
        capture_output=True,
        user=user,
        timeout=60,
    )
    (pid,) = postmasters(pgdata)
    return pid


def test_a_server_from_other_binaries_is_replaced_with_a_line(data_dir: Path) -> None:
    pgdata = (data_dir / "pg").resolve()
    first = cli(data_dir, "db", "current")  # initialises the data directory, starts and stops it
    assert first.returncode == 0, first.stderr
    assert postmasters(pgdata) == []
    old_bin = _fake_old_install(data_dir)
    old_pid = _start_with(old_bin, pgdata)

    seen = status(data_dir)
    assert seen["running"] and seen["pid"] == old_pid
    assert seen["same_binaries"] is False and seen["binary"] == str(old_bin / "postgres")
    text = cli(data_dir, "db", "status").stdout
    assert "OTHER binaries" in text

    # A live process of the old install still holds it: refuse, one line naming it, nothing stopped.
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (pgdata / ".handle_pids.json").write_text(json.dumps([holder.pid]))
        refused = cli(data_dir, "db", "current")
        assert refused.returncode != 0
        line = one_line(refused.stderr)
        assert str(holder.pid) in line and str(old_bin / "postgres") in line
        assert postmasters(pgdata) == [old_pid]
    finally:
        holder.kill()
        holder.wait()

    replaced = cli(data_dir, "db", "current")
    assert replaced.returncode == 0, replaced.stderr
    assert f"stopped the embedded PostgreSQL (pid {old_pid}) started from other binaries" in replaced.stderr
    assert "restarting it with" in replaced.stderr
    assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == psutil.STATUS_ZOMBIE
    assert postmasters(pgdata) == [], "the restarted server is ours, and stops when we leave"

    # The restarted one runs this install's binary.
    keep = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from mosaic_memory.config import Settings\n"
            "from mosaic_memory.tiers import open_database\n"
            "db = open_database(Settings(tier='local'))\n"
            "print('up', flush=True); sys.stdin.readline(); db.close()",
        ],
        cwd=ROOT,
        env=env_for(data_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert keep.stdout is not None and keep.stdin is not None
    assert keep.stdout.readline().strip() == "up"
    now = status(data_dir)
    assert now["same_binaries"] is True and now["binary"] == str(embedded.current_binary())
    assert [h["pid"] for h in now["holders"]] == [keep.pid]
    keep.stdin.write("\n")
    keep.stdin.flush()
    assert keep.wait(60) == 0
    assert postmasters(pgdata) == []


def test_db_status_and_db_stop_on_a_server_left_by_a_crashed_cli(data_dir: Path) -> None:
    pgdata = (data_dir / "pg").resolve()
    assert "not running" in cli(data_dir, "db", "status").stdout
    crashed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal\n"
            "from mosaic_memory.config import Settings\n"
            "from mosaic_memory.tiers import open_database\n"
            "open_database(Settings(tier='local'))\n"
            "os.kill(os.getpid(), signal.SIGKILL)",
        ],
        cwd=ROOT,
        env=env_for(data_dir),
        capture_output=True,
        timeout=120,
    )
    assert crashed.returncode == -signal.SIGKILL
    (pid,) = postmasters(pgdata)

    text = cli(data_dir, "db", "status").stdout
    assert f"running, pid {pid}" in text
    assert "used by:  no live process" in text
    assert "stale:    process" in text and "exited without releasing it" in text
    assert f"data dir: {data_dir}" in text

    stopped = cli(data_dir, "db", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped the embedded PostgreSQL (pid {pid})" in stopped.stdout
    assert postmasters(pgdata) == []
    assert not (pgdata / "postmaster.pid").exists(), "a clean (fast) shutdown removes postmaster.pid"
    after = status(data_dir)
    assert after["running"] is False and after["stale_pids"] == [] and after["holders"] == []
    again = cli(data_dir, "db", "stop")
    assert again.returncode == 0 and "is not running" in again.stdout


def test_a_reused_pid_does_not_count_as_a_holder(data_dir: Path) -> None:
    """A pid in the list whose process started after it was recorded is another program."""
    pgdata = data_dir / "pg"
    pgdata.mkdir()
    me = os.getpid()
    (pgdata / ".handle_pids.json").write_text(json.dumps([me]))
    started = psutil.Process(me).create_time()
    (data_dir / embedded.OWNERS_FILE).write_text(json.dumps({str(me): {"role": "cli", "create_time": started - 60}}))
    with embedded.data_dir_lock(data_dir):
        assert embedded.prune(data_dir, pgdata) == [me]
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == []
    assert json.loads((data_dir / embedded.OWNERS_FILE).read_text()) == {}

    (pgdata / ".handle_pids.json").write_text(json.dumps([me]))
    (data_dir / embedded.OWNERS_FILE).write_text(json.dumps({str(me): {"role": "cli", "create_time": started}}))
    with embedded.data_dir_lock(data_dir):
        assert embedded.prune(data_dir, pgdata) == []
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == [me]
