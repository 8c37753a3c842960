"""The moving parts of the durability tests: service processes started by a fork server and
killed with SIGKILL, writer threads that record what the service acknowledged, and the checks.

A write is *acknowledged* only when the client got a 2xx for it; anything else (a refused
connection, a reset, a 5xx, a timeout) leaves it unknown: it may be stored or not, but never in
part and never twice.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 120.0
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
PAUSE_S = 0.05  # the longest pause of a writer between two writes

WORDS = (
    "amber", "harbor", "violin", "granite", "lantern", "orchid", "compass", "tundra", "saffron",
    "glacier", "meadow", "quartz", "falcon", "ember", "canyon", "velvet", "pepper", "marble",
    "thunder", "willow", "copper", "lagoon", "cedar", "prism", "nectar", "basalt", "cobalt", "juniper",
    "monsoon", "parsley", "raven", "sapphire", "tulip", "walnut", "zephyr", "beacon", "citrus",
    "dolphin", "fjord", "garnet", "hazel", "ivory", "jasmine", "kettle", "lotus", "magnet", "nutmeg",
    "opal", "pebble", "quill", "ribbon", "sorrel", "thistle", "umber", "vessel", "wombat", "yarrow",
    "anchor", "bramble", "cinder", "drizzle", "ferret", "gravel", "hollow", "indigo", "jigsaw", "kelp",
    "lichen", "mortar", "nimbus", "oyster", "pylon", "quiver", "rustle", "spindle",
)  # fmt: skip


def sentence(rng: random.Random, n: int = 6) -> str:
    """Words drawn at random: texts far enough apart that near-duplicate merging rarely joins them."""
    return " ".join(rng.sample(WORDS, n))


def process_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``MOSAIC_`` variable, plus ``extra``; the checkout
    first on ``PYTHONPATH``, so children import this copy of the code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    path = os.environ.get("PYTHONPATH")
    env.update(
        PYTHONPATH=f"{ROOT}{os.pathsep}{path}" if path else str(ROOT),
        MOSAIC_CONFIG_FILE="",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    env.update(extra)
    return env


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def sigkill_and_wait(pids: list[int], timeout: float = 30.0) -> None:
    """SIGKILL every pid at once and return once all of them are gone (reaped, not zombies: a
    dead postmaster's pid file must name no process when PostgreSQL is started again)."""
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.kill()
            procs.append(proc)
        except psutil.NoSuchProcess:
            continue
    deadline = time.monotonic() + timeout
    while procs:
        assert time.monotonic() < deadline, f"still alive after SIGKILL: {procs}"
        procs = [p for p in procs if not _reaped(p)]
        time.sleep(0.005)


def _reaped(proc: psutil.Process) -> bool:
    pid: int = proc.pid
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid  # our child (see reap_orphans)
    except ChildProcessError:
        return not bool(proc.is_running())


def reap_orphans(on: bool) -> None:
    """Make this process the one that inherits its orphaned descendants (Linux's child
    subreaper), so that it can reap a killed PostgreSQL at once: the embedded server is started
    by ``pg_ctl``, which leaves it an orphan, and this machine's init reaps orphans a second later,
    a second in which the dead postmaster's pid still exists and PostgreSQL refuses to start."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def crash_postgres(postmaster: int) -> int:
    """SIGKILL the postmaster and every process it started, at once, as a crash of the machine
    would (the OS keeps what was written); returns how many processes that was. The postmaster
    is stopped first, so it starts no backend between the listing and the kill."""
    os.kill(postmaster, signal.SIGSTOP)
    pids = [postmaster, *(c.pid for c in psutil.Process(postmaster).children(recursive=True))]
    sigkill_and_wait(pids)
    return len(pids)


class ForkServer:
    """``tests/reliability/forkserver.py`` in a process of its own: ``spawn`` answers the pid of a
    new ``mosaic-memory ARGV`` process in about a millisecond, its imports already done."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=process_env(),
        )
        self._lock = threading.Lock()
        self._ready = False

    def wait_ready(self) -> None:
        """Until its imports are done (they run while the caller does something else)."""
        if not self._ready:
            line = self._read()
            assert "ready" in json.loads(line), line
            self._ready = True

    def _read(self) -> str:
        out: IO[str] | None = self.proc.stdout
        assert out is not None
        line = out.readline()
        if not line:
            raise RuntimeError(f"the fork server exited with {self.proc.wait()}")
        return line

    def spawn(self, argv: list[str], env: dict[str, str], log: Path) -> int:
        with self._lock:
            self.wait_ready()
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"argv": argv, "env": env, "log": str(log)}) + "\n")
            self.proc.stdin.flush()
            return int(json.loads(self._read())["pid"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Slot:
    """One ``serve`` on a fixed port; ``generation`` counts its starts."""

    port: int
    log: Path
    pid: int = 0
    generation: int = 0
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Fleet:
    """Several ``serve`` processes on one database, each restartable on its own port."""

    def __init__(self, forkserver: ForkServer, env: dict[str, str], logs: Path, ports: list[int]) -> None:
        self.forkserver = forkserver
        self.env = env
        self.slots = [Slot(port, logs / f"serve-{port}.log") for port in ports]
        self.failures: list[str] = []  # a start that died on its own: the test fails with its log
        self.starts = 0
        self.kills = 0
        self.start_seconds: list[float] = []  # from the fork to the first 200 of /readyz, per start
        self.start_cpu: list[float] = []  # CPU seconds (user + system) of the same
        self._lock = threading.Lock()

    def start(self, slot: Slot) -> None:
        """Start ``slot``'s process; readiness is watched in the background (``slot.ready``)."""
        with self._lock:
            slot.generation += 1
            slot.ready.clear()
            slot.pid = self.forkserver.spawn(["serve", "--port", str(slot.port)], self.env, slot.log)
            self.starts += 1
            generation, pid = slot.generation, slot.pid
        threading.Thread(target=self._watch, args=(slot, generation, pid), daemon=True).start()

    def _watch(self, slot: Slot, generation: int, pid: int) -> None:
        begun = time.monotonic()
        deadline = begun + READY_TIMEOUT_S
        while time.monotonic() < deadline and slot.generation == generation:
            if not pid_alive(pid):
                if slot.generation == generation:  # not killed by us: a start that failed
                    self.failures.append(f"serve on {slot.port} exited:\n{slot.log.read_text()[-3000:]}")
                return
            try:
                if httpx.get(f"{slot.url}/readyz", timeout=2).status_code == 200:
                    if slot.generation == generation:
                        self.start_seconds.append(time.monotonic() - begun)
                        self.start_cpu.append(cpu_seconds(pid))
                        slot.ready.set()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        if slot.generation == generation:
            self.failures.append(f"serve on {slot.port} not ready in time:\n{slot.log.read_text()[-3000:]}")

    def kill(self, slot: Slot) -> None:
        with self._lock:
            slot.generation += 1
            slot.ready.clear()
            pid = slot.pid
            self.kills += 1
        sigkill_and_wait([pid])

    def ready(self) -> list[Slot]:
        return [s for s in self.slots if s.ready.is_set()]

    def wait_ready(self, slots: list[Slot] | None = None) -> None:
        for slot in slots or self.slots:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not slot.ready.wait(0.2):
                assert not self.failures, self.failures[0]
                assert time.monotonic() < deadline, f"serve on {slot.port} never became ready"

    def stop(self) -> None:
        """SIGTERM every process (a clean exit) and wait for it."""
        pids = [s.pid for s in self.slots if s.pid and pid_alive(s.pid)]
        for slot in self.slots:
            slot.generation += 1
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        _, alive = psutil.wait_procs([p for p in map(_process, pids) if p is not None], timeout=20)
        for proc in alive:
            proc.kill()


def cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


@contextmanager
def fleet_of(forkserver: ForkServer, env: dict[str, str], logs: Path, size: int) -> Iterator[Fleet]:
    """``size`` serve processes, yielded once the first is ready (the others finish starting
    while the caller begins: ``Fleet.ready`` lists those that answer)."""
    from tests.conftest import free_port

    fleet = Fleet(forkserver, env, logs, [free_port() for _ in range(size)])
    try:
        for slot in fleet.slots:
            fleet.start(slot)
        fleet.wait_ready(fleet.slots[:1])
        yield fleet
    finally:
        fleet.stop()


@dataclass
class Ledger:
    """What the clients sent and what the service acknowledged (a 2xx)."""

    insights: dict[str, str] = field(default_factory=dict)  # token -> id, stored as written
    merged: dict[str, str] = field(default_factory=dict)  # token -> id of the insight it merged into
    prefs_acked: dict[str, list[str]] = field(default_factory=dict)  # key -> values acknowledged, in order
    prefs_sent: dict[str, list[str]] = field(default_factory=dict)  # key -> every value sent, in order
    logs_acked: dict[str, str] = field(default_factory=dict)  # event id -> content
    logs_sent: dict[str, str] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def acknowledged(self) -> int:
        return len(self.insights) + len(self.merged) + sum(map(len, self.prefs_acked.values())) + len(self.logs_acked)


class Writers:
    """``count`` threads writing insights, preferences and batches of log events (with client
    ids) to whichever service is ready, until stopped. A log batch whose answer was lost is sent
    once more, with the same ids, to another service, as a client that lost an answer does."""

    def __init__(self, fleet: Fleet, headers: dict[str, str], ledger: Ledger, *, count: int, seed: int) -> None:
        self.fleet = fleet
        self.headers = headers
        self.ledger = ledger
        self.stop_event = threading.Event()
        self.errors: list[str] = []  # a writer that saw a wrong answer stops and says why here
        self.threads = [
            threading.Thread(target=self._run, args=(n, random.Random(seed * 1000 + n)), daemon=True)
            for n in range(count)
        ]

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _url(self, rng: random.Random, avoid: str | None = None) -> str:
        ready = [s.url for s in self.fleet.ready() if s.url != avoid]
        return rng.choice(ready or [s.url for s in self.fleet.slots])

    def _send(self, client: httpx.Client, method: str, url: str, body: dict[str, Any]) -> httpx.Response | None:
        try:
            r = client.request(method, url, json=body, headers=self.headers)
        except httpx.HTTPError as exc:
            with self.ledger.lock:
                self.ledger.statuses[type(exc).__name__] += 1
            time.sleep(0.02)
            return None
        with self.ledger.lock:
            self.ledger.statuses[str(r.status_code)] += 1
        if r.status_code >= 500:
            time.sleep(0.05)  # a client backs off a little from a service that says it is unavailable
        return r

    def _run(self, n: int, rng: random.Random) -> None:
        try:
            self._write(n, rng)
        except Exception as exc:
            self.errors.append(f"writer {n}: {type(exc).__name__}: {exc}")

    def _write(self, n: int, rng: random.Random) -> None:
        ledger = self.ledger
        own_keys: list[str] = []
        with httpx.Client(timeout=20) as client:
            step = 0
            while not self.stop_event.is_set():
                # A short pause between writes: concurrent, but leaving the CPU to restarts.
                time.sleep(rng.uniform(0.0, PAUSE_S))
                step += 1
                token = f"dur{n}x{step}x{uuid.uuid4().hex[:10]}"
                kind = step % 3
                if not self.fleet.ready():
                    time.sleep(0.02)
                if kind == 0:
                    content = f"{token} {sentence(rng)}"
                    r = self._send(client, "POST", f"{self._url(rng)}/v1/insights", {"content": content})
                    if r is not None and r.is_success:
                        body = r.json()
                        with ledger.lock:
                            target = ledger.merged if body["merged"] or body["deduplicated"] else ledger.insights
                            target[token] = body["id"]
                elif kind == 1:
                    # A new key, or a change of one of this writer's keys (its history grows).
                    key = rng.choice(own_keys) if own_keys and rng.random() < 0.4 else f"dur.{token}"
                    value = f"{token} {sentence(rng, 3)}"
                    with ledger.lock:
                        ledger.prefs_sent.setdefault(key, []).append(value)
                    r = self._send(client, "PUT", f"{self._url(rng)}/v1/preferences/{key}", {"value": value})
                    if r is not None and r.is_success:
                        assert r.json()["value"] == value, r.text
                        with ledger.lock:
                            ledger.prefs_acked.setdefault(key, []).append(value)
                        if key not in own_keys:
                            own_keys.append(key)
                else:
                    # Mostly small batches (embedded inline); every fifth one over the inline budget,
                    # so it is stored pending and embedded by a background embedder.
                    size = 30 if step % 15 == 2 else rng.randint(1, 3)
                    events = [
                        {"id": str(uuid.uuid4()), "session_id": f"dur-{n}", "content": f"{token}e{j} {sentence(rng)}"}
                        for j in range(size)
                    ]
                    with ledger.lock:
                        ledger.logs_sent.update({e["id"]: e["content"] for e in events})
                    url = self._url(rng)
                    r = self._send(client, "POST", f"{url}/v1/logs", {"events": events})
                    if r is None or r.status_code >= 500:
                        r = self._send(client, "POST", f"{self._url(rng, avoid=url)}/v1/logs", {"events": events})
                    if r is not None and r.is_success:
                        body = r.json()
                        assert body["ids"] == [e["id"] for e in events], r.text
                        assert body["count"] + body["duplicates"] == size, r.text
                        with ledger.lock:
                            ledger.logs_acked.update({e["id"]: e["content"] for e in events})


class Phases:
    """Wall-clock time per phase of a test, for its summary line (nothing is asserted on it)."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.spans: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.spans.append((name, now - self.last))
        self.last = now

    def __str__(self) -> str:
        total = sum(s for _, s in self.spans)
        return f"{total:.1f} s (" + ", ".join(f"{n} {s:.1f}" for n, s in self.spans) + ")"


def run_for(seconds: float, until: Callable[[], bool], poll: float = 0.2) -> bool:
    """Poll ``until`` for at most ``seconds``; whether it became true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if until():
            return True
        time.sleep(poll)
    return until()
