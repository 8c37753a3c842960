"""Import rules: merging separate brains, bad lines, newer versions, foreign vectors, dry runs."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from embeddings import content_hash
from mosaic_memory.container import AppState
from mosaic_memory.models import AgentLog, Insight, Preference, PreferenceHistory, Skill
from mosaic_memory.owners.schemas import OwnerRef
from mosaic_memory.portability.format import UnsupportedFormat, encode_vector
from tests.portability.conftest import export_lines_of, import_lines, insights_of, new_user, seed

SHARED = "The user prefers dark themes in every editor"
NEAR = "The user prefers dark themes in every editor."  # another hash, the same meaning


async def _count(state: AppState, owner: OwnerRef) -> dict[str, int]:
    async with state.sessionmaker() as session:
        out = {}
        for model in (AgentLog, Insight, Preference, PreferenceHistory, Skill):
            stmt = select(func.count()).select_from(model).where(model.owner_id == owner.id)
            out[model.__tablename__] = int(await session.scalar(stmt) or 0)
        return out


async def test_two_instances_with_overlapping_memory_merge_into_a_third_once_each(
    state: AppState, target: AppState
) -> None:
    laptop, home = await new_user(state, "laptop"), await new_user(state, "home")
    await seed(state, laptop, facts=[SHARED, "Deploys happen on Tuesdays"])
    await seed(state, home, facts=[NEAR, "The cat is allergic to chicken"])
    from_laptop = await export_lines_of(state, [laptop], instance="laptop")
    from_home = await export_lines_of(state, [home], instance="home")
    brain = await new_user(target, "brain")

    first = await import_lines(target, from_laptop, as_owner=brain.label)
    second = await import_lines(target, from_home, as_owner=brain.label)
    assert first.errors == second.errors == []
    assert first.reembed_reason == "the file has no vectors"
    # The seeded memory is the same text on both: exact duplicates; the near-identical fact merges.
    assert second.counts["insights"].added == 1 and second.counts["insights"].merged == 1
    assert second.counts["insights"].duplicate == 2
    assert second.counts["skills"].duplicate == 1 and second.counts["logs"].duplicate == 0

    rows = await insights_of(target, brain.id)
    contents = sorted(r.content for r in rows)
    assert len(contents) == len(set(contents))
    assert {
        SHARED,
        "Deploys happen on Tuesdays",
        "The cat is allergic to chicken",
        "Tests run against SQLite",
        "Tests run against a real PostgreSQL with pgvector",
    } == set(contents)
    kept = next(r for r in rows if r.content == SHARED)
    assert kept.metadata_["origin"] == "laptop"
    assert [m["origin"] for m in kept.metadata_["merged_from"]] == ["home"]
    assert kept.metadata_["merged_from"][0]["content_hash"] == content_hash(NEAR)
    # The superseded history arrived once, still linked.
    old = next(r for r in rows if r.content == "Tests run against SQLite")
    new = next(r for r in rows if r.content.startswith("Tests run against a real"))
    assert old.superseded_by == new.id
    # Logs of both instances are distinct events: both kept (the same texts, other ids and times).
    assert (await _count(target, brain))["agent_logs"] == 6

    # Both files again: nothing changes.
    before = await _count(target, brain)
    again = [await import_lines(target, f, as_owner=brain.label) for f in (from_laptop, from_home)]
    assert [r.changed for r in again] == [0, 0]
    assert await _count(target, brain) == before


async def test_a_malformed_or_truncated_line_is_reported_with_its_number_and_skipped(
    state: AppState, target: AppState
) -> None:
    owner = await new_user(state, "bad")
    await seed(state, owner)
    lines = await export_lines_of(state, [owner])
    bad_at = 3
    lines.insert(bad_at - 1, b'{"type": "insight", "owner": "user:x", "id": "not-a-uuid"}\n')
    lines.insert(bad_at, b"this is not json\n")
    truncated = lines[-2][: len(lines[-2]) // 2]  # the last record cut mid-line, and no end record
    lines = [*lines[:-2], truncated]
    dest = await new_user(target, "dest")
    report = await import_lines(target, lines, as_owner=dest.label)
    by_line = {e.line: e for e in report.errors}
    assert set(by_line) == {bad_at, bad_at + 1, len(lines)}
    assert by_line[bad_at].kind == "insights" and "id" in by_line[bad_at].reason
    assert "not valid JSON" in by_line[bad_at + 1].reason
    assert "not valid JSON" in by_line[len(lines)].reason
    assert not report.complete and "cut short" in report.warnings[0]
    # Everything else landed.
    counts = await _count(target, dest)
    assert counts["agent_logs"] == 3 and counts["insights"] == 2 and counts["preferences"] == 2


async def test_a_file_from_a_newer_format_version_is_refused_before_anything_is_written(target: AppState) -> None:
    header = {
        "type": "header",
        "format": "mosaic-memory-export",
        "version": 2,
        "instance": "future",
        "exported_at": "2030-01-01T00:00:00Z",
    }
    dest = await new_user(target, "future")
    record = {"type": "skill", "owner": dest.label, "id": "6f0c6c7e-0000-4000-8000-000000000001"}
    lines = [json.dumps(header).encode() + b"\n", json.dumps(record).encode() + b"\n"]
    with pytest.raises(UnsupportedFormat, match="format version 2, newer than"):
        await import_lines(target, lines)
    with pytest.raises(UnsupportedFormat, match="not a mosaic-memory-export header"):
        await import_lines(target, lines[1:])
    assert (await _count(target, dest))["skills"] == 0


async def test_vectors_from_another_model_are_re_embedded(state: AppState, target: AppState) -> None:
    owner = await new_user(state, "othermodel")
    await seed(state, owner)
    lines = await export_lines_of(state, [owner], with_vectors=True)
    foreign: list[bytes] = []
    for line in lines:
        record: dict[str, Any] = json.loads(line)
        if record["type"] == "header":
            record["embedding"] = {"model": "other/model-8d", "dimensions": 8}
        elif "vector" in record:
            record["vector"] = encode_vector(np.ones(8, dtype=np.float32))
            record["embedding_model"] = "other/model-8d"
        foreign.append(json.dumps(record).encode() + b"\n")
    dest = await new_user(target, "reembed")
    report = await import_lines(target, foreign, as_owner=dest.label)
    assert report.errors == [] and "other/model-8d" in (report.reembed_reason or "")
    rows = await insights_of(target, dest.id)
    assert {r.embedding_model for r in rows} == {target.embedder.model_id}
    expected = await target.embedder.embed_documents([r.content for r in rows])
    for row, vector in zip(rows, expected, strict=True):
        assert np.allclose(np.asarray(row.embedding), vector, atol=1e-5)


async def test_dry_run_reports_what_it_would_do_and_writes_nothing(state: AppState, target: AppState) -> None:
    owner = await new_user(state, "dry")
    await seed(state, owner)
    lines = await export_lines_of(state, [owner])
    dest_label = f"user:dry-new-{owner.name}"
    report = await import_lines(target, lines, as_owner=dest_label, dry_run=True)
    assert report.dry_run and report.counts["insights"].added == 2 and report.counts["logs"].added == 3
    async with target.sessionmaker() as session:
        assert await target.owners.owner_by_label(session, dest_label) is None  # not even the owner
    real = await import_lines(target, lines, as_owner=dest_label)
    assert {k: c.added for k, c in real.counts.items()} == {k: c.added for k, c in report.counts.items()}


async def test_an_owner_key_imports_only_into_its_own_owners(state: AppState, target: AppState) -> None:
    owner = await new_user(state, "scoped")
    await seed(state, owner)
    lines = await export_lines_of(state, [owner], kinds=["skills"])
    mine, other = await new_user(target, "mine"), await new_user(target, "other")
    from tests.portability.conftest import principal_for

    refused = await import_lines(target, lines, principal=principal_for(mine), as_owner=other.label)
    assert refused.counts["skills"].failed == 1 and "PermissionDenied" in refused.errors[0].reason
    assert (await _count(target, other))["skills"] == 0
    allowed = await import_lines(target, lines, principal=principal_for(mine), as_owner=mine.label)
    assert allowed.counts["skills"].added == 1


async def test_export_narrows_by_kinds_and_tags(state: AppState) -> None:
    owner = await new_user(state, "narrow")
    await seed(state, owner, facts=["Deploys happen on Tuesdays"])
    records = [json.loads(line) for line in await export_lines_of(state, [owner], tags=["work"])]
    body = records[1:-1]
    assert [r["content"] for r in body] == ["Deploys happen on Tuesdays"]
    assert records[0]["kinds"] == ["insights", "skills"] and records[0]["tags"] == ["work"]
    only = [json.loads(line) for line in await export_lines_of(state, [owner], kinds=["preferences"])]
    assert {r["type"] for r in only[1:-1]} == {"preference", "preference_change"}
