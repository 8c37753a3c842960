"""POST /v1/context (and ``mosaic-memory context``): the block never exceeds its budget, puts the
preferences first, holds what fits the query, counts what it left out, and only the caller's memory."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.corpus import TOPICS
from embeddings.tokens import BundledTokenCounter
from mosaic_memory.context.markers import CONTEXT_CLOSE, CONTEXT_OPEN, strip_injected
from tests.conftest import UserFactory, auth

ROOT = Path(__file__).resolve().parents[2]

TeamFactory = Callable[..., Awaitable[str]]
QUERY = "how do we deploy to staging?"
DEPLOY_FACTS = [
    "Staging deploys go through the platform team's Argo CD pipeline, never kubectl by hand",
    "A staging deploy needs the migrations applied first with 'mosaic-memory db upgrade'",
    "Deploys to staging are frozen on Fridays after 3 pm",
    "The staging cluster lives in eu-west-1 and is reset every Sunday night",
    "Rolling back a staging deploy: argocd app rollback mosaic-staging",
    "Staging deploy failures page the on-call engineer of the platform team",
]
OTHER_FACTS = [
    "The office cat is called Biscuit and sleeps on the printer",
    "Alice's favourite lunch spot is the ramen bar on Canal Street",
]
DEPLOY_SKILL = {
    "name": "deploy-to-staging",
    "description": "Deploy the current branch to the staging environment",
    "instructions": "\n".join(
        f"{i}. Step {i} of the staging deploy: check the dashboard, then continue." for i in range(1, 13)
    ),
}


async def post_context(http: httpx.AsyncClient, h: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await http.post("/v1/context", json=body, headers=h)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def seed(http: httpx.AsyncClient, h: dict[str, str]) -> dict[str, Any]:
    """Preferences in several scopes, deploy facts and unrelated ones, a deploy skill; their ids."""
    prefs = {
        ("editor_theme", ""): "dark",
        ("indent", ""): {"python": 4},
        ("review_style", ""): "any size is fine",
        ("review_style", "project:mosaic"): "small PRs, tests first",
        ("test_runner", "project:other"): "tox",
    }
    ids: dict[str, Any] = {"prefs": {}}
    for (key, scope), value in prefs.items():
        r = await http.put(f"/v1/preferences/{key}", json={"value": value, "scope": scope}, headers=h)
        assert r.status_code == 201, r.text
        ids["prefs"][(key, scope)] = r.json()["id"]
    r = await http.post(
        "/v1/insights/batch", json={"items": [{"content": c} for c in DEPLOY_FACTS + OTHER_FACTS]}, headers=h
    )
    assert r.status_code == 201, r.text
    ids["insights"] = {item["content"]: item["id"] for item in r.json()["items"]}
    r = await http.post("/v1/skills", json=DEPLOY_SKILL, headers=h)
    assert r.status_code == 201, r.text
    ids["skill"] = r.json()["id"]
    return ids


def body_lines(text: str) -> list[str]:
    lines = text.split("\n")
    assert lines[0] == CONTEXT_OPEN and lines[-1] == CONTEXT_CLOSE, text
    return lines[1:-1]


def check_shape(out: dict[str, Any]) -> None:
    """Tokens counted right, within budget; items and counts agree; the trailer says what was left out."""
    text = out["text"]
    assert out["tokens"] <= out["token_budget"]
    assert out["tokens"] == (BundledTokenCounter().count([text])[0] if text else 0)
    assert out["tokenizer"] == "all-MiniLM-L6-v2 WordPiece"
    kinds = [item["kind"] for item in out["items"]]
    assert kinds == sorted(kinds, key=["preferences", "insights", "skills"].index)  # preferences first
    for kind in ("preferences", "insights", "skills"):
        assert kinds.count(kind) == out["included"][kind]
    left_out = {k: n for k, n in out["omitted"].items() if n}
    if not text:
        assert not out["items"]
        return
    lines = body_lines(text)
    if left_out:
        parts = [f"{n} {k if n != 1 else k[:-1]}" for k, n in left_out.items()]
        assert lines[-1] == f"[left out to fit the token budget: {', '.join(parts)}]"
    else:
        assert not lines[-1].startswith("[left out")


async def test_the_block_never_exceeds_the_budget(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user("ctx")
    await seed(http, h)
    for budget in (50, 51, 60, 75, 100, 150, 250, 400, 700, 1000, 1500, 3000, 20000):
        out = await post_context(http, h, query=QUERY, project="mosaic", token_budget=budget)
        check_shape(out)
        assert out["items"], budget  # even the smallest budget shows something
    assert out["omitted"] == {"preferences": 0, "insights": 0, "skills": 0}
    assert out["included"]["preferences"] == 3 and out["included"]["skills"] == 1
    # the default budget is 1500
    assert (await post_context(http, h, query=QUERY))["token_budget"] == 1500


async def test_preferences_come_first_in_their_scopes(
    http: httpx.AsyncClient, make_user: UserFactory, admin_headers: dict[str, str]
) -> None:
    name, h = await make_user("ctx")
    ids = await seed(http, h)
    out = await post_context(http, h, query=QUERY, project="mosaic")
    check_shape(out)
    lines = body_lines(out["text"])
    assert lines[:4] == [
        "## Preferences",
        "- review_style (project:mosaic): small PRs, tests first",  # the project's value wins its key
        "- editor_theme: dark",
        '- indent: {"python": 4}',
    ]
    assert lines[4] == "## Insights"
    assert "tox" not in out["text"] and "any size is fine" not in out["text"]
    prefs = [item["id"] for item in out["items"] if item["kind"] == "preferences"]
    assert prefs == [
        ids["prefs"][("review_style", "project:mosaic")],
        ids["prefs"][("editor_theme", "")],
        ids["prefs"][("indent", "")],
    ]

    # without a project: the global value of review_style
    plain = body_lines((await post_context(http, h, query=QUERY))["text"])
    assert "- review_style: any size is fine" in plain and "small PRs" not in "\n".join(plain)
    # a key bound to an agent also gets that agent's preferences, before the global ones
    r = await http.post("/v1/admin/keys", json={"user": name, "agent_id": "coder"}, headers=admin_headers)
    agent = auth(r.json()["api_key"])
    assert (
        await http.put("/v1/preferences/verbosity", json={"value": "terse", "scope": "agent:coder"}, headers=h)
    ).status_code == 201
    agent_lines = body_lines((await post_context(http, agent, query=QUERY))["text"])
    assert agent_lines[1] == "- verbosity (agent:coder): terse"
    assert "verbosity" not in (await post_context(http, h, query=QUERY))["text"]


async def test_what_fits_the_query_is_included_and_the_rest_is_not(
    http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, h = await make_user("ctx")
    ids = await seed(http, h)
    out = await post_context(http, h, query=QUERY, token_budget=3000)
    check_shape(out)
    shown = {item["id"] for item in out["items"]}
    assert ids["insights"][DEPLOY_FACTS[0]] in shown and ids["skill"] in shown
    assert "Step 12 of the staging deploy" in out["text"]  # the skill's instructions fit
    for fact in OTHER_FACTS:
        assert ids["insights"][fact] not in shown and fact not in out["text"]
    # a skill whose instructions do not fit comes by name and description
    small = await post_context(http, h, query="deploy the branch to staging", kinds=["skills"], token_budget=60)
    check_shape(small)
    assert small["included"]["skills"] == 1
    assert "deploy-to-staging: Deploy the current branch" in small["text"] and "Step 1 " not in small["text"]


async def test_in_a_larger_store_only_what_is_about_the_query_goes_in(
    http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, h = await make_user("ctx")
    facts = [text for topic in TOPICS for text in (topic.fact, topic.other, *topic.same)]
    r = await http.post("/v1/insights/batch", json={"items": [{"content": f} for f in facts]}, headers=h)
    assert r.status_code == 201 and r.json()["created"] > 100
    out = await post_context(http, h, query="food allergies", token_budget=20000)
    check_shape(out)
    shown = [line.removeprefix("- ") for line in body_lines(out["text"]) if line.startswith("- ")]
    assert "The user is allergic to peanuts" in shown and "Peanuts give the user an allergic reaction" in shown
    assert all(any(w in line for w in ("allerg", "peanut", "shellfish")) for line in shown), shown
    # a project name no memory mentions brings nothing; one that a memory names brings that one
    assert (await post_context(http, h, project="mosaic"))["text"] == ""
    await http.post("/v1/insights", json={"content": "The mosaic repo pins Python 3.11"}, headers=h)
    named = await post_context(http, h, project="mosaic")
    assert [line for line in body_lines(named["text"]) if line.startswith("- ")] == [
        "- The mosaic repo pins Python 3.11"
    ]


async def test_a_small_budget_counts_what_it_left_out(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user("ctx")
    await seed(http, h)
    pinned = await http.post(
        "/v1/insights", json={"content": "Never force-push to main", "pinned": True, "importance": 0.1}, headers=h
    )
    # neither query nor project: every current insight is a candidate, pinned first
    full = await post_context(http, h, token_budget=20000)
    check_shape(full)
    total_insights = len(DEPLOY_FACTS) + len(OTHER_FACTS) + 1
    assert full["included"] == {"preferences": 3, "insights": total_insights, "skills": 0}
    assert body_lines(full["text"])[4:6] == ["## Insights", "- Never force-push to main"]
    assert full["items"][3]["id"] == pinned.json()["id"]
    for budget in (50, 80, 120, 200, full["tokens"]):
        out = await post_context(http, h, token_budget=budget)
        check_shape(out)
        assert out["included"]["preferences"] + out["omitted"]["preferences"] == 3
        assert out["included"]["insights"] + out["omitted"]["insights"] == total_insights
        assert (out["omitted"]["insights"] > 0) == (budget < full["tokens"]), budget
        assert sum(item["tokens"] for item in out["items"]) < out["tokens"]  # headers and markers count too


async def test_only_the_callers_memory_and_their_teams(
    http: httpx.AsyncClient, make_user: UserFactory, make_team: TeamFactory
) -> None:
    a_name, a = await make_user("ctx-a")
    _, b = await make_user("ctx-b")
    c_name, c = await make_user("ctx-c")
    ids = await seed(http, a)
    team = await make_team(a_name, c_name)
    r = await http.post(
        "/v1/insights", json={"content": "Staging deploys need the team's VPN", "owner": f"team:{team}"}, headers=a
    )
    team_insight = r.json()["id"]
    await http.put("/v1/preferences/pr_size", json={"value": "under 400 lines", "owner": f"team:{team}"}, headers=a)

    stranger = await post_context(http, b, query=QUERY, project="mosaic", token_budget=20000)
    assert stranger["text"] == "" and stranger["tokens"] == 0 and stranger["items"] == []
    assert stranger["included"] == stranger["omitted"] == {"preferences": 0, "insights": 0, "skills": 0}
    teammate = await post_context(http, c, query=QUERY, project="mosaic", token_budget=20000)
    check_shape(teammate)
    shown = {item["id"] for item in teammate["items"]}
    assert team_insight in shown and "- pr_size: under 400 lines" in teammate["text"]
    assert not shown & ({*ids["insights"].values(), ids["skill"], *ids["prefs"].values()})
    assert "Argo CD" not in teammate["text"] and "editor_theme" not in teammate["text"]


async def test_bad_requests_are_refused(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user("ctx")
    for body in (
        {"token_budget": 49},
        {"token_budget": 20001},
        {"kinds": ["logs"]},
        {"project": "two words"},
        {"extra": 1},
    ):
        r = await http.post("/v1/context", json=body, headers=h)
        assert r.status_code == 422 and r.json()["error"] == "InvalidInput", body
    assert (await http.post("/v1/context", json={})).status_code == 401


async def test_the_block_is_stripped_whole_by_strip_injected(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user("ctx")
    await seed(http, h)
    out = await post_context(http, h, query=QUERY, token_budget=200)
    transcript = f"user: please deploy\n{out['text']}\nassistant: deploying now"
    assert strip_injected(transcript) == "user: please deploy\nassistant: deploying now"
    escaped = json.dumps({"role": "system", "content": out["text"] + "\nthe rest"})
    assert "Preferences" not in strip_injected(escaped) and "the rest" in strip_injected(escaped)


@pytest.mark.parametrize("as_json", [True, False])
async def test_the_cli_prints_the_block(
    live_url: str, http: httpx.AsyncClient, make_user: UserFactory, as_json: bool
) -> None:
    _, h = await make_user("ctx")
    await seed(http, h)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env |= {
        "MOSAIC_URL": live_url,
        "MOSAIC_API_KEY": h["Authorization"].removeprefix("Bearer "),
        "MOSAIC_CONFIG_FILE": "",
    }
    args = ["-m", "mosaic_memory", "context", "--query", QUERY, "--project", "mosaic", "--budget", "300"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, *(["--json"] if as_json else []), env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, stderr.decode()
    if as_json:
        out = json.loads(stdout)
        check_shape(out)
        assert out["token_budget"] == 300 and out["included"]["preferences"] == 3
    else:
        text = stdout.decode().rstrip("\n")
        assert body_lines(text)[1] == "- review_style (project:mosaic): small PRs, tests first"
        assert BundledTokenCounter().count([text])[0] <= 300
        assert "of 300 tokens" in stderr.decode()
