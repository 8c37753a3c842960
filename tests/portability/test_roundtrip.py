"""Export → import into an empty instance: the same memory, field by field; a second import adds nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
from sqlalchemy import select

from mosaic_memory.container import AppState
from mosaic_memory.models import AgentLog, Insight, InsightSource, Preference, PreferenceHistory, Skill
from mosaic_memory.owners.schemas import OwnerRef
from tests.portability.conftest import export_lines_of, import_lines, new_user, seed

LOCAL = {"search_tsv", "embedding", "owner_id", "created_by_run", "summarized_by_run", "seq"}


async def _rows(state: AppState, model: Any, owner: OwnerRef) -> dict[uuid.UUID, dict[str, Any]]:
    async with state.sessionmaker() as session:
        owner_id = await _owner_id(state, owner)
        rows = (await session.scalars(select(model).where(model.owner_id == owner_id))).all()
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for row in rows:
        fields = {c.key: getattr(row, c.key) for c in model.__mapper__.column_attrs if c.key not in LOCAL}
        if "metadata_" in fields:
            fields["metadata_"] = {k: v for k, v in fields["metadata_"].items() if k != "origin"}
        if hasattr(row, "embedding"):
            fields["vector"] = None if row.embedding is None else np.asarray(row.embedding).round(5).tolist()
        out[row.id] = fields
    return out


async def _owner_id(state: AppState, owner: OwnerRef) -> uuid.UUID:
    async with state.sessionmaker() as session:
        ref = await state.owners.owner_by_label(session, owner.label)
    assert ref is not None
    return ref.id


async def _links(state: AppState, owner: OwnerRef) -> set[tuple[uuid.UUID, uuid.UUID]]:
    owner_id = await _owner_id(state, owner)
    async with state.sessionmaker() as session:
        rows = await session.execute(
            select(InsightSource.insight_id, InsightSource.log_id).where(InsightSource.owner_id == owner_id)
        )
        return {(r.insight_id, r.log_id) for r in rows}


async def test_round_trip_into_an_empty_instance_is_identical_field_by_field(state: AppState, target: AppState) -> None:
    owner = await new_user(state, "rt")
    seeded = await seed(state, owner)
    lines = await export_lines_of(state, [owner], with_vectors=True, instance="laptop")
    header = json.loads(lines[0])
    assert header["type"] == "header" and header["version"] == 1 and header["instance"] == "laptop"
    assert header["embedding"] == {"model": state.embedder.model_id, "dimensions": state.embedder.dimensions}
    assert json.loads(lines[-1]) == {"type": "end", "records": len(lines) - 2}

    report = await import_lines(target, lines)
    assert report.errors == [] and report.complete and report.reembed_reason is None
    assert {k: (c.added, c.merged, c.duplicate, c.failed) for k, c in report.counts.items()} == {
        "logs": (3, 0, 0, 0),
        "insights": (2, 0, 0, 0),
        "preferences": (2 + 5, 0, 0, 0),  # two keys, five history entries (the deleted key's two too)
        "skills": (1, 0, 0, 0),
    }

    for model in (AgentLog, Insight, Preference, PreferenceHistory, Skill):
        before, after = await _rows(state, model, owner), await _rows(target, model, owner)
        assert before.keys() == after.keys(), model.__name__
        for row_id, fields in before.items():
            assert after[row_id] == fields, (model.__name__, row_id)
    assert (
        await _links(target, owner)
        == await _links(state, owner)
        == {
            (seeded.new_id, seeded.log_ids[0]),
            (seeded.new_id, seeded.log_ids[1]),
        }
    )
    kept = {r.id: r for r in await _insights(target, owner)}
    assert kept[seeded.old_id].superseded_by == seeded.new_id and kept[seeded.old_id].valid_to is not None
    assert {r.metadata_["origin"] for r in kept.values()} == {"laptop"}
    logs = await _rows(target, AgentLog, owner)
    assert logs[seeded.log_ids[0]]["summarized_at"] is not None and logs[seeded.log_ids[0]]["tier"] == "warm"
    prefs = {p["key"]: p for p in (await _rows(target, Preference, owner)).values()}
    assert prefs["language"]["mutable"] is False and prefs["editor"]["value"] == "emacs"

    # Idempotent: the same file again changes nothing.
    again = await import_lines(target, lines)
    assert again.changed == 0 and again.errors == []
    assert sum(c.duplicate for c in again.counts.values()) == len(lines) - 2
    for model in (AgentLog, Insight, Preference, PreferenceHistory, Skill):
        assert await _rows(target, model, owner) == await _rows(state, model, owner), model.__name__


async def _insights(state: AppState, owner: OwnerRef) -> list[Insight]:
    owner_id = await _owner_id(state, owner)
    async with state.sessionmaker() as session:
        return list((await session.scalars(select(Insight).where(Insight.owner_id == owner_id))).all())
