"""Agents' own configuration files, read and replaced safely: what ``install`` and ``mcp_config`` share.

Each change is computed on the file's text and written atomically (a reader, the agent itself
included, sees the old file or the new one, never half of it), keeping the file's mode.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Change", "InstallError", "mosaic_program", "read_config", "write_config"]


class InstallError(Exception):
    """The settings file cannot be changed safely (unreadable, or another program in our place)."""


@dataclass
class Change:
    """What an install or uninstall did (or would do, for a dry run) to ``path``."""

    path: Path
    before: str  # the file's text ("" when it did not exist)
    after: str
    note: str
    backup: Path | None = None  # where the previous text was kept, when one was

    @property
    def changed(self) -> bool:
        return self.before != self.after


def read_config(path: Path) -> str:
    """The file's text, "" when it does not exist; InstallError when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise InstallError(f"cannot read {path}: {exc}") from None


def write_config(path: Path, text: str, *, backup: bool = False) -> Path | None:
    """Replace ``path`` atomically, keeping its mode; with ``backup``, the previous text is first
    copied to ``<name>.mosaic-backup`` beside it (returned), so a person can go back by hand."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = None
    if backup and path.exists():
        kept = path.with_name(path.name + ".mosaic-backup")
        shutil.copy2(path, kept)
    partial = path.with_name(path.name + ".mosaic-tmp")
    partial.write_text(text, encoding="utf-8")
    if path.exists():
        os.chmod(partial, path.stat().st_mode & 0o7777)
    partial.replace(path)
    return kept


def mosaic_program() -> str:
    """This install's ``mosaic-memory`` command: an absolute path when it is found (an agent may
    start it with another PATH), else the bare name."""
    found = shutil.which("mosaic-memory")
    beside = Path(sys.executable).with_name("mosaic-memory")
    return found or (str(beside) if beside.exists() else "mosaic-memory")
