"""Hits the words cannot tell apart come newest first, the same in every store (issue 9: with
random row ids their order was a coin toss, so two stores filled alike ranked them differently).
Real model, real database."""

from __future__ import annotations

from itertools import pairwise

import httpx

from mosaic_memory.models import new_id
from tests.conftest import UserFactory

# The same coverage and the same ts_rank_cd for "alpha" (one query word, at the same position).
TIED = (
    "Ticket alpha: the deploy window moved to Thursday",
    "Ticket alpha: the cat is called Miso",
    "Ticket alpha: she prefers PostgreSQL for new services",
    "Ticket alpha: the office wifi was replaced in March",
)


async def _keyword(http: httpx.AsyncClient, h: dict[str, str]) -> list[str]:
    r = await http.post("/v1/search", json={"query": "alpha", "mode": "keyword", "kinds": ["insights"]}, headers=h)
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert len({x["score"] for x in hits}) == 1, hits  # tied, or this test shows nothing
    return [x["content"] for x in hits]


async def test_tied_keyword_hits_come_newest_first(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    for content in TIED:
        r = await http.post("/v1/insights", json={"content": content}, headers=h)
        assert r.status_code == 201, r.text
    assert await _keyword(http, h) == list(reversed(TIED))


async def test_tied_rows_of_one_batch_come_last_written_first(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    r = await http.post("/v1/insights/batch", json={"items": [{"content": c} for c in TIED]}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["created"] == len(TIED)
    # one batch, one created_at: the time-ordered ids keep the order they were written in
    assert await _keyword(http, h) == list(reversed(TIED))


def test_row_ids_are_time_ordered_uuids() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert all(i.version == 7 for i in ids)
    assert all(a < b for a, b in pairwise(ids))
