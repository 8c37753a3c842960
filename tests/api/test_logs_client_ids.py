"""``POST /v1/logs`` with client-chosen ids: a re-sent event is stored once (capture relies on it)."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from mosaic_memory.container import AppState
from mosaic_memory.logs.schemas import LogBatchIn
from tests.api.test_logs import all_logs, ev, post_logs, principal_of
from tests.conftest import UserFactory


async def test_a_known_id_is_a_duplicate_and_a_batch_can_be_sent_again(
    http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, alice = await make_user("alice")
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    batch = [ev("ran the migration", id=first), ev("no id: always new"), ev("checked the logs", id=second)]

    out = await post_logs(http, alice, batch)
    assert out["count"] == 3 and out["duplicates"] == 0
    assert out["ids"][0] == first and out["ids"][2] == second

    again = await post_logs(http, alice, batch)
    assert again["count"] == 1 and again["duplicates"] == 2
    assert again["ids"][0] == first and again["ids"][2] == second and again["ids"][1] != out["ids"][1]
    contents = [log["content"] for log in await all_logs(http, alice, session_id="s1")]
    assert sorted(contents) == ["checked the logs", "no id: always new", "no id: always new", "ran the migration"]

    # The same id twice in one batch: stored once.
    third = str(uuid.uuid4())
    twice = await post_logs(http, alice, [ev("one event", "s2", id=third), ev("one event", "s2", id=third)])
    assert (twice["count"], twice["duplicates"], twice["ids"]) == (1, 1, [third, third])


async def test_ids_are_per_owner_and_an_id_with_other_content_is_refused(
    http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, alice = await make_user("alice")
    _, bob = await make_user("bob")
    shared = str(uuid.uuid4())
    await post_logs(http, alice, [ev("alice's event", id=shared)])
    assert (await post_logs(http, bob, [ev("bob's event", id=shared)]))["count"] == 1

    r = await http.post("/v1/logs", json={"events": [ev("something else", id=shared)]}, headers=alice)
    assert r.status_code == 409 and r.json()["error"] == "Conflict" and shared in r.json()["detail"]
    assert [log["content"] for log in await all_logs(http, alice, session_id="s1")] == ["alice's event"]
    r = await http.post("/v1/logs", json={"events": [ev("x", id="not-a-uuid")]}, headers=alice)
    assert r.status_code == 422


async def test_two_calls_racing_with_one_new_id_store_it_once(state: AppState, make_user: UserFactory) -> None:
    _, h = await make_user("racer")
    principal = await principal_of(state, h)
    batch = LogBatchIn.model_validate({"events": [ev("stored once", "race", id=str(uuid.uuid4()))]})
    async with state.sessionmaker() as first, state.sessionmaker() as second:
        won = await state.logs.append(first, principal, batch)  # inserted, not yet committed
        # The second call's check cannot see the uncommitted row; its insert waits for it.
        racing = asyncio.create_task(state.logs.append(second, principal, batch))
        await asyncio.sleep(0.5)
        assert not racing.done()
        await first.commit()
        lost = await racing
        await second.commit()
    assert (won.count, won.duplicates) == (1, 0)
    assert (lost.count, lost.duplicates, lost.ids) == (0, 1, won.ids)
