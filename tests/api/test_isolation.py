"""Cross-tenant isolation probes (issue 12, item 3): every secured REST operation of the served
OpenAPI document, every MCP tool, the CLI commands that take ids and the ``/ui`` pages that take
ids, each tried by principals of other tenants with real ids of a victim's rows and guessed ids.

One victim (a user with rows of every owner-scoped kind, personal and in a team) is seeded per
module; every row carries a distinctive canary. A *leak* is a response that holds a canary or a
victim id it was not given, a 2xx that echoes a victim id it was given, or any change of a victim
row (checked by comparing the victim's own view before and after). Figures: docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from mosaic_memory.cli.main import app as cli
from mosaic_memory.container import AppState
from mosaic_memory.models import ApiKey
from mosaic_memory.models.base import utc_now
from mosaic_memory.models.oauth import OAuthClient, OAuthToken
from tests.api.test_auth_matrix import api_routes, protected_operations
from tests.conftest import ADMIN_KEY as ADMIN
from tests.conftest import auth
from tests.mcp.conftest import http_client
from tests.web.test_pages import token_of

GUESSES = 3


@dataclass
class Row:
    kind: str
    id: str  # the id (a preference: its key)
    owner: str  # "user:NAME" or "team:NAME"
    canary: str  # the text only this row holds


@dataclass
class Principal:
    label: str
    key: str
    forbidden: dict[str, str] = field(default_factory=dict)  # token -> what it is
    own: str = ""  # an owner whose rows this principal may rightly reach (a team it belongs to)


@dataclass
class World:
    victim_key: str
    victim_ref: str
    team_ref: str
    peer: str
    rows: list[Row]
    principals: list[Principal]

    def sources(
        self, who: Principal, *, kind: str | None = None, owners: bool = True, guesses: int = GUESSES
    ) -> Iterator[tuple[str, str, str, str]]:
        """(label, id, owner reference, text to search for): each real row (of ``kind``) and each
        owner not the principal's own, then guessed ids."""
        for row in self.rows:
            if row.owner != who.own and kind in (None, row.kind):
                # Searched for by its words, not its unique token: a hit would bring that in unasked.
                words = row.canary.rsplit(" ", 1)[0] if " " in row.canary else "zqcanary"
                yield f"{row.kind}@{row.owner.split(':')[0]}", row.id, row.owner, words
        for ref in (self.victim_ref, self.team_ref):
            if owners and ref != who.own:
                yield f"owner-{ref.split(':')[0]}", str(uuid.uuid4()), ref, "canary"
        for n in range(guesses):
            yield f"guess-{n}", str(uuid.uuid4()), "user:no-such-owner", "canary"


def canary(kind: str, owner: str) -> str:
    return f"zqcanary {kind} {owner.split(':')[0]} {uuid.uuid4().hex}"


async def _post(http: httpx.AsyncClient, path: str, body: Any, key: str) -> Any:
    r = await http.post(path, json=body, headers=auth(key))
    assert r.status_code in (200, 201), (path, r.text)
    return r.json()


@pytest.fixture(scope="module")
async def world(http: httpx.AsyncClient, admin_headers: dict[str, str], state: AppState) -> AsyncIterator[World]:
    tag = uuid.uuid4().hex[:8]
    keys: dict[str, str] = {}
    for who in ("victim", "member", "outsider"):
        keys[who] = (await _post(http, "/v1/admin/users", {"name": f"iso-{who}-{tag}"}, ADMIN))["api_key"]
    victim, member = f"iso-victim-{tag}", f"iso-member-{tag}"
    team = (await _post(http, "/v1/admin/teams", {"name": f"iso-team-{tag}", "members": [victim, member]}, ADMIN))[
        "name"
    ]
    agent = await _post(http, "/v1/admin/keys", {"user": f"iso-outsider-{tag}", "agent_id": f"bot-{tag}"}, ADMIN)
    peer = f"iso-peer-{tag}"
    await _post(http, "/v1/federation/peers", {"name": peer, "url": "https://127.0.0.1:9"}, ADMIN)
    v = keys["victim"]
    rows: list[Row] = []
    for ref in (f"user:{victim}", f"team:{team}"):
        c = canary("insight", ref)
        rows.append(Row("insight", (await _post(http, "/v1/insights", {"content": c, "owner": ref}, v))["id"], ref, c))
        c = canary("skill", ref)
        body: dict[str, Any] = {
            "name": f"iso-skill-{uuid.uuid4().hex[:6]}",
            "description": c,
            "instructions": c,
            "owner": ref,
        }
        rows.append(Row("skill", (await _post(http, "/v1/skills", body, v))["id"], ref, c))
        c = canary("log", ref)
        body = {"events": [{"session_id": f"iso-session-{uuid.uuid4().hex[:6]}", "content": c}], "owner": ref}
        rows.append(Row("log", (await _post(http, "/v1/logs", body, v))["ids"][0], ref, c))
        c = canary("preference", ref)
        pkey = f"iso-pref-{uuid.uuid4().hex[:8]}"
        r = await http.put(f"/v1/preferences/{pkey}", json={"value": c, "owner": ref}, headers=auth(v))
        assert r.status_code in (200, 201), r.text
        rows.append(Row("preference", pkey, ref, c))
        granter = v if ref.startswith("user:") else ADMIN  # only an admin grants a team's memory
        body = {"peer": peer, "owner": ref, "kinds": ["insights"]}
        grant = await _post(http, "/v1/federation/grants", body, granter)
        rows.append(Row("federation-grant", grant["id"], ref, grant["id"]))
    rows.append(await _oauth_grant(state, v, f"user:{victim}"))
    outsider = Principal("outsider", keys["outsider"])
    outsider_agent = Principal("outsider-agent-key", agent["api_key"])
    team_member = Principal("team-member", keys["member"], own=f"team:{team}")  # the team's rows are its own
    for row in rows:
        for p in (outsider, outsider_agent, team_member):
            if p is not team_member or row.owner.startswith("user:"):
                if row.kind != "preference":  # a key is a name anyone may use for their own preference
                    p.forbidden[row.id] = f"{row.kind} id ({row.owner})"
                p.forbidden[row.canary.split()[-1]] = f"{row.kind} canary ({row.owner})"
    yield World(v, f"user:{victim}", f"team:{team}", peer, rows, [outsider, outsider_agent, team_member])
    # The peer (and the grants it held) must not reach the rest of the session's tests.
    assert (await http.delete(f"/v1/federation/peers/{peer}", headers=admin_headers)).status_code == 204


async def _oauth_grant(state: AppState, key: str, owner: str) -> Row:
    """An OAuth grant of the victim's, stored as the token endpoint stores one (the flow itself:
    tests/oauth)."""
    async with state.sessionmaker() as session, session.begin():
        api_key = (await session.scalars(select(ApiKey).where(ApiKey.prefix == key[:11]))).one()
        client = OAuthClient(client_id=f"iso-{uuid.uuid4().hex}", client_name=canary("oauth", owner))
        client.redirect_uris = ["https://client.example/cb"]
        session.add(client)
        await session.flush()
        grant = uuid.uuid4()
        session.add(
            OAuthToken(
                grant_id=grant,
                client_id=client.client_id,
                user_id=api_key.user_id,
                api_key_id=api_key.id,
                access_hash=uuid.uuid4().hex * 2,
                scopes=["read"],
                resource="https://mosaic.test/mcp",
                access_expires_at=utc_now() + timedelta(hours=1),
            )
        )
    return Row("oauth-grant", str(grant), owner, client.client_name)


class Ledger:
    """Counts probes and records leaks."""

    def __init__(self) -> None:
        self.probes: dict[str, int] = {}
        self.leaks: list[tuple[Any, ...]] = []

    def check(self, surface: str, who: Principal, what: str, supplied: str, ok: bool, text: str) -> None:
        self.probes[surface] = self.probes.get(surface, 0) + 1
        for token, label in who.forbidden.items():
            if token in text and (ok or token not in supplied):
                self.leaks.append((surface, who.label, what, label, text[:300]))


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger()


async def snapshot(http: httpx.AsyncClient, world: World) -> list[str]:
    """The victim's own view of each of its rows (and grant lists): any change by a probe shows."""
    seen = []
    h = auth(world.victim_key)
    paths = {"insight": "/v1/insights/{}", "skill": "/v1/skills/{}", "log": "/v1/logs/{}"}
    for row in world.rows:
        if row.kind in paths:
            r = await http.get(paths[row.kind].format(row.id), headers=h)
        elif row.kind == "preference":
            r = await http.get(f"/v1/preferences/{row.id}", params={"owner": row.owner}, headers=h)
        else:
            continue
        assert r.status_code == 200, r.text
        seen.append(re.sub(r'"last_accessed_at":"[^"]*"|"access_count":\d+', "", r.text))
    seen.append((await http.get("/v1/federation/grants", headers=h)).text)
    seen.append((await http.get("/v1/oauth/grants", headers=h)).text)
    return seen


def fill_path(path: str, ident: str, owner: str, world: World) -> str:
    names = {"team": owner.removeprefix("team:"), "name": world.peer, "prefix": world.victim_key[:11]}
    return re.sub(r"\{(\w+)\}", lambda m: names.get(m.group(1), ident), path)


def rest_request(method: str, path: str, ident: str, owner: str, text: str, world: World) -> dict[str, Any]:
    """Query and body for one probe: the source's owner wherever an owner goes, its id wherever an
    id goes, its canary wherever a query goes (a search must not find it)."""
    params = {"owner": owner, "user": owner.split(":")[1], "as": owner, "peer": world.peer}
    row_id = ident if re.fullmatch(r"[0-9a-f-]{36}", ident) else None
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/v1/insights"): {"content": "probe", "owner": owner, "supersedes": row_id},
        ("POST", "/v1/insights/batch"): {"items": [{"content": "probe", "owner": owner, "supersedes": row_id}]},
        ("PATCH", "/v1/insights/{insight_id}"): {"content": "hijacked"},
        ("POST", "/v1/search"): {"query": text, "owner": owner},
        ("POST", "/v1/logs"): {"events": [{"session_id": "probe", "content": "probe", "id": row_id}], "owner": owner},
        ("PUT", "/v1/preferences/{key}"): {"value": "hijacked", "owner": owner},
        ("POST", "/v1/skills"): {"name": f"probe-{uuid.uuid4().hex[:6]}", "description": "probe", "owner": owner},
        ("PATCH", "/v1/skills/{skill_id}"): {"description": "hijacked"},
        ("POST", "/v1/federation/grants"): {"peer": world.peer, "owner": owner, "kinds": ["insights"]},
        ("POST", "/v1/context"): {"query": text},
        ("POST", "/v1/admin/keys"): {"user": owner.split(":")[1]},
        ("POST", "/v1/admin/teams/{team}/members"): {"members": ["iso-intruder"]},
    }
    body = bodies.get((method, path), {} if method in ("POST", "PUT", "PATCH") else None)
    return {"params": params, "json": body}


async def test_rest_probes(app: Any, http: httpx.AsyncClient, world: World, ledger: Ledger) -> None:
    ops = protected_operations(app)
    assert len(ops) >= 45
    before = await snapshot(http, world)
    for who in world.principals:
        for method, path, _ in ops:
            for label, ident, owner, text in world.sources(who):
                url = fill_path(path, ident, owner, world)
                extra = rest_request(method, path, ident, owner, text, world)
                r = await http.request(method, url, headers=auth(who.key), **extra)
                assert r.status_code < 500, (method, url, r.text)
                ledger.check("rest", who, f"{method} {url} [{label}]", f"{url} {extra}", r.is_success, r.text)
    assert await snapshot(http, world) == before, "a probe changed one of the victim's rows"
    sources = [len(list(world.sources(who))) for who in world.principals]
    print(f"rest: {len(ops)} operations x {sources} id sources (per principal) = {ledger.probes['rest']} probes")
    assert ledger.leaks == []


MCP_TOOLS = {"remember", "get_context", "recall", "forget", "get_preferences", "set_preference"}
MCP_TOOLS |= {"log_events", "search_logs", "find_skill"}


def mcp_calls(label: str, ident: str, owner: str, text: str) -> list[tuple[str, dict[str, Any]]]:
    """The calls a source is fed to: a row's canary to every search, its id to the tools that take
    an id of its kind; an owner to the writes; a guessed id to every tool that takes an id. (A
    preference key other than the victim's would only name a preference of the caller's own.)"""
    calls: list[tuple[str, dict[str, Any]]] = []
    kind = label.split("@")[0]
    if "@" in label:
        calls += [("get_context", {"query": text}), ("recall", {"query": text, "k": 20})]
        calls += [("search_logs", {"query": text, "k": 20}), ("find_skill", {"task": text, "k": 20})]
    if label.startswith("owner-"):
        calls.append(("remember", {"content": "probe", "owner": owner}))
    if kind in ("insight", "guess-0"):
        calls.append(("forget", {"id": ident}))
    if kind in ("preference", "guess-0"):
        calls += [("get_preferences", {"key": ident}), ("set_preference", {"key": ident, "value": "hijacked"})]
    if kind in ("log", "guess-0"):
        calls.append(("log_events", {"events": [{"session_id": "probe", "content": "probe", "id": ident}]}))
    return calls


async def test_mcp_probes(live_url: str, http: httpx.AsyncClient, world: World, ledger: Ledger) -> None:
    before = await snapshot(http, world)
    for who in world.principals:
        async with http_client(live_url, who.key) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == MCP_TOOLS, "a tool is not probed"
            for label, ident, owner, text in world.sources(who, guesses=1):
                calls = mcp_calls(label, ident, owner, text)
                results = await asyncio.gather(*(client.call_tool(name, args) for name, args in calls))
                for (name, args), result in zip(calls, results, strict=True):
                    out = " ".join(getattr(b, "text", "") for b in result.content) + str(result.structured_content)
                    ledger.check("mcp", who, f"{name} [{label}]", str(args), not result.is_error, out)
    assert await snapshot(http, world) == before, "a tool call changed one of the victim's rows"
    assert ledger.leaks == []


CLI_KINDS = {"insights": "insight", "skills": "skill", "prefs": "preference"}
CLI_COMMANDS = [
    ("insights", "get"),
    ("insights", "delete"),
    ("insights", "sources"),
    ("insights", "update", "--content", "hijacked"),
    ("skills", "get"),
    ("skills", "delete"),
    ("skills", "update", "--description", "hijacked"),
    ("prefs", "get"),
    ("prefs", "delete"),
    ("prefs", "history"),
]


def cli_probes(url: str, world: World, ledger: Ledger) -> None:
    runner = CliRunner()
    for who in world.principals:
        env = {"MOSAIC_URL": url, "MOSAIC_API_KEY": who.key, "MOSAIC_CONFIG_FILE": "", "COLUMNS": "200"}
        for group, command, *rest in CLI_COMMANDS:
            for label, ident, owner, _ in world.sources(who, kind=CLI_KINDS[group], owners=False, guesses=1):
                args = [group, command, ident, *rest]
                if group == "prefs":
                    args += ["--owner", owner]
                result = runner.invoke(cli, args, env=env)
                ok = result.exit_code == 0
                ledger.check("cli", who, f"{' '.join(args)} [{label}]", " ".join(args), ok, result.output)


async def test_cli_probes(cli_url: str, http: httpx.AsyncClient, world: World, ledger: Ledger) -> None:
    before = await snapshot(http, world)
    await asyncio.to_thread(cli_probes, cli_url, world, ledger)
    assert await snapshot(http, world) == before, "a CLI command changed one of the victim's rows"
    assert ledger.leaks == []


def ui_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every /ui page that takes an id: in its path, or as a parameter."""
    by_parameter = ("/ui/preferences/item", "/ui/preferences/delete", "/ui/search", "/ui/search/delete")
    return [
        (method, route.path)
        for route in api_routes(app.routes)
        if route.path.startswith("/ui/") and ("{" in route.path or route.path in by_parameter)
        for method in sorted(route.methods or ())
    ]


async def test_web_probes(app: Any, http: httpx.AsyncClient, world: World, ledger: Ledger) -> None:
    routes = ui_routes(app)
    assert len(routes) >= 10, routes
    before = await snapshot(http, world)
    for who in world.principals:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mosaic.test", timeout=60) as browser:
            page = await browser.get("/ui/signin")
            form = {"csrf_token": token_of(page.text), "api_key": who.key, "next": "/ui/search"}
            assert (await browser.post("/ui/signin", data=form)).status_code == 303
            csrf = token_of((await browser.get("/ui/search")).text)
            for label, ident, owner, text in world.sources(who):
                for method, path in routes:
                    if path.startswith("/ui/search") and "@" not in label:
                        continue
                    url = fill_path(path, ident, owner, world)
                    data: dict[str, Any] = {"csrf_token": csrf, "key": ident, "owner": owner, "scope": ""}
                    data |= {"content": "hijacked", "description": "hijacked"}
                    data["item"] = [f"insights:{ident}", f"skills:{ident}"]
                    # The search pages take words (and echo their query string back in their links).
                    params = {"q": text} if path.startswith("/ui/search") else {"key": ident, "owner": owner}
                    r = await browser.request(method, url, params=params, data=data if method == "POST" else None)
                    assert r.status_code < 500, (method, url, r.text[:300])
                    ledger.check(
                        "web", who, f"{method} {url} [{label}]", f"{url} {params} {data}", r.is_success, r.text
                    )
    assert await snapshot(http, world) == before, "a page changed one of the victim's rows"
    assert ledger.leaks == []


async def test_the_probes_would_see_a_leak(http: httpx.AsyncClient, world: World, ledger: Ledger) -> None:
    """The detector is live: the victim reading its own rows trips every forbidden token once, and
    a team member is shown the team's rows (so the member's forbidden set is not vacuous)."""
    victim = Principal("victim", world.victim_key, dict(world.principals[0].forbidden))
    probe = Ledger()
    for row in world.rows:
        if row.kind == "insight":
            r = await http.get(f"/v1/insights/{row.id}", headers=auth(victim.key))
            probe.check("self", victim, row.id, "", r.is_success, r.text)
    assert len(probe.leaks) == 4  # two insights, each its id and its canary
    member = world.principals[2]
    team_rows = [row for row in world.rows if row.kind == "insight" and row.owner.startswith("team:")]
    r = await http.get(f"/v1/insights/{team_rows[0].id}", headers=auth(member.key))
    assert r.status_code == 200 and team_rows[0].canary in r.text
    total = sum(ledger.probes.values())
    print(f"isolation probes: {ledger.probes} = {total}, leaks: {len(ledger.leaks)}")
    if set(ledger.probes) == {"rest", "mcp", "cli", "web"}:  # the whole module ran
        assert total >= 2000
