"""Insights over REST: create, dedup, get, list, patch, delete, batch."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import UserFactory


async def test_create_get_roundtrip(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    name, h = await make_user()
    r = await http.post(
        "/v1/insights",
        json={
            "content": "Prefers tabs over spaces",
            "tags": ["code", "style"],
            "category": "preference",
            "importance": 0.8,
            "metadata": {"lang": "python"},
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["owner"] == f"user:{name}"
    assert body["tags"] == ["code", "style"]
    assert body["embedding_model"]
    got = await http.get(f"/v1/insights/{body['id']}", headers=h)
    assert got.status_code == 200
    assert got.json()["content"] == "Prefers tabs over spaces"
    assert got.json()["metadata"] == {"lang": "python"}


async def test_same_content_stored_once(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    first = await http.post("/v1/insights", json={"content": "Deploys happen on Tuesdays"}, headers=h)
    again = await http.post("/v1/insights", json={"content": "Deploys happen on Tuesdays"}, headers=h)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["deduplicated"] is True
    page = (await http.get("/v1/insights", headers=h)).json()
    assert len(page["items"]) == 1


async def test_batch_embeds_and_dedups_within_batch(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    items = [{"content": f"Fact number {i} about the migration to PostgreSQL {i * 7}"} for i in range(40)]
    items.append({"content": items[0]["content"]})
    r = await http.post("/v1/insights/batch", json={"items": items}, headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert len(body["items"]) == 41
    assert body["items"][40]["id"] == body["items"][0]["id"]
    ids = {i["id"] for i in body["items"]}
    # near-duplicates may merge, but every item answers with a stored id
    for insight_id in list(ids)[:5]:
        assert (await http.get(f"/v1/insights/{insight_id}", headers=h)).status_code == 200


async def test_batch_merges_each_near_duplicate_into_its_stored_insight(
    http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    # Several vectors against a small scope: the batched exact lookup (one read of the scope).
    _, h = await make_user()
    stored = ["The user prefers dark themes in every editor", "Deploys happen on Tuesdays after the standup"]
    filler = [{"content": f"Notes on {t}"} for t in ("sourdough", "kayaking", "jazz chords", "tax returns")]
    first = await http.post("/v1/insights/batch", json={"items": [{"content": c} for c in stored] + filler}, headers=h)
    ids = [i["id"] for i in first.json()["items"][:2]]
    items = [
        {"content": stored[1] + ".", "tags": ["ops"]},
        {"content": "Owns a green kayak"},
        {"content": stored[0] + "."},
    ]
    r = await http.post("/v1/insights/batch", json={"items": items}, headers=h)
    assert r.status_code == 201, r.text
    out = r.json()["items"]
    assert [x["merged"] for x in out] == [True, False, True]
    assert [out[0]["id"], out[2]["id"]] == [ids[1], ids[0]]
    assert out[0]["tags"] == ["ops"]


async def test_batch_limit(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    r = await http.post("/v1/insights/batch", json={"items": [{"content": f"x{i}"} for i in range(1001)]}, headers=h)
    assert r.status_code == 422
    assert r.json()["error"] == "InvalidInput"
    assert (await http.get("/v1/insights", headers=h)).json()["items"] == []


async def test_cursor_pagination_visits_every_row_once(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    topics = ["gardening", "chess openings", "rust lifetimes", "sourdough", "kayaking", "tax returns", "jazz chords"]
    items = [{"content": f"Notes on {t}, part {i}"} for t in topics for i in range(3)]
    created = (await http.post("/v1/insights/batch", json={"items": items}, headers=h)).json()
    stored = {i["id"] for i in created["items"]}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/v1/insights", params=params, headers=h)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    assert set(seen) == stored


async def test_patch_reembeds_and_delete(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    created = (await http.post("/v1/insights", json={"content": "Likes green tea"}, headers=h)).json()
    r = await http.patch(
        f"/v1/insights/{created['id']}", json={"content": "Likes strong black coffee", "pinned": True}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["pinned"] is True
    hits = (await http.post("/v1/search", json={"query": "coffee", "mode": "semantic", "k": 1}, headers=h)).json()
    assert hits["hits"][0]["id"] == created["id"]
    assert hits["hits"][0]["content"] == "Likes strong black coffee"
    assert (await http.delete(f"/v1/insights/{created['id']}", headers=h)).status_code == 204
    assert (await http.get(f"/v1/insights/{created['id']}", headers=h)).status_code == 404
    assert (await http.delete(f"/v1/insights/{created['id']}", headers=h)).status_code == 404


async def test_supersede_keeps_old_readable(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    old = (await http.post("/v1/insights", json={"content": "Lives in Lisbon"}, headers=h)).json()
    new = (
        await http.post("/v1/insights", json={"content": "Moved to Porto in 2026", "supersedes": old["id"]}, headers=h)
    ).json()
    again = (await http.get(f"/v1/insights/{old['id']}", headers=h)).json()
    assert again["superseded_by"] == new["id"]
    assert again["valid_to"] is not None
    hits = (await http.post("/v1/search", json={"query": "Lisbon", "k": 10}, headers=h)).json()["hits"]
    assert old["id"] not in [x["id"] for x in hits]
    hits = (
        await http.post("/v1/search", json={"query": "Lisbon", "k": 10, "include_history": True}, headers=h)
    ).json()["hits"]
    assert old["id"] in [x["id"] for x in hits]


async def test_unknown_id_is_404(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    r = await http.get(f"/v1/insights/{uuid.uuid4()}", headers=h)
    assert r.status_code == 404
    assert r.json()["error"] == "InsightNotFound"
