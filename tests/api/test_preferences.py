"""Preferences over REST: put, get, list, delete, history, immutability, isolation, recall."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from embeddings import content_hash
from mosaic_memory.container import AppState
from mosaic_memory.models import Preference
from tests.conftest import UserFactory, auth

TeamFactory = Callable[..., Awaitable[str]]


async def agent_key(
    http: httpx.AsyncClient, admin_headers: dict[str, str], user: str, agent: str = "bot-1"
) -> dict[str, str]:
    r = await http.post("/v1/admin/keys", json={"user": user, "agent_id": agent}, headers=admin_headers)
    assert r.status_code == 201, r.text
    return auth(r.json()["api_key"])


async def put(http: httpx.AsyncClient, h: dict[str, str], key: str, **body: Any) -> httpx.Response:
    return await http.put(f"/v1/preferences/{key}", json=body, headers=h)


async def history(http: httpx.AsyncClient, h: dict[str, str], key: str, **params: Any) -> list[dict[str, Any]]:
    r = await http.get(f"/v1/preferences/{key}/history", params=params, headers=h)
    assert r.status_code == 200, r.text
    changes: list[dict[str, Any]] = r.json()
    return changes


@pytest.mark.parametrize(
    "value",
    ["small PRs, tests first", 42, 2.5, True, False, None, [1, "two", None], {"theme": "dark", "font": {"size": 13}}],
)
async def test_any_json_value_roundtrips(http: httpx.AsyncClient, make_user: UserFactory, value: Any) -> None:
    name, h = await make_user()
    r = await put(http, h, "some_pref", value=value)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["value"] == value and body["created"] is True
    assert body["owner"] == f"user:{name}" and body["scope"] == "" and body["mutable"] is True
    assert body["source"] == "user" and body["embedding_model"]
    got = (await http.get("/v1/preferences/some_pref", headers=h)).json()
    assert got["value"] == value and type(got["value"]) is type(value)


async def test_put_creates_then_replaces(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    first = await put(http, h, "indent", value=4)
    assert first.status_code == 201
    again = await put(http, h, "indent", value=2)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    assert (await http.get("/v1/preferences/indent", headers=h)).json()["value"] == 2
    # true is not 1: a type change is a change
    assert (await put(http, h, "indent", value=True)).json()["value"] is True
    # the same value again changes nothing and records nothing
    before = await history(http, h, "indent")
    assert (await put(http, h, "indent", value=True)).status_code == 200
    assert await history(http, h, "indent") == before
    assert len(before) == 3


async def test_scopes_are_separate(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    assert (await put(http, h, "language", value="en")).status_code == 201
    assert (await put(http, h, "language", value="pt", scope="project:lisbon-site")).status_code == 201
    assert (await put(http, h, "language", value="de", scope="agent:translator")).status_code == 201
    get = await http.get("/v1/preferences/language", headers=h)
    assert get.json()["value"] == "en"
    get = await http.get("/v1/preferences/language", params={"scope": "project:lisbon-site"}, headers=h)
    assert get.json()["value"] == "pt" and get.json()["scope"] == "project:lisbon-site"
    r = await http.get("/v1/preferences/language", params={"scope": "project:elsewhere"}, headers=h)
    assert r.status_code == 404 and r.json()["error"] == "PreferenceNotFound"
    listed = (await http.get("/v1/preferences", headers=h)).json()["items"]
    assert [(p["scope"], p["value"]) for p in listed] == [
        ("", "en"),
        ("agent:translator", "de"),
        ("project:lisbon-site", "pt"),
    ]
    only = (await http.get("/v1/preferences", params={"scope": "agent:translator"}, headers=h)).json()["items"]
    assert [p["value"] for p in only] == ["de"]
    unscoped = (await http.get("/v1/preferences", params={"scope": ""}, headers=h)).json()["items"]
    assert [p["value"] for p in unscoped] == ["en"]
    r = await http.delete("/v1/preferences/language", params={"scope": "agent:translator"}, headers=h)
    assert r.status_code == 204
    assert len((await http.get("/v1/preferences", headers=h)).json()["items"]) == 2


async def test_history_keeps_every_change(
    http: httpx.AsyncClient, admin_headers: dict[str, str], make_user: UserFactory
) -> None:
    name, h = await make_user()
    bot = await agent_key(http, admin_headers, name, "reviewer-bot")
    await put(http, h, "review_depth", value="skim")
    r = await put(http, bot, "review_depth", value={"depth": "thorough", "max_files": 20})
    assert r.status_code == 200 and r.json()["source"] == "agent"
    await put(http, h, "review_depth", value="line by line", source="user")
    assert (await http.delete("/v1/preferences/review_depth", headers=h)).status_code == 204
    assert (await http.get("/v1/preferences/review_depth", headers=h)).status_code == 404

    changes = await history(http, h, "review_depth")
    assert [c["action"] for c in changes] == ["delete", "update", "update", "create"]
    assert [c["old_value"] for c in changes] == [
        "line by line",
        {"depth": "thorough", "max_files": 20},
        "skim",
        None,
    ]
    assert [c["new_value"] for c in changes] == [None, "line by line", {"depth": "thorough", "max_files": 20}, "skim"]
    assert [c["source"] for c in changes] == ["user", "user", "agent", "user"]
    assert changes[2]["changed_by"].startswith(f"user:{name} key:mm_")
    assert changes[2]["changed_by"].endswith("agent:reviewer-bot")
    assert "agent:" not in changes[0]["changed_by"]
    assert len({c["preference_id"] for c in changes}) == 1
    assert [c["changed_at"] for c in changes] == sorted((c["changed_at"] for c in changes), reverse=True)
    assert len(await history(http, h, "review_depth", limit=2)) == 2
    r = await http.get("/v1/preferences/never_set/history", headers=h)
    assert r.status_code == 404


async def test_immutable_refuses_agents_but_not_the_user(
    http: httpx.AsyncClient, admin_headers: dict[str, str], make_user: UserFactory
) -> None:
    name, h = await make_user()
    bot = await agent_key(http, admin_headers, name)
    r = await put(http, h, "commit_style", value="conventional commits", mutable=False)
    assert r.status_code == 201 and r.json()["mutable"] is False
    before = await history(http, h, "commit_style")

    for attempt in (
        put(http, bot, "commit_style", value="anything goes"),
        put(http, bot, "commit_style", value="anything goes", mutable=True),
        http.delete("/v1/preferences/commit_style", headers=bot),
    ):
        r = await attempt
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "ImmutablePreference"
        assert "only the user" in r.json()["detail"]
    # agents may still read it; nothing changed
    got = await http.get("/v1/preferences/commit_style", headers=bot)
    assert got.status_code == 200 and got.json()["value"] == "conventional commits"
    assert await history(http, bot, "commit_style") == before

    # the user may change it; omitting mutable keeps it immutable
    r = await put(http, h, "commit_style", value="gitmoji")
    assert r.status_code == 200 and r.json()["mutable"] is False and r.json()["value"] == "gitmoji"
    assert (await put(http, bot, "commit_style", value="x")).status_code == 409
    # once the user unlocks it, the agent may write (source defaults to agent)
    assert (await put(http, h, "commit_style", value="gitmoji", mutable=True)).json()["mutable"] is True
    r = await put(http, bot, "commit_style", value="short imperative subject")
    assert r.status_code == 200 and r.json()["source"] == "agent"
    # an agent's new preference is its own to change
    assert (await put(http, bot, "agent_note", value="x", mutable=False)).status_code == 201
    assert (await put(http, bot, "agent_note", value="y")).status_code == 409
    assert (await http.delete("/v1/preferences/agent_note", headers=h)).status_code == 204


async def test_list_paginates_in_key_order(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    keys = [f"k{i:02d}" for i in range(9)]
    for key in reversed(keys):
        await put(http, h, key, value=key.upper())
    await put(http, h, "k03", value="scoped", scope="project:p")
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/v1/preferences", params=params, headers=h)).json()
        seen += [(p["key"], p["scope"]) for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted([(k, "") for k in keys] + [("k03", "project:p")])
    pre = (await http.get("/v1/preferences", params={"prefix": "k0"}, headers=h)).json()["items"]
    assert len(pre) == 10
    assert (await http.get("/v1/preferences", params={"prefix": "zz"}, headers=h)).json()["items"] == []


async def test_isolation_between_users(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    a_name, a = await make_user("a")
    _, b = await make_user("b")
    await put(http, a, "bank_pin_hint", value="the cat's birthday")
    assert (await http.get("/v1/preferences/bank_pin_hint", headers=b)).status_code == 404
    r = await http.get("/v1/preferences/bank_pin_hint", params={"owner": f"user:{a_name}"}, headers=b)
    assert r.status_code == 404
    assert (await http.get("/v1/preferences/bank_pin_hint/history", headers=b)).status_code == 404
    r = await http.get("/v1/preferences/bank_pin_hint/history", params={"owner": f"user:{a_name}"}, headers=b)
    assert r.status_code == 404
    assert (await http.delete("/v1/preferences/bank_pin_hint", headers=b)).status_code == 404
    r = await http.delete("/v1/preferences/bank_pin_hint", params={"owner": f"user:{a_name}"}, headers=b)
    assert r.status_code == 404
    assert (await put(http, b, "bank_pin_hint", value="hijack", owner=f"user:{a_name}")).status_code == 404
    assert (await http.get("/v1/preferences", headers=b)).json()["items"] == []
    assert (await http.get("/v1/preferences", params={"owner": f"user:{a_name}"}, headers=b)).status_code == 404
    for mode in ("semantic", "keyword", "hybrid"):
        body = {"query": "bank pin hint cat birthday", "mode": mode, "kinds": ["preferences"]}
        assert (await http.post("/v1/search", json=body, headers=b)).json()["hits"] == [], mode
    # B's own preference of the same name is B's, and A's is untouched
    assert (await put(http, b, "bank_pin_hint", value="mine")).status_code == 201
    assert (await http.get("/v1/preferences/bank_pin_hint", headers=a)).json()["value"] == "the cat's birthday"
    assert len(await history(http, a, "bank_pin_hint")) == 1


async def test_team_preferences(http: httpx.AsyncClient, make_user: UserFactory, make_team: TeamFactory) -> None:
    alice, a = await make_user("alice")
    bob, b = await make_user("bob")
    _, c = await make_user("carol")
    team = await make_team(alice, bob)
    r = await put(http, a, "deploy_window", value="Tuesdays 10-12 UTC", owner=f"team:{team}")
    assert r.status_code == 201 and r.json()["owner"] == f"team:{team}"
    # members read it, named or by fallback; the user's own value comes first
    assert (await http.get("/v1/preferences/deploy_window", headers=b)).json()["owner"] == f"team:{team}"
    r = await http.get("/v1/preferences/deploy_window", params={"owner": f"team:{team}"}, headers=b)
    assert r.status_code == 200 and r.json()["value"] == "Tuesdays 10-12 UTC"
    await put(http, b, "deploy_window", value="never on Fridays")
    assert (await http.get("/v1/preferences/deploy_window", headers=b)).json()["value"] == "never on Fridays"
    assert {p["owner"] for p in (await http.get("/v1/preferences", headers=b)).json()["items"]} == {
        f"team:{team}",
        f"user:{bob}",
    }
    r = await put(http, b, "deploy_window", value="Wednesdays", owner=f"team:{team}")
    assert r.status_code == 200
    changes = await history(http, a, "deploy_window", owner=f"team:{team}")
    assert [x["changed_by"].split()[0] for x in changes] == [f"user:{bob}", f"user:{alice}"]
    hits = (
        await http.post("/v1/search", json={"query": "when can we deploy?", "kinds": ["preferences"]}, headers=a)
    ).json()["hits"]
    assert hits and hits[0]["owner"] == f"team:{team}"
    # a non-member sees nothing and can change nothing
    for r in (
        await http.get("/v1/preferences/deploy_window", headers=c),
        await http.get("/v1/preferences/deploy_window", params={"owner": f"team:{team}"}, headers=c),
        await http.get("/v1/preferences/deploy_window/history", params={"owner": f"team:{team}"}, headers=c),
        await http.delete("/v1/preferences/deploy_window", params={"owner": f"team:{team}"}, headers=c),
        await put(http, c, "deploy_window", value="whenever", owner=f"team:{team}"),
        await http.get("/v1/preferences", params={"owner": f"team:{team}"}, headers=c),
    ):
        assert r.status_code == 404, r.text
    assert (await http.get("/v1/preferences", headers=c)).json()["items"] == []
    hits = (
        await http.post("/v1/search", json={"query": "when can we deploy?", "kinds": ["preferences"]}, headers=c)
    ).json()["hits"]
    assert hits == []
    r = await http.get("/v1/preferences/deploy_window", params={"owner": f"team:{team}"}, headers=a)
    assert r.json()["value"] == "Wednesdays"


BASELINE = "baseline_pref"


@pytest.mark.parametrize(
    ("key", "body", "status"),
    [
        ("editor_theme", {}, 422),
        ("editor_theme", {"value": "dark", "mutable": "no"}, 422),
        ("editor_theme", {"value": "dark", "mutable": 0}, 422),
        ("editor_theme", {"value": "dark", "scope": "galaxy:far"}, 422),
        ("editor_theme", {"value": "dark", "scope": "project:"}, 422),
        ("editor_theme", {"value": "dark", "scope": 7}, 422),
        ("editor_theme", {"value": "dark", "source": "robot"}, 422),
        ("editor_theme", {"value": "dark", "unknown_field": 1}, 422),
        ("editor_theme", {"value": "x" * (32 * 1024 + 1)}, 422),
        ("editor_theme", {"value": {"nested": ["y" * 20_000, "z" * 20_000]}}, 422),
        ("editor_theme", {"value": "nul \u0000 inside"}, 422),
        ("editor_theme", {"value": "dark", "owner": "team:not-mine"}, 404),
        ("editor_theme", {"value": "dark", "owner": "nonsense"}, 422),
        ("bad%20key", {"value": "dark"}, 422),
        ("k" * 257, {"value": "dark"}, 422),
        ("-leading-dash", {"value": "dark"}, 422),
        (BASELINE, {"value": "changed", "mutable": "false"}, 422),
        (BASELINE, {"value": "x" * (32 * 1024 + 1)}, 422),
    ],
)
async def test_bad_put_changes_nothing(
    http: httpx.AsyncClient, make_user: UserFactory, key: str, body: dict[str, Any], status: int
) -> None:
    _, h = await make_user()
    await put(http, h, BASELINE, value="original")
    r = await http.put(f"/v1/preferences/{key}", json=body, headers=h)
    assert r.status_code == status, r.text
    err = r.json()
    assert set(err) >= {"error", "detail"} and err["detail"]
    items = (await http.get("/v1/preferences", headers=h)).json()["items"]
    assert [(p["key"], p["value"]) for p in items] == [(BASELINE, "original")]
    assert len(await history(http, h, BASELINE)) == 1


async def test_bad_reads_and_transport_errors(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    await put(http, h, BASELINE, value="original")
    bad: list[tuple[str, str, dict[str, str | int]]] = [
        ("GET", f"/v1/preferences/{BASELINE}", {"scope": "everywhere"}),
        ("DELETE", f"/v1/preferences/{BASELINE}", {"scope": "agent:"}),
        ("GET", f"/v1/preferences/{BASELINE}/history", {"limit": 0}),
        ("GET", "/v1/preferences", {"limit": 501}),
        ("GET", "/v1/preferences", {"cursor": "garbage!!"}),
        ("GET", "/v1/preferences", {"scope": "nope"}),
        ("GET", "/v1/preferences/has%20space", {}),
    ]
    for method, path, params in bad:
        r = await http.request(method, path, params=params, headers=h)
        assert r.status_code == 422, (method, path, params, r.text)
        assert r.json()["error"] == "InvalidInput"
    r = await http.put(
        f"/v1/preferences/{BASELINE}", content=b'{"value": "half', headers={**h, "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"] == "MalformedJSON"
    r = await http.put(
        f"/v1/preferences/{BASELINE}", content=b'{"value": NaN}', headers={**h, "Content-Type": "application/json"}
    )
    assert 400 <= r.status_code < 500, r.text
    r = await http.put(f"/v1/preferences/{BASELINE}", content=b"value=x", headers={**h, "Content-Type": "text/plain"})
    assert r.status_code == 415
    assert (await http.delete("/v1/preferences/not_there", headers=h)).status_code == 404
    assert (await http.get("/v1/preferences", headers={})).status_code == 401
    assert (await http.get(f"/v1/preferences/{BASELINE}", headers=h)).json()["value"] == "original"
    assert len(await history(http, h, BASELINE)) == 1


async def test_read_only_key_cannot_write(
    http: httpx.AsyncClient, admin_headers: dict[str, str], make_user: UserFactory
) -> None:
    name, h = await make_user()
    await put(http, h, BASELINE, value="original")
    key = (await http.post("/v1/admin/keys", json={"user": name, "scopes": ["read"]}, headers=admin_headers)).json()
    ro = auth(key["api_key"])
    assert (await put(http, ro, BASELINE, value="x")).status_code == 403
    assert (await http.delete(f"/v1/preferences/{BASELINE}", headers=ro)).status_code == 403
    assert (await http.get(f"/v1/preferences/{BASELINE}", headers=ro)).json()["value"] == "original"


UNRELATED = {
    "editor_theme": "solarized dark",
    "timezone": "Europe/Lisbon",
    "meeting_hours": {"start": "10:00", "end": "16:00"},
    "coffee_order": "flat white, oat milk",
    "preferred_language": "Portuguese",
    "notification_channel": "email, never SMS",
    "travel_seat": "aisle",
    "units": "metric",
}


async def test_semantic_recall_finds_the_preference(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    for key, value in UNRELATED.items():
        assert (await put(http, h, key, value=value)).status_code == 201
    target = (await put(http, h, "code_review_style", value="small PRs, tests first")).json()
    for mode in ("semantic", "hybrid"):
        body: dict[str, Any] = {
            "query": "how does the user like their code reviewed?",
            "kinds": ["preferences"],
            "mode": mode,
        }
        hits = (await http.post("/v1/search", json=body, headers=h)).json()["hits"]
        assert hits[0]["id"] == target["id"], (mode, [x["content"] for x in hits[:3]])
        assert hits[0]["kind"] == "preferences"
        assert hits[0]["content"] == "code_review_style: small PRs, tests first"
    body = {"query": "what time zone am I in", "kinds": ["preferences"], "mode": "semantic", "k": 1}
    assert (await http.post("/v1/search", json=body, headers=h)).json()["hits"][0]["content"] == (
        "timezone: Europe/Lisbon"
    )


async def test_embedded_text_is_what_search_shows(
    http: httpx.AsyncClient, state: AppState, make_user: UserFactory
) -> None:
    """The stored content hash is the hash of the hit's content, for every kind of JSON value."""
    _, h = await make_user()
    values = {"s": "plain words", "n": 3.25, "b": False, "z": None, "l": [1, "a"], "o": {"zeta": 1, "a": [True]}}
    ids = {k: (await put(http, h, f"pref_{k}", value=v)).json()["id"] for k, v in values.items()}
    hits = (
        await http.post(
            "/v1/search", json={"query": "pref", "kinds": ["preferences"], "mode": "semantic", "k": 20}, headers=h
        )
    ).json()["hits"]
    shown = {x["id"]: x["content"] for x in hits}
    assert shown[ids["s"]] == "pref_s: plain words"
    assert shown[ids["b"]] == "pref_b: false"
    async with state.sessionmaker() as session:
        rows = (
            await session.scalars(select(Preference).where(Preference.id.in_([uuid.UUID(i) for i in ids.values()])))
        ).all()
    assert len(rows) == len(values)
    for row in rows:
        assert row.content_hash == content_hash(shown[str(row.id)]), shown[str(row.id)]


async def test_concurrent_creates_make_one_preference(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user()
    # a first request records the key's use, which would otherwise serialize the racers on it
    assert (await http.get("/v1/me", headers=h)).status_code == 200
    results = await asyncio.gather(*(put(http, h, "race", value=f"v{i}") for i in range(5)))
    assert sorted(r.status_code for r in results) == [200, 200, 200, 200, 201], [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    items = (await http.get("/v1/preferences", headers=h)).json()["items"]
    assert len(items) == 1 and items[0]["value"] in {f"v{i}" for i in range(5)}
    changes = await history(http, h, "race")
    assert sorted(c["action"] for c in changes) == ["create", "update", "update", "update", "update"]
    assert changes[0]["new_value"] == items[0]["value"]
