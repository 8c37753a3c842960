"""The Python client's insight, admin, jobs and federation methods, against the live app in-process."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from mosaic_memory.client import AsyncMosaicClient, MosaicClientError
from tests.conftest import ADMIN_KEY, UserFactory


def client_for(app: Any, key: str) -> AsyncMosaicClient:
    return AsyncMosaicClient("http://mosaic.test", key, transport=httpx.ASGITransport(app=app))


def key_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].split()[1]


async def test_insight_methods(app: Any, make_user: UserFactory) -> None:
    name, h = await make_user()
    async with client_for(app, key_of(h)) as mm:
        made = await mm.remember("Prefers tabs over spaces", tags=["code"], importance=0.3)
        assert made.owner == f"user:{name}" and made.tags == ["code"]
        batch = await mm.remember_many([{"content": "Ships on Fridays"}, {"content": "Reviews in the morning"}])
        assert len(batch.items) == 2
        assert (await mm.get_insight(made.id)).content == "Prefers tabs over spaces"
        assert [i.id for i in (await mm.list_insights(tag="code")).items] == [made.id]
        changed = await mm.update_insight(made.id, tags=["code", "style"], importance=0.8)
        assert changed.tags == ["code", "style"] and changed.importance == 0.8
        assert (await mm.insight_sources(made.id)).items == []  # written by hand: no source logs
        await mm.delete_insight(made.id)
        with pytest.raises(MosaicClientError) as err:
            await mm.get_insight(made.id)
        assert err.value.status == 404 and err.value.error == "InsightNotFound"
        with pytest.raises(MosaicClientError) as err:
            await mm.update_insight(batch.items[0].id, importance=2)
        assert err.value.status == 422
        assert (await mm.get_insight(batch.items[0].id)).importance != 2


async def test_admin_methods(app: Any) -> None:
    suffix = uuid.uuid4().hex[:8]
    async with client_for(app, ADMIN_KEY) as admin:
        alice = await admin.create_user(f"alice-{suffix}")
        bob = await admin.create_user(f"bob-{suffix}")
        assert {alice.user.name, bob.user.name} <= {u.name for u in await admin.list_users()}
        team = await admin.create_team(f"team-{suffix}", members=[alice.user.name])
        joined = await admin.add_team_member(team.name, bob.user.name)
        assert sorted(joined.members) == sorted([alice.user.name, bob.user.name])
        listed = next(t for t in await admin.list_teams() if t.name == team.name)
        assert sorted(listed.members) == sorted(joined.members)
        issued = await admin.create_key(bob.user.name, scopes=["read"], name="reader")
        keys = await admin.list_keys(bob.user.name)
        assert issued.key.prefix in {k.prefix for k in keys} and all(k.user == bob.user.name for k in keys)
        assert issued.api_key not in str([k.model_dump() for k in keys])  # only prefixes come back
    async with client_for(app, issued.api_key) as reader:
        me = await reader.me()
        assert me["user"] == bob.user.name and f"team:{team.name}" in me["owners"] and me["scopes"] == ["read"]
        with pytest.raises(MosaicClientError) as err:
            await reader.remember("a read-only key cannot write")
        assert err.value.status == 403
        with pytest.raises(MosaicClientError) as err:
            await reader.list_users()
        assert err.value.status == 403
    async with client_for(app, ADMIN_KEY) as admin:
        revoked = await admin.revoke_key(issued.key.prefix)
        assert revoked.revoked_at is not None
    async with client_for(app, issued.api_key) as reader:
        with pytest.raises(MosaicClientError) as err:
            await reader.me()
        assert err.value.status == 401


async def test_jobs_methods(app: Any, make_user: UserFactory) -> None:
    _, h = await make_user()
    async with client_for(app, key_of(h)) as mm:
        await mm.log_events(
            [{"session_id": "client-jobs", "content": f"Configured the nightly backup step {i}"} for i in range(3)]
        )
        with pytest.raises(MosaicClientError) as err:
            await mm.list_jobs()
        assert err.value.status == 403
    async with client_for(app, ADMIN_KEY) as admin:
        assert "summarize" in {j.id for j in await admin.list_jobs()}
        dry = await admin.run_job("summarize", dry_run=True)
        assert dry.dry_run and dry.status == "succeeded" and dry.changes.get("diff")
        run = await admin.run_job("summarize")
        assert run.status == "succeeded" and run.counts["logs_consumed"] >= 3
        history = await admin.job_runs(job_id="summarize", limit=5)
        assert [r.id for r in history][:2] == [run.id, dry.id]
        assert (await admin.get_job_run(run.id)).id == run.id
        undone = await admin.rollback_job_run(run.id)
        assert undone.status == "rolled_back" and undone.rolled_back_at is not None
        with pytest.raises(MosaicClientError) as err:
            await admin.rollback_job_run(run.id)
        assert err.value.status == 409
        with pytest.raises(MosaicClientError) as err:
            await admin.run_job("no-such-job")
        assert err.value.status == 404


async def test_federation_methods(app: Any, make_user: UserFactory) -> None:
    name, h = await make_user()
    peer = f"peer-{uuid.uuid4().hex[:8]}"
    async with client_for(app, ADMIN_KEY) as admin:
        added = await admin.add_peer(peer, "https://127.0.0.1:9")
        assert added.name == peer and peer in {p.name for p in await admin.list_peers()}
    try:
        async with client_for(app, key_of(h)) as mm:
            with pytest.raises(MosaicClientError) as err:
                await mm.add_peer("not-mine", "https://127.0.0.1:9")
            assert err.value.status == 403
            grant = await mm.create_grant(peer, f"user:{name}", ["insights"], tags=["work"], expires_in="1d")
            assert grant.active and grant.kinds == ["insights"] and grant.owner == f"user:{name}"
            assert [g.id for g in await mm.list_grants(peer=peer)] == [grant.id]
            revoked = await mm.revoke_grant(grant.id)
            assert not revoked.active and revoked.revoked_at is not None
            assert await mm.federation_audit(peer=peer) == []  # nothing was read through it
            with pytest.raises(MosaicClientError) as err:
                await mm.create_grant(peer, f"user:{name}", ["insights"], expires_in="soon")
            assert err.value.status == 422
    finally:
        async with client_for(app, ADMIN_KEY) as admin:
            await admin.remove_peer(peer)
            assert peer not in {p.name for p in await admin.list_peers()}


async def test_search_modes_federated_flag_and_context(app: Any, make_user: UserFactory) -> None:
    _, h = await make_user()
    async with client_for(app, key_of(h)) as mm:
        theme = await mm.remember("Prefers dark themes in every editor", tags=["ui"])
        await mm.remember("Backups run nightly at two")
        await mm.set_preference("editor", "vim")
        meaning = await mm.search("what colour scheme does she like?", mode="semantic", kinds=["insights"])
        assert meaning.mode == "semantic" and meaning.hits[0].id == theme.id
        words = await mm.search("what colour scheme does she like?", mode="keyword", kinds=["insights"])
        assert words.mode == "keyword" and words.hits == []  # no word in common
        both = await mm.search("dark themes", kinds=["insights"])
        assert both.mode == "hybrid" and both.hits[0].id == theme.id
        # no peer holds a grant for this user: a federated search is the local one, labelled so
        fed = await mm.search("dark themes", kinds=["insights"], federated=True)
        assert fed.federated and fed.peers_failed == [] and fed.hits[0].origin == "local"
        block = await mm.context("editor colours", token_budget=400)
        assert "vim" in block.text and "dark themes" in block.text
