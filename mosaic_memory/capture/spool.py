"""The spool: one JSON Lines file where events wait while the service cannot take them.

Safe for hooks that run at the same time (Claude Code runs hooks in parallel, several sessions
run at once): every change holds an exclusive ``flock`` on ``<spool>.lock``; appends are
fsync'd before the hook returns; removing what was sent rewrites the rest to a temporary file
and renames it over the spool (fsync'd, then the folder), so a crash leaves either the old file
or the new one, never half of one. Only one process sends at a time (``<spool>.send.lock``,
taken without waiting): the others append and leave, and the sender takes their events too.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["Spool", "SpoolBusy"]

try:  # POSIX; elsewhere the spool works unlocked (one agent at a time)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class SpoolBusy(TimeoutError):
    """The spool's lock was not free within the time left."""


def _lock(handle: IO[bytes], *, wait: bool, deadline: float) -> bool:
    if fcntl is None:  # pragma: no cover
        return True
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if not wait:
                return False
            if time.monotonic() >= deadline:
                raise SpoolBusy("the capture spool is locked by another process") from None
            time.sleep(0.005)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform opens folders
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Spool:
    """Events waiting to be sent, oldest first, in one file (``path``) and its two lock files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rejected_path = path.with_name(path.stem + ".rejected" + path.suffix)
        self._lock_path = path.with_name(path.name + ".lock")
        self._send_lock_path = path.with_name(path.name + ".send.lock")

    def _open_lock(self, path: Path) -> IO[bytes]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path.open("ab")

    @contextlib.contextmanager
    def _locked(self, deadline: float) -> Iterator[None]:
        with self._open_lock(self._lock_path) as handle:
            _lock(handle, wait=True, deadline=deadline)
            yield  # closing the file releases the lock

    @contextlib.contextmanager
    def sender(self) -> Iterator[bool]:
        """True while this process is the one sender; False at once when another one is."""
        with self._open_lock(self._send_lock_path) as handle:
            yield _lock(handle, wait=False, deadline=0.0)

    def append(self, events: list[dict[str, Any]], *, deadline: float) -> None:
        """Add ``events`` at the end, durably (fsync) before returning. Raises SpoolBusy."""
        if not events:
            return
        data = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events).encode()
        with self._locked(deadline):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)

    def peek(self, limit: int, *, deadline: float) -> tuple[list[dict[str, Any]], int]:
        """The oldest ``limit`` events and how many bytes of the file they take (for :meth:`drop`).

        A line that is not a JSON object (a write cut short by a crash) is skipped here and
        set aside by :meth:`drop`, so one bad line never blocks the rest."""
        with self._locked(deadline):
            try:
                handle = self.path.open("rb")
            except FileNotFoundError:
                return [], 0
            events: list[dict[str, Any]] = []
            used = 0
            with handle:
                for line in handle:
                    if len(events) >= limit:
                        break
                    used += len(line)
                    event = _parse(line)
                    if event is not None:
                        events.append(event)
            return events, used

    def drop(self, size: int, *, deadline: float) -> None:
        """Remove the first ``size`` bytes (what :meth:`peek` returned, now sent); lines in them
        that were not events go to the rejected file."""
        if size <= 0:
            return
        with self._locked(deadline):
            with self.path.open("rb") as handle:
                head = handle.read(size)
                rest = handle.read()
            bad = [line for line in head.splitlines(keepends=True) if line.strip() and _parse(line) is None]
            if bad:
                self._write_rejected(b"".join(line if line.endswith(b"\n") else line + b"\n" for line in bad))
            if not rest:
                self.path.unlink()
            else:
                partial = self.path.with_name(self.path.name + ".tmp")
                with partial.open("wb") as out:
                    out.write(rest)
                    out.flush()
                    os.fsync(out.fileno())
                partial.replace(self.path)
            _fsync_dir(self.path.parent)

    def reject(self, events: list[dict[str, Any]], reason: str, size: int, *, deadline: float) -> None:
        """Set aside events the service refused as invalid (kept for a person to look at), then drop them."""
        lines = "".join(
            json.dumps({"rejected": reason, "event": e}, ensure_ascii=False, separators=(",", ":")) + "\n"
            for e in events
        )
        with self._locked(deadline):
            self._write_rejected(lines.encode())
        self.drop(size, deadline=deadline)

    def _write_rejected(self, data: bytes) -> None:
        fd = os.open(self.rejected_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def empty(self) -> bool:
        """No event waits (cheap: the file's size, not its lines)."""
        try:
            return self.path.stat().st_size == 0
        except FileNotFoundError:
            return True

    def count(self) -> int:
        """Events waiting (lines in the file); 0 when there is none."""
        try:
            with self.path.open("rb") as handle:
                return sum(1 for line in handle if line.strip())
        except FileNotFoundError:
            return 0
