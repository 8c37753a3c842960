"""Expiry and decay of insights; log tiers and retention. Every change lands in the ledger."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update

from jobs.ledger.repository import JobRunRepository
from mosaic_memory.config import KindPolicy
from mosaic_memory.container import AppState
from mosaic_memory.models import Insight, utc_now
from tests.conftest import UserFactory
from tests.jobs.conftest import log_rows, make_logs, owner_id, runner_for
from tests.jobs.topics import FONT


async def _insight(state: AppState, insight_id: str) -> Insight:
    async with state.sessionmaker() as session:
        row = await session.scalar(select(Insight).where(Insight.id == uuid.UUID(insight_id)))
        assert row is not None
        return row


async def test_expiry_and_decay_spare_pinned_and_recalled(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState
) -> None:
    _, h = await make_user()
    now = utc_now()
    past = now - timedelta(days=90)
    ids = {}
    gone = (now - timedelta(hours=1)).isoformat()
    for key, body in {
        "idle": {"content": "The staging server runs Debian 12", "importance": 0.8},
        "pinned": {"content": "The user is allergic to peanuts", "importance": 0.8, "pinned": True},
        "recalled": {"content": "Backups are stored in the eu-west bucket", "importance": 0.8},
        "expired": {"content": "The office wifi password rotates weekly", "expires_at": gone},
        "pinned_expired": {"content": "The build badge is on the README", "pinned": True, "expires_at": gone},
    }.items():
        r = await http.post("/v1/insights", json=body, headers=h)
        assert r.status_code == 201, r.text
        ids[key] = r.json()["id"]
    async with state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Insight).where(Insight.id.in_([uuid.UUID(i) for i in ids.values()])).values(created_at=past)
        )
        await session.execute(
            update(Insight).where(Insight.id == uuid.UUID(ids["recalled"])).values(last_accessed_at=now)
        )
        previous = await JobRunRepository(session).latest("expire-decay", statuses=["succeeded"])
    since = datetime.fromisoformat(previous.changes["as_of"]) if previous and previous.changes.get("as_of") else None

    runner = runner_for(state)
    dry = await runner.run("expire-decay", trigger="test", dry_run=True, now=now)
    assert dry.counts["expired"] >= 1 and (await _insight(state, ids["expired"])).valid_to is None

    run = await runner.run("expire-decay", trigger="test", now=now)
    assert run.status == "succeeded" and run.changes["as_of"] == now.isoformat()
    idle = await _insight(state, ids["idle"])
    ref = max(past, since) if since else past
    expected = 0.8 * math.pow(0.5, (now - ref).total_seconds() / (90 * 86400))
    assert math.isclose(idle.importance, expected, rel_tol=1e-6)
    assert (await _insight(state, ids["pinned"])).importance == 0.8
    assert (await _insight(state, ids["recalled"])).importance == 0.8
    expired = await _insight(state, ids["expired"])
    assert expired.valid_to is not None and expired.valid_to == expired.expires_at
    assert (await _insight(state, ids["pinned_expired"])).valid_to is None
    assert [expired.owner_id.hex, ids["expired"]] in [[uuid.UUID(o).hex, i] for o, i in run.changes["expired"]]
    decayed = {i: (b, a) for _, i, b, a in run.changes["decayed"]}
    assert decayed[ids["idle"]][0] == 0.8 and ids["pinned"] not in decayed and ids["recalled"] not in decayed

    listed = (await http.get("/v1/insights", params={"include_history": "false"}, headers=h)).json()["items"]
    assert ids["expired"] not in {i["id"] for i in listed}


async def test_warm_logs_cool_and_cold_logs_expire_only_when_configured(
    make_user: UserFactory, state: AppState
) -> None:
    name, _ = await make_user()
    owner = await owner_id(state, name)
    now = utc_now()
    days_ago = {d: now - timedelta(days=d) for d in (40, 400)}
    old = await make_logs(state, owner, session_id="t-old", contents=FONT[:2], start=days_ago[40], tier="warm")
    recent = await make_logs(state, owner, session_id="t-new", contents=FONT[2:4], tier="warm")
    hot = await make_logs(state, owner, session_id="t-hot", contents=FONT[4:], start=days_ago[40])
    ancient = await make_logs(state, owner, session_id="t-anc", contents=FONT[:1], start=days_ago[400], tier="cold")

    run = await runner_for(state).run("log-tiers", trigger="test", now=now)
    assert run.status == "succeeded"
    rows = await log_rows(state, owner)
    assert all(rows[i]["tier"] == "cold" and rows[i]["tier_changed_at"] == now for i in old)
    assert all(rows[i]["tier"] == "warm" for i in recent)
    assert all(rows[i]["tier"] == "hot" for i in hot)
    assert ancient[0] in rows  # no retention configured: nothing is deleted
    assert {str(i) for i in old} <= {i for _, i in run.changes["cooled"]}
    assert run.changes["deleted"] == []

    keep_a_year = runner_for(state, policy={"logs": KindPolicy(retention_days=365)})
    run = await keep_a_year.run("log-tiers", trigger="test", now=now)
    rows = await log_rows(state, owner)
    assert ancient[0] not in rows and all(i in rows for i in old)
    assert [str(owner), str(ancient[0])] in run.changes["deleted"]
