"""Merging into existing insights, and rolling a run back to the exact prior state."""

from __future__ import annotations

from datetime import timedelta

import httpx

from jobs import JobRunner
from mosaic_memory.container import AppState
from mosaic_memory.models import utc_now
from tests.conftest import UserFactory
from tests.jobs.conftest import insight_rows, log_rows, make_logs, owner_id, source_rows
from tests.jobs.topics import FONT, REPLICA, TRIP


async def test_merge_then_rollback_restores_every_row(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState, runner: JobRunner
) -> None:
    await runner.run("summarize", trigger="test")  # nothing else pending: the counts below are this test's
    name, h = await make_user()
    owner = await owner_id(state, name)
    await make_logs(state, owner, session_id="rb-replica", contents=REPLICA)
    await make_logs(state, owner, session_id="rb-font", contents=FONT)
    # logs that were already warm keep their own tier history through a rollback
    moved = utc_now() - timedelta(days=2)
    await make_logs(state, owner, session_id="rb-trip", contents=TRIP, tier="warm", tier_changed_at=moved)

    preview = await runner.run("summarize", trigger="test", dry_run=True)
    replica_text = next(g["insights"][0] for g in preview.changes["diff"] if g.get("session_id") == "rb-replica")
    # the user already knows this, in nearly the same words: the run must merge, not duplicate
    existing = await http.post(
        "/v1/insights",
        json={"content": replica_text + " Noted.", "tags": ["ops"], "importance": 0.2, "metadata": {"k": 1}},
        headers=h,
    )
    assert existing.status_code == 201, existing.text
    existing_id = existing.json()["id"]

    logs_before = await log_rows(state, owner)
    insights_before = await insight_rows(state, owner)
    assert await source_rows(state, owner) == set()

    run = await runner.run("summarize", trigger="test")
    assert run.status == "succeeded"
    groups = [g for g in run.changes["groups"] if g["owner_id"] == str(owner)]
    assert len(groups) == 3
    replica = next(g for g in groups if g["session_id"] == "rb-replica")
    assert replica["merged"] == [existing_id] and existing_id not in replica["created"]
    merged = (await http.get(f"/v1/insights/{existing_id}", headers=h)).json()
    assert merged["tags"] == ["ops", "summary"] and merged["importance"] == 0.5
    sources = (await http.get(f"/v1/insights/{existing_id}/sources", headers=h)).json()["items"]
    # the merged insight cites the lines of the summary merged into it, and only those
    assert sources and all(x["session_id"] == "rb-replica" and x["content"] in replica_text for x in sources)
    created = sum(len(g["created"]) for g in groups)
    assert created == run.counts["insights_created"]
    assert len(await insight_rows(state, owner)) == created + 1
    trip_logs = [r for r in (await log_rows(state, owner)).values() if r["session_id"] == "rb-trip"]
    assert all(r["tier"] == "warm" and r["tier_changed_at"] == moved for r in trip_logs)

    undone = await runner.rollback(run.id)
    assert undone.status == "rolled_back" and undone.rolled_back_at is not None
    assert undone.changes["rollback"]["insights_deleted"] == created
    assert undone.changes["rollback"]["insights_restored"] == 1
    assert await log_rows(state, owner) == logs_before
    assert await insight_rows(state, owner) == insights_before
    assert await source_rows(state, owner) == set()

    # the logs are pending again: the next run summarizes them once more
    again = await runner.run("summarize", trigger="test")
    assert again.counts["logs_consumed"] >= len(REPLICA) + len(FONT) + len(TRIP)
