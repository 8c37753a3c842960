"""Every SQL statement the service issues on a request path that reads or changes a memory table
filters by owner. Captured with SQLAlchemy's ``before_cursor_execute`` over a run of the routes
(insights, preferences, skills, logs, search in every mode, context, export), as the real
service issues them against the real database: what a Citus deployment needs, since a statement
without the distribution column fans out to every shard (and could cross owners)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.conftest import UserFactory

MEMORY_TABLES = ("insights", "preferences", "preference_history", "agent_logs", "skills", "insight_sources")
_TOUCHES = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(" + "|".join(MEMORY_TABLES) + r")\b", re.IGNORECASE)
# An owner predicate: owner_id compared in a WHERE/ON clause (=, IN, = ANY, or a (owner_id, id) tuple).
_OWNER_FILTER = re.compile(r"\b(?:WHERE|ON|AND)\b.*?\bowner_id\b", re.IGNORECASE | re.DOTALL)


def unscoped(statements: list[str]) -> list[str]:
    """The statements that read, change or delete memory rows without an owner predicate.
    (A plain INSERT carries the owner in its row; an INSERT ... SELECT must filter its SELECT.)"""
    bad = []
    for stmt in statements:
        if not _TOUCHES.search(stmt):
            continue
        head = stmt.lstrip().upper()
        if head.startswith("INSERT") and " SELECT " not in head:
            continue
        if not _OWNER_FILTER.search(stmt):
            bad.append(" ".join(stmt.split()))
    return bad


def test_the_checker_catches_an_unscoped_statement() -> None:
    assert unscoped(["SELECT id FROM insights WHERE id = %(id)s"]) == ["SELECT id FROM insights WHERE id = %(id)s"]
    assert unscoped(["SELECT id FROM insights WHERE owner_id = %(o)s AND id = %(id)s"]) == []
    assert unscoped(["DELETE FROM skills WHERE skills.id IN (%(a)s)"]) != []
    assert unscoped(["INSERT INTO agent_logs (owner_id, id) VALUES (%(o)s, %(i)s)"]) == []


async def test_request_paths_filter_memory_tables_by_owner(
    http: httpx.AsyncClient, make_user: UserFactory, make_team: Any, captured: list[str]
) -> None:
    name, h = await make_user("scoped")
    team = await make_team(name)
    ok = (200, 201, 202, 204)

    async def call(method: str, path: str, **kwargs: Any) -> Any:
        r = await http.request(method, path, headers=h, **kwargs)
        assert r.status_code in ok, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text

    first = await call("POST", "/v1/insights", json={"content": "Deploys happen on Tuesdays", "tags": ["ops"]})
    await call(
        "POST", "/v1/insights", json={"content": "The team prefers squash merges"}, params={"owner": f"team:{team}"}
    )
    await call("POST", "/v1/insights/batch", json={"items": [{"content": "Uses ruff"}, {"content": "Uses mypy"}]})
    await call("GET", "/v1/insights")
    await call("GET", f"/v1/insights/{first['id']}")
    await call("GET", f"/v1/insights/{first['id']}/sources")
    await call("PATCH", f"/v1/insights/{first['id']}", json={"content": "Deploys happen on Wednesdays"})
    await call("POST", "/v1/insights", json={"content": "Deploys moved to Thursdays", "supersedes": first["id"]})
    await call("PUT", "/v1/preferences/editor", json={"value": "vim"})
    await call("PUT", "/v1/preferences/editor", json={"value": "helix"})
    await call("GET", "/v1/preferences")
    await call("GET", "/v1/preferences/editor")
    await call("GET", "/v1/preferences/editor/history")
    skill = await call("POST", "/v1/skills", json={"name": "deploy", "description": "Deploy to staging"})
    await call("GET", "/v1/skills")
    await call("PATCH", f"/v1/skills/{skill['id']}", json={"description": "Deploy the branch to staging"})
    await call("GET", f"/v1/skills/{skill['id']}")
    logged = await call("POST", "/v1/logs", json={"events": [{"session_id": "s1", "content": "ran the deploy"}]})
    await call("GET", "/v1/logs", params={"session_id": "s1"})
    await call("GET", f"/v1/logs/{logged['ids'][0]}")
    for mode in ("semantic", "keyword", "hybrid"):
        await call("POST", "/v1/search", json={"query": "when do we deploy?", "mode": mode, "k": 5})
    await call("POST", "/v1/search", json={"query": "deploy", "kinds": ["logs", "skills", "preferences"], "k": 5})
    await call("POST", "/v1/search", json={"query": "deploy", "kinds": ["logs"], "filters": {"session_id": "s1"}})
    await call("POST", "/v1/context", json={"query": "deploy the site"})
    await call("GET", "/v1/export")
    await call("DELETE", f"/v1/skills/{skill['id']}")
    await call("DELETE", "/v1/preferences/editor")
    await call("DELETE", f"/v1/insights/{first['id']}")

    touching = [s for s in captured if _TOUCHES.search(s)]
    assert len(touching) > 30, "the run did not reach the memory tables"
    bad = unscoped(captured)
    assert not bad, "statements without an owner filter:\n" + "\n".join(bad)
