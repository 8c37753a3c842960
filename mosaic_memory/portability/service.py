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

import logging
import socket
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from embeddings import Embedder
from mosaic_memory.common.secret_scan import SecretCheck
from mosaic_memory.config import Settings
from mosaic_memory.errors import MosaicError, OwnerNotFound, PermissionDenied
from mosaic_memory.insights.service import InsightService
from mosaic_memory.logs.service import LogService
from mosaic_memory.models import AgentLog, Insight, Preference, PreferenceHistory, Skill, utc_now
from mosaic_memory.owners.schemas import OwnerRef, Principal
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.portability.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    BadRecord,
    EndRecord,
    Header,
    InsightRecord,
    LogRecord,
    PreferenceChangeRecord,
    PreferenceRecord,
    Record,
    SkillRecord,
    UnsupportedFormat,
    check_kinds,
    decode_vector,
    dump_line,
    encode_vector,
    kind_of,
    parse_header,
    parse_record,
    split_lines,
)
from mosaic_memory.portability.repository import ExportRepository
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

log = logging.getLogger("mosaic_memory.portability")

MAX_REPORTED_ERRORS = 1000


@dataclass
class KindCounts:
    """What happened to the records of one kind."""

    added: int = 0
    merged: int = 0  # folded into an existing row (near-duplicate insight, newer value of a key)
    duplicate: int = 0  # already there (same content hash, or same id and content): nothing written
    conflict: int = 0  # the target holds a different, newer value that is kept (preferences, skills)
    failed: int = 0


@dataclass
class LineError:
    line: int
    kind: str | None
    reason: str


@dataclass
class ImportReport:
    """Counts per kind, the lines that failed (line number and reason), and the header seen.

    ``errors`` lists at most 1,000 failures (``errors_truncated`` says when more failed); the
    counts are always complete. ``reembed_reason`` says why vectors were computed here."""

    dry_run: bool
    origin: str | None = None
    format_version: int | None = None
    reembed_reason: str | None = None
    counts: dict[str, KindCounts] = field(default_factory=dict)
    errors: list[LineError] = field(default_factory=list)
    errors_truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    lines: int = 0
    records_seen: int = 0  # records read (header and end record not counted), parsed or not
    complete: bool = False  # the end record was seen
    secrets_redacted: int = 0  # credentials redacted from the records that were applied

    def kind(self, name: str) -> KindCounts:
        return self.counts.setdefault(name, KindCounts())

    def fail(self, line: int, kind: str | None, reason: str) -> None:
        if kind is not None:
            self.kind(kind).failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(LineError(line, kind, reason))
        else:
            self.errors_truncated = True

    @property
    def changed(self) -> int:
        """Rows added or merged (0 for a repeated import)."""
        return sum(c.added + c.merged for c in self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def instance_name(session: AsyncSession) -> str:
    """This instance's name: ``instance_meta['instance']`` (``{"name": ...}`` or a string) when
    federation set one, else the host name."""
    value = await ExportRepository(session).meta("instance")
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return str(value["name"])
    if isinstance(value, str) and value:
        return value
    return socket.gethostname()


def _is_admin(principal: Principal | None) -> bool:
    return principal is None or "admin" in principal.scopes


async def resolve_export_owners(
    session: AsyncSession, principal: Principal | None, owners: Sequence[str] | None
) -> list[OwnerRef]:
    """The owners ``principal`` may export: an admin (or None, a system caller) any owner by
    label (default every owner), another key only its own user and teams (default all of them).

    Raises OwnerNotFound (404) for an owner the key may not see or that does not exist, and
    InvalidInput for a malformed label."""
    service = OwnerService()
    if principal is not None and not _is_admin(principal):
        if not owners:
            return list(principal.owners)
        return list({o.id: o for o in (OwnerService.resolve_owner(principal, label) for label in owners)}.values())
    if not owners:
        return await service.all_owners(session)
    found: dict[uuid.UUID, OwnerRef] = {}
    for label in owners:
        ref = await service.owner_by_label(session, label)
        if ref is None:
            raise OwnerNotFound(label)
        found[ref.id] = ref
    return list(found.values())


def _vector(row: Any, with_vectors: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"embedding_model": row.embedding_model}
    if with_vectors and getattr(row, "embedding", None) is not None:
        out["vector"] = encode_vector(row.embedding)
    return out


def _log_record(row: Any, owner: str, with_vectors: bool) -> dict[str, Any]:
    return {
        "type": "log",
        "owner": owner,
        "id": row.id,
        "session_id": row.session_id,
        "agent_id": row.agent_id,
        "level": row.level,
        "content": row.content,
        "metadata": row.metadata or {},
        "occurred_at": row.occurred_at,
        "created_at": row.created_at,
        "tier": row.tier,
        "tier_changed_at": row.tier_changed_at,
        "summarized_at": row.summarized_at,
        **_vector(row, with_vectors),
    }


def _insight_record(row: Any, owner: str, sources: list[uuid.UUID], with_vectors: bool) -> dict[str, Any]:
    return {
        "type": "insight",
        "owner": owner,
        "id": row.id,
        "content": row.content,
        "category": row.category,
        "tags": list(row.tags or []),
        "metadata": row.metadata or {},
        "importance": row.importance,
        "confidence": row.confidence,
        "pinned": row.pinned,
        "valid_from": row.valid_from,
        "valid_to": row.valid_to,
        "superseded_by": row.superseded_by,
        "expires_at": row.expires_at,
        "access_count": row.access_count,
        "last_accessed_at": row.last_accessed_at,
        "source_type": row.source_type,
        "source_ref": row.source_ref,
        "sources": sources,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        **_vector(row, with_vectors),
    }


def _preference_record(row: Any, owner: str, with_vectors: bool) -> dict[str, Any]:
    return {
        "type": "preference",
        "owner": owner,
        "id": row.id,
        "key": row.key,
        "scope": row.scope,
        "value": row.value,
        "mutable": row.mutable,
        "source": row.source,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        **_vector(row, with_vectors),
    }


def _change_record(row: Any, owner: str) -> dict[str, Any]:
    return {
        "type": "preference_change",
        "owner": owner,
        "id": row.id,
        "preference_id": row.preference_id,
        "key": row.key,
        "scope": row.scope,
        "old_value": row.old_value,
        "new_value": row.new_value,
        "action": row.action,
        "changed_by": row.changed_by,
        "source": row.source,
        "changed_at": row.changed_at,
    }


def _skill_record(row: Any, owner: str, with_vectors: bool) -> dict[str, Any]:
    return {
        "type": "skill",
        "owner": owner,
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "instructions": row.instructions,
        "tags": list(row.tags or []),
        "metadata": row.metadata or {},
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        **_vector(row, with_vectors),
    }


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
    The header's ``counts`` say how many records of each kind follow (for a progress bar).
    Raises InvalidInput for an unknown kind.
    """
    chosen = check_kinds(kinds)
    tag_list = sorted({t for t in tags or () if t}) or None
    repo = ExportRepository(session)
    ids = [o.id for o in owners]
    if tag_list:
        chosen = tuple(k for k in chosen if k in ("insights", "skills"))
    counts: dict[str, int] = {}
    if ids:
        for kind in chosen:
            if kind == "logs":
                counts["logs"] = await repo.count(AgentLog, ids)
            elif kind == "insights":
                counts["insights"] = await repo.count(Insight, ids, tag_list)
            elif kind == "preferences":
                counts["preferences"] = await repo.count(Preference, ids) + await repo.count(PreferenceHistory, ids)
            else:
                counts["skills"] = await repo.count(Skill, ids, tag_list)
    embedding = await repo.meta("embedding") or {}
    yield {
        "type": "header",
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "instance": instance or await instance_name(session),
        "exported_at": utc_now(),
        "embedding": {"model": embedding.get("model_id"), "dimensions": embedding.get("dimensions")},
        "with_vectors": with_vectors,
        "kinds": list(chosen),
        "tags": tag_list or [],
        "owners": [o.label for o in owners],
        "counts": counts,
    }
    total = 0
    for kind in chosen:
        for owner in owners:
            label = owner.label
            if kind == "logs":
                after_log: tuple[datetime, int] | None = None
                while rows := await repo.logs(owner.id, after=after_log, limit=batch_size, with_vectors=with_vectors):
                    for row in rows:
                        total += 1
                        yield _log_record(row, label, with_vectors)
                    after_log = (rows[-1].occurred_at, rows[-1].seq)
            elif kind == "insights":
                after_ins: tuple[datetime, uuid.UUID] | None = None
                while rows := await repo.insights(
                    owner.id, after=after_ins, limit=batch_size, tags=tag_list, with_vectors=with_vectors
                ):
                    links = await repo.sources(owner.id, [r.id for r in rows])
                    for row in rows:
                        total += 1
                        yield _insight_record(row, label, links.get(row.id, []), with_vectors)
                    after_ins = (rows[-1].created_at, rows[-1].id)
            elif kind == "preferences":
                after: uuid.UUID | None = None
                while rows := await repo.by_id(
                    Preference, owner.id, after=after, limit=batch_size, with_vectors=with_vectors
                ):
                    for row in rows:
                        total += 1
                        yield _preference_record(row, label, with_vectors)
                    after = rows[-1].id
                after = None
                while rows := await repo.by_id(PreferenceHistory, owner.id, after=after, limit=batch_size):
                    for row in rows:
                        total += 1
                        yield _change_record(row, label)
                    after = rows[-1].id
            else:
                after = None
                while rows := await repo.by_id(
                    Skill, owner.id, after=after, limit=batch_size, tags=tag_list, with_vectors=with_vectors
                ):
                    for row in rows:
                        total += 1
                        yield _skill_record(row, label, with_vectors)
                    after = rows[-1].id
    # The trailer: an import that does not see it knows the file was cut at a line boundary.
    yield {"type": "end", "records": total}


async def export_lines(session: AsyncSession, owners: Sequence[OwnerRef], **options: Any) -> AsyncIterator[bytes]:
    """:func:`export_records` as NDJSON lines (UTF-8, each ending in a newline)."""
    async for record in export_records(session, owners, **options):
        yield dump_line(record)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, MosaicError):
        return f"{exc.error}: {exc.detail}"
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        # The driver's first line names the constraint or type, never a connection secret.
        return f"database: {str(exc.orig).strip().splitlines()[0]}"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


@dataclass
class _Run:
    """The state of one import: owner resolution, id remaps, pending history links."""

    report: ImportReport
    header: Header
    origin: str
    principal: Principal | None
    as_owner: str | None
    owner_map: dict[str, str]
    usable_vectors: bool
    complete: bool = False
    owners: dict[str, OwnerRef] = field(default_factory=dict)
    # (owner, id in the file) -> id kept here, only where they differ.
    log_ids: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID] = field(default_factory=dict)
    insight_ids: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID] = field(default_factory=dict)
    preference_ids: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID] = field(default_factory=dict)
    # Imported insights that name a successor, per owner: relinked at the end if it was kept elsewhere.
    with_successor: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)


class PortabilityService:
    """Imports export files through the kinds' services.

    Guarantees: a header from a newer format version is refused before anything is written
    (UnsupportedFormat); a malformed or truncated line is reported with its line number and
    skipped; records are committed in batches, so a failure never loses what came before;
    importing the same file twice changes nothing the second time; ``dry_run`` runs the same
    path in one transaction that is rolled back, so it reports exactly what it would do.
    Credentials in a record's text are redacted before it reaches the kind's service (its
    file vector is then dropped and the text embedded anew); with ``secrets.mode = "refuse"``
    such a record fails with SecretDetected as its reason and the rest still lands.
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
        owners: OwnerService | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.embedder = embedder
        self.settings = settings
        self.insights = insights
        self.preferences = preferences
        self.skills = skills
        self.logs = logs
        self.owners = owners or OwnerService()
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
        """Import ``lines`` (an export: header first; bytes or text cut anywhere, or parsed dicts).

        Owners: ``as_owner`` sends every record to that owner; else ``owner_map`` (source label
        → target label), else the record's own owner label. ``principal`` None (system callers,
        e.g. federation pull or the CLI on the database) or an admin key may write any owner,
        creating missing users and teams (without keys); another key only its own user and
        teams: a record for any other owner fails with PermissionDenied as its reason.
        ``origin`` overrides the header's instance name as the provenance stamped on rows
        (``metadata.origin``, kept if a row already names an earlier origin). Raises
        UnsupportedFormat for a missing or malformed header or a newer format version.
        """
        report = ImportReport(dry_run=dry_run)
        stream = split_lines(lines).__aiter__()
        header: Header | None = None
        async for raw in stream:
            report.lines += 1
            if isinstance(raw, bytes) and not raw.strip():
                continue
            header = parse_header(raw)
            break
        if header is None:
            raise UnsupportedFormat("the file is empty: an export starts with a header line")
        report.format_version = header.version
        report.origin = origin or header.instance
        usable = (
            header.embedding.model == self.embedder.model_id and header.embedding.dimensions == self.embedder.dimensions
        )
        if not header.with_vectors:
            report.reembed_reason = "the file has no vectors"
        elif not usable:
            report.reembed_reason = (
                f"the file's vectors come from {header.embedding.model!r} ({header.embedding.dimensions} dimensions); "
                f"this instance embeds with {self.embedder.model_id!r} ({self.embedder.dimensions})"
            )
        run = _Run(
            report=report,
            header=header,
            origin=report.origin,
            principal=principal,
            as_owner=as_owner,
            owner_map=dict(owner_map or {}),
            usable_vectors=usable and header.with_vectors,
        )

        async with self._transactions(sessionmaker, principal, dry_run) as batch_tx:
            batch: list[tuple[int, Record]] = []

            async def flush() -> None:
                if batch:
                    await self._apply(run, batch_tx, list(batch))
                    batch.clear()

            async for raw in stream:
                report.lines += 1
                line_no = report.lines
                if isinstance(raw, bytes) and not raw.strip():
                    continue
                if run.complete:
                    report.fail(line_no, None, "a line after the end record")
                    continue
                try:
                    record = parse_record(raw)
                except BadRecord as exc:
                    report.records_seen += 1
                    report.fail(line_no, exc.kind, str(exc))
                    continue
                if isinstance(record, EndRecord):
                    run.complete = True
                    report.complete = True
                    if record.records != report.records_seen:
                        report.warnings.append(
                            f"the end record counts {record.records} records, the file holds {report.records_seen}"
                        )
                    continue
                report.records_seen += 1
                if batch and (batch[-1][1].type != record.type or len(batch) >= batch_size):
                    await flush()
                batch.append((line_no, record))
            await flush()
            await self._relink(run, batch_tx)
        if not report.complete:
            report.warnings.append("the file ends without its end record: it may have been cut short")
        return report

    # transactions ----------------------------------------------------------------------------
    @asynccontextmanager
    async def _transactions(
        self, sessionmaker: async_sessionmaker[AsyncSession], principal: Principal | None, dry_run: bool
    ) -> AsyncIterator[Callable[[], Any]]:
        """Yield a factory of per-batch transactions: each its own committed transaction, or for
        a dry run a savepoint inside one transaction that is rolled back at the end. A
        principal's import runs in its owner scope; a system caller's (None) across owners."""
        if not dry_run:

            @asynccontextmanager
            async def committed() -> AsyncIterator[AsyncSession]:
                async with sessionmaker() as session:
                    if principal is not None:
                        await OwnerService.enter_scope(session, principal)
                    async with session.begin():
                        yield session

            yield committed
            return
        # A dry run writes nothing: everything happens in one transaction that is rolled back.
        async with sessionmaker() as shared:
            if principal is not None:
                await OwnerService.enter_scope(shared, principal)
            outer = await shared.begin()
            try:

                @asynccontextmanager
                async def savepoint() -> AsyncIterator[AsyncSession]:
                    async with shared.begin_nested():
                        yield shared

                yield savepoint
            finally:
                await outer.rollback()

    async def _apply(self, run: _Run, batch_tx: Callable[[], Any], batch: list[tuple[int, Record]]) -> None:
        """Apply one batch of records of one type; on failure, each record alone, so one bad
        record fails by itself and the rest still lands."""
        try:
            check = SecretCheck(self.settings.secrets.mode)
            async with batch_tx() as session:
                outcomes = await self._apply_batch(run, session, batch, check)
            self._count(run, batch, outcomes, check)
            return
        except (MosaicError, SQLAlchemyError, ValueError) as exc:
            if len(batch) == 1:
                run.owners.clear()  # owners created in the rolled-back transaction are gone
                run.report.fail(batch[0][0], kind_of(batch[0][1].type), _reason(exc))
                return
            log.info("import batch of %d %s records failed (%s); one by one", len(batch), batch[0][1].type, exc)
        run.owners.clear()
        for item in batch:
            try:
                check = SecretCheck(self.settings.secrets.mode)
                async with batch_tx() as session:
                    outcomes = await self._apply_batch(run, session, [item], check)
                self._count(run, [item], outcomes, check)
            except (MosaicError, SQLAlchemyError, ValueError) as exc:
                run.owners.clear()
                run.report.fail(item[0], kind_of(item[1].type), _reason(exc))

    async def _target(self, run: _Run, session: AsyncSession, label: str) -> OwnerRef:
        """The owner a record of source owner ``label`` goes to. Raises PermissionDenied, InvalidInput."""
        target = run.as_owner or run.owner_map.get(label) or label
        if target in run.owners:
            return run.owners[target]
        principal = run.principal
        if principal is not None and not _is_admin(principal):
            try:
                ref = OwnerService.resolve_owner(principal, target)
            except MosaicError:
                raise PermissionDenied(f"this key may import only into its own owners, not into {target!r}") from None
        else:
            ref = await self.owners.ensure_owner(session, target)
        run.owners[target] = ref
        return ref

    def _vector_of(self, run: _Run, record: Record) -> Any:
        """The record's vector if it can be used as is here, else None (embedded on import)."""
        if not run.usable_vectors or record.vector is None or record.embedding_model != self.embedder.model_id:
            return None
        try:
            vector = decode_vector(record.vector)
        except ValueError:
            return None
        return vector if vector.shape[0] == self.embedder.dimensions else None

    @staticmethod
    def _count(run: _Run, batch: list[tuple[int, Record]], outcomes: list[str], check: SecretCheck) -> None:
        """Count a batch's outcomes once its transaction has committed (or its savepoint held)."""
        counts = run.report.kind(kind_of(batch[0][1].type))
        for outcome in outcomes:
            setattr(counts, outcome, getattr(counts, outcome) + 1)
        run.report.secrets_redacted += check.count

    @staticmethod
    def _without_secrets(record: Record, check: SecretCheck) -> Record:
        """The record with credentials redacted from its text (and its vector dropped, as it was
        computed from the text with them). Raises SecretDetected in refuse mode."""
        before = check.count
        update: dict[str, Any]
        if isinstance(record, (LogRecord, InsightRecord)):
            update = {"content": check.text(record.content), "metadata": check.json(record.metadata)}
        elif isinstance(record, PreferenceRecord):
            update = {"value": check.json(record.value)}
        elif isinstance(record, PreferenceChangeRecord):
            update = {"old_value": check.json(record.old_value), "new_value": check.json(record.new_value)}
        elif isinstance(record, SkillRecord):
            update = {
                "name": check.text(record.name),
                "description": check.text(record.description),
                "instructions": check.text(record.instructions),
                "metadata": check.json(record.metadata),
            }
        else:
            return record
        if check.count == before:
            return record
        if not isinstance(record, PreferenceChangeRecord):
            update["vector"] = None
        return record.model_copy(update=update)

    async def _apply_batch(
        self, run: _Run, session: AsyncSession, batch: list[tuple[int, Record]], check: SecretCheck
    ) -> list[str]:
        by_owner: dict[uuid.UUID, list[Record]] = {}
        refs: dict[uuid.UUID, OwnerRef] = {}
        for _, raw in batch:
            record = self._without_secrets(raw, check)
            ref = await self._target(run, session, record.owner)
            refs[ref.id] = ref
            by_owner.setdefault(ref.id, []).append(record)
        outcomes: list[str] = []
        for owner_id, records in by_owner.items():
            outcomes += await self._apply_owner(run, session, owner_id, records)
        return outcomes

    def _origin_metadata(self, run: _Run, metadata: dict[str, Any]) -> dict[str, Any]:
        return metadata if "origin" in metadata else {**metadata, "origin": run.origin}

    async def _apply_owner(
        self, run: _Run, session: AsyncSession, owner_id: uuid.UUID, records: list[Record]
    ) -> list[str]:
        first = records[0]
        if isinstance(first, LogRecord):
            return await self._logs(run, session, owner_id, [r for r in records if isinstance(r, LogRecord)])
        if isinstance(first, InsightRecord):
            return await self._insights(run, session, owner_id, [r for r in records if isinstance(r, InsightRecord)])
        if isinstance(first, PreferenceRecord):
            prefs = [r for r in records if isinstance(r, PreferenceRecord)]
            return await self._preferences(run, session, owner_id, prefs)
        if isinstance(first, PreferenceChangeRecord):
            changes = [r for r in records if isinstance(r, PreferenceChangeRecord)]
            return await self._changes(run, session, owner_id, changes)
        return await self._skills(run, session, owner_id, [r for r in records if isinstance(r, SkillRecord)])

    async def _logs(self, run: _Run, session: AsyncSession, owner_id: uuid.UUID, logs: list[LogRecord]) -> list[str]:
        rows = [
            {
                "id": r.id,
                "session_id": r.session_id,
                "agent_id": r.agent_id,
                "level": r.level,
                "content": r.content,
                "metadata_": self._origin_metadata(run, r.metadata),
                "occurred_at": r.occurred_at,
                "created_at": r.created_at,
                "tier": r.tier,
                "tier_changed_at": r.tier_changed_at,
                "summarized_at": r.summarized_at,
                "embedding": self._vector_of(run, r),
                "embedding_model": r.embedding_model,
            }
            for r in logs
        ]
        results = await self.logs.import_rows(session, owner_id, rows)
        for r, (_, kept) in zip(logs, results, strict=True):
            if kept != r.id:
                run.log_ids[(owner_id, r.id)] = kept
        return [o for o, _ in results]

    async def _insights(
        self, run: _Run, session: AsyncSession, owner_id: uuid.UUID, records: list[InsightRecord]
    ) -> list[str]:
        rows = [self._insight_row(run, owner_id, r) for r in records]
        results = await self.insights.import_rows(session, owner_id, rows, origin=run.origin)
        links: list[tuple[uuid.UUID, uuid.UUID]] = []
        for r, row, (outcome, kept) in zip(records, rows, results, strict=True):
            if kept != r.id:
                run.insight_ids[(owner_id, r.id)] = kept
            if outcome == "added" and row.superseded_by is not None:
                run.with_successor.setdefault(owner_id, []).append(kept)
            links += [(kept, run.log_ids.get((owner_id, g), g)) for g in r.sources]
        await self.insights.import_sources(session, owner_id, links)
        return [o for o, _ in results]

    async def _preferences(
        self, run: _Run, session: AsyncSession, owner_id: uuid.UUID, records: list[PreferenceRecord]
    ) -> list[str]:
        rows = [
            Preference(
                id=r.id,
                key=r.key,
                scope=r.scope,
                value=r.value,
                mutable=r.mutable,
                source=r.source,
                created_at=r.created_at,
                updated_at=r.updated_at,
                embedding=self._vector_of(run, r),
                embedding_model=r.embedding_model,
            )
            for r in records
        ]
        results = await self.preferences.import_rows(session, owner_id, rows, origin=run.origin)
        for r, (_, kept) in zip(records, results, strict=True):
            if kept != r.id:
                run.preference_ids[(owner_id, r.id)] = kept
        return [o for o, _ in results]

    async def _changes(
        self, run: _Run, session: AsyncSession, owner_id: uuid.UUID, records: list[PreferenceChangeRecord]
    ) -> list[str]:
        rows = [
            PreferenceHistory(
                id=r.id,
                preference_id=run.preference_ids.get((owner_id, r.preference_id), r.preference_id),
                key=r.key,
                scope=r.scope,
                old_value=r.old_value,
                new_value=r.new_value,
                action=r.action,
                changed_by=r.changed_by,
                source=r.source,
                changed_at=r.changed_at,
            )
            for r in records
        ]
        return [o for o, _ in await self.preferences.import_changes(session, owner_id, rows)]

    async def _skills(
        self, run: _Run, session: AsyncSession, owner_id: uuid.UUID, records: list[SkillRecord]
    ) -> list[str]:
        rows = [
            Skill(
                id=r.id,
                name=r.name,
                description=r.description,
                instructions=r.instructions,
                tags=sorted(set(r.tags)),
                metadata_=self._origin_metadata(run, r.metadata),
                created_at=r.created_at,
                updated_at=r.updated_at,
                embedding=self._vector_of(run, r),
                embedding_model=r.embedding_model,
            )
            for r in records
        ]
        return [o for o, _ in await self.skills.import_rows(session, owner_id, rows)]

    def _insight_row(self, run: _Run, owner_id: uuid.UUID, r: InsightRecord) -> Insight:
        successor = r.superseded_by
        if successor is not None:
            successor = run.insight_ids.get((owner_id, successor), successor)
        return Insight(
            id=r.id,
            content=r.content,
            category=r.category,
            tags=sorted(set(r.tags)),
            metadata_=self._origin_metadata(run, r.metadata),
            importance=r.importance,
            confidence=r.confidence,
            pinned=r.pinned,
            valid_from=r.valid_from,
            valid_to=r.valid_to,
            superseded_by=successor,
            expires_at=r.expires_at,
            access_count=r.access_count,
            last_accessed_at=r.last_accessed_at,
            source_type=r.source_type,
            source_ref=r.source_ref,
            created_at=r.created_at,
            updated_at=r.updated_at,
            embedding=self._vector_of(run, r),
            embedding_model=r.embedding_model,
        )

    async def _relink(self, run: _Run, batch_tx: Callable[[], Any]) -> None:
        """Successors kept under another id than the file's (merged, duplicate, or id taken):
        the imported rows that named them follow."""
        todo = [(o, old, new) for (o, old), new in run.insight_ids.items() if run.with_successor.get(o)]
        if not todo:
            return
        async with batch_tx() as session:
            for owner_id, old, new in todo:
                await self.insights.import_relink(session, owner_id, run.with_successor[owner_id], old, new)
