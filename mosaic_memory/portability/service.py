"""Export and import of memory as JSON Lines.

The interface federation (``federation pull``, serving a grant) relies on:

* :func:`export_records` streams the records of chosen owners, the header first, filtered by
  kinds and tags, each a JSON-ready dict; :func:`export_lines` is the same as NDJSON bytes.
* :class:`PortabilityService` ``.import_stream(sessionmaker, lines, ...)`` takes any async
  iterable of lines (``bytes``/``str``) or already-parsed dicts, commits in batches, and returns
  an :class:`ImportReport` with counts per kind and every failed line with its reason.

Imported rows keep their ids and timestamps where they do not collide, are deduplicated
against what is there (exact content hash for every kind; near-duplicate insights merged by
``InsightService``'s policy, the merge recorded on the kept row), and carry
``metadata["origin"]`` (the exporting instance, from the header) where the kind has metadata.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from embeddings import Embedder
from mosaic_memory.config import Settings
from mosaic_memory.insights.service import InsightService
from mosaic_memory.logs.service import LogService
from mosaic_memory.models import utc_now
from mosaic_memory.owners.schemas import OwnerRef, Principal
from mosaic_memory.preferences.service import PreferenceService
from mosaic_memory.skills.service import SkillService

__all__ = [
    "ImportReport",
    "KindCounts",
    "LineError",
    "PortabilityService",
    "export_lines",
    "export_records",
    "instance_name",
    "resolve_export_owners",
]


@dataclass
class KindCounts:
    """What happened to the records of one kind."""

    added: int = 0
    merged: int = 0  # folded into an existing row (near-duplicate insight, newer value of a key)
    duplicate: int = 0  # already there (same content hash or same id and content): nothing written
    conflict: int = 0  # the target holds a different, newer value that is kept (preferences, skills)
    failed: int = 0


@dataclass
class LineError:
    line: int
    kind: str | None
    reason: str


@dataclass
class ImportReport:
    """Counts per kind, the lines that failed (line number and reason), and the header seen."""

    dry_run: bool
    origin: str | None = None
    format_version: int | None = None
    reembedded: bool = False  # the file's vectors were absent or of another model: embedded here
    counts: dict[str, KindCounts] = field(default_factory=dict)
    errors: list[LineError] = field(default_factory=list)
    lines: int = 0

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


async def instance_name(session: AsyncSession) -> str:
    """This instance's name: ``instance_meta['instance']['name']`` when federation set one, else the host name."""
    raise NotImplementedError


async def resolve_export_owners(
    session: AsyncSession, principal: Principal, owners: Sequence[str] | None
) -> list[OwnerRef]:
    """The owners ``principal`` may export: an admin any owner by label (default every owner),
    another key only its own user and teams (default all of them).

    Raises OwnerNotFound (404) for an owner the key may not see or that does not exist."""
    raise NotImplementedError


async def export_records(
    session: AsyncSession,
    owners: Sequence[OwnerRef],
    *,
    kinds: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    with_vectors: bool = False,
    instance: str | None = None,
    batch_size: int = 1000,
) -> AsyncIterator[dict[str, Any]]:
    """Yield the header, then every record of ``owners``: logs, insights (history and source
    links included), preferences, preference changes, skills.

    Reads page by page (keyset on the owner-leading indexes), so memory stays constant however
    many rows there are; run it inside one REPEATABLE READ transaction for a consistent snapshot
    (the endpoints and CLI do). ``kinds`` narrows to some of :data:`KINDS`; ``tags`` keeps only
    rows carrying at least one of the tags, so kinds without tags (preferences, logs) yield
    nothing when tags are given. Vectors are included (base64 float32) only with ``with_vectors``.
    Raises InvalidInput for an unknown kind.
    """
    raise NotImplementedError
    yield {}


async def export_lines(
    session: AsyncSession,
    owners: Sequence[OwnerRef],
    **options: Any,
) -> AsyncIterator[bytes]:
    """:func:`export_records` as NDJSON lines (UTF-8, each ending in a newline)."""
    raise NotImplementedError
    yield b""


class PortabilityService:
    """Imports export files through the kinds' services.

    Guarantees: a header from a newer format version is refused before anything is written
    (UnsupportedFormat); a malformed or truncated line is reported with its line number and
    skipped; records are committed in batches, so a failure never loses what came before;
    importing the same file twice changes nothing the second time; ``dry_run`` runs the same
    path in one transaction that is rolled back, so it reports exactly what it would do.
    """

    def __init__(
        self,
        *,
        embedder: Embedder,
        settings: Settings,
        insights: InsightService,
        preferences: PreferenceService,
        skills: SkillService,
        logs: LogService,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.embedder = embedder
        self.settings = settings
        self.insights = insights
        self.preferences = preferences
        self.skills = skills
        self.logs = logs
        self.clock = clock

    async def import_stream(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        lines: AsyncIterable[bytes | str | dict[str, Any]],
        *,
        principal: Principal | None,
        as_owner: str | None = None,
        owner_map: dict[str, str] | None = None,
        origin: str | None = None,
        dry_run: bool = False,
        batch_size: int = 500,
    ) -> ImportReport:
        """Import ``lines`` (an export: header first).

        Owners: ``as_owner`` sends every record to that owner; else ``owner_map`` (source label
        → target label), else the record's own owner label. ``principal`` None (system callers,
        e.g. federation pull or the CLI on the database) or an admin key may write any owner,
        creating missing users/teams; another key only its own user and teams
        (PermissionDenied for the first record that names another). ``origin`` overrides the
        header's instance name as the provenance stamped on rows. Raises UnsupportedFormat for
        a missing header or a newer format version.
        """
        raise NotImplementedError

    def owner_id_for(self, owner: uuid.UUID) -> uuid.UUID:  # placeholder removed with the bodies
        raise NotImplementedError
