"""``import-transcripts``: session files → ``POST /v1/logs`` in batches, idempotent.

Each turn's event id is derived from its agent, session, time, role and content
(``Transcript.events``), and the service stores an id it already holds only once, answering it
as a duplicate: so a second run over the same files adds nothing and reports every turn as a
duplicate, and a run interrupted half-way is finished by running it again.

Sessions that hooks already capture live are left out (``live``): a transcript repeats what the
hooks stored, in other words, and both would be kept. ``include_live`` imports them anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mosaic_memory.capture.transcripts import Transcript, read_transcript
from mosaic_memory.client import AsyncMosaicClient, MosaicClientError

__all__ = ["BATCH", "FileReport", "import_transcript", "transcript_files"]

BATCH = 500
_LIVE_PROBE = 1000  # events of a session looked at for a hook's


@dataclass
class FileReport:
    """Counts for one file: turns read, logs added, skipped as duplicate, dropped as noise."""

    path: Path
    agent: str = "?"
    read: int = 0
    added: int = 0
    duplicates: int = 0
    noise: int = 0
    invalid: int = 0
    live: int = 0  # turns of sessions the hooks capture live, left out
    error: str | None = None


def transcript_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files named, and the ``*.jsonl`` files under the folders named (sorted, each once)."""
    seen: set[Path] = set()
    for path in paths:
        found = sorted(path.rglob("*.jsonl")) if path.is_dir() else [path]
        for file in found:
            if file not in seen:
                seen.add(file)
                yield file


async def _captured_live(mm: AsyncMosaicClient, agent: str, session: str, owner: str | None) -> bool:
    page = await mm.list_logs(session_id=session, agent_id=agent, owner=owner, limit=_LIVE_PROBE)
    return any(item.metadata.get("source") == "hook" for item in page.items)


async def import_transcript(
    mm: AsyncMosaicClient | None,
    path: Path,
    *,
    agent: str = "auto",
    owner: str | None = None,
    include_live: bool = False,
    excerpt_chars: int = 2000,
    on_progress: Callable[[float], None] | None = None,
) -> FileReport:
    """Read one file and send its turns (``mm`` None: a dry run, nothing sent; ``added`` then
    counts what would be sent). ``on_progress(share)`` reports the share of the file done.

    A file that cannot be read or parsed is reported in ``error``; so is a batch the service
    refuses as invalid (the file's later batches are still sent). Raises MosaicClientError when
    the service cannot be reached or refuses the key: the run cannot go on."""
    report = FileReport(path)
    try:
        transcript: Transcript = read_transcript(path, agent, excerpt_chars=excerpt_chars)
    except (OSError, ValueError) as exc:
        report.error = str(exc)
        return report
    report.agent, report.noise, report.invalid = transcript.agent, transcript.noise, transcript.invalid
    report.read = transcript.read
    events = transcript.events(excerpt_chars)
    if mm is not None and not include_live and events:
        live = {
            s
            for s in dict.fromkeys(e["session_id"] for e in events)
            if await _captured_live(mm, transcript.agent, s, owner)
        }
        report.live = sum(1 for e in events if e["session_id"] in live)
        events = [e for e in events if e["session_id"] not in live]
    if mm is None:
        report.added = len(events)
        return report
    for start in range(0, len(events), BATCH):
        batch: list[dict[str, Any]] = events[start : start + BATCH]
        try:
            out = await mm.log_events(batch, owner=owner)
        except MosaicClientError as exc:
            if exc.status in (0, 401, 403) or exc.status >= 500:
                raise
            report.error = f"{exc.error}: {exc.detail}"
            continue
        report.added += out.count
        report.duplicates += out.duplicates
        if on_progress is not None:
            on_progress(min(1.0, (start + len(batch)) / len(events)))
    return report
