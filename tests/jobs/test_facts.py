"""Summaries that keep every fact: one insight per fact, each citing exactly its logs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from jobs import JobRunner
from mosaic_memory.container import AppState
from mosaic_memory.summaries.summarizers import ExtractiveSummarizer, LogLine, SummaryGroup, is_boilerplate, salience
from tests.conftest import UserFactory
from tests.jobs.conftest import insight_rows, log_rows, make_logs, owner_id, source_rows

DEPLOY = "User said they want all deploy notifications in #ops-alerts, not #general"
MIGRATION = "Ran the migration 0042 on staging; it took 14 minutes and locked the orders table"


@pytest.mark.parametrize(
    "line", ["ok", "Done.", "Running tests…", "tool call: read_file src/app.py", "exit code 0", "Thanks, on it!"]
)
def test_boilerplate_lines(line: str) -> None:
    assert is_boilerplate(line)


@pytest.mark.parametrize("line", [DEPLOY, MIGRATION, "Opened the Slack settings", "The cat is called Miso"])
def test_informative_lines_are_not_boilerplate(line: str) -> None:
    assert not is_boilerplate(line)


def test_salience_prefers_preferences_decisions_and_outcomes() -> None:
    assert salience(DEPLOY) == 2  # a preference
    assert salience("Decided to move the backups to 04:30 UTC") == 2
    assert salience(MIGRATION) == 2  # an outcome
    assert salience("Opened the Slack integration settings") == 0  # a working step
    assert salience("The production servers run Ubuntu 24.04") == 1


async def test_two_facts_become_two_insights_each_citing_its_own_log(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState, runner: JobRunner
) -> None:
    await runner.run("summarize", trigger="test")  # nothing else pending
    name, h = await make_user()
    owner = await owner_id(state, name)
    ids = await make_logs(
        state, owner, session_id="two-facts", contents=["ok", DEPLOY, "Running tests…", MIGRATION, "done"]
    )
    run = await runner.run("summarize", trigger="test")
    assert run.status == "succeeded", run
    assert run.counts["logs_consumed"] == 5 and run.counts["insights_created"] == 2

    insights = (await http.get("/v1/insights", headers=h)).json()["items"]
    assert len(insights) == 2
    by_fact = {}
    for item in insights:
        page = (await http.get(f"/v1/insights/{item['id']}/sources", headers=h)).json()
        assert page["next_cursor"] is None
        (log,) = page["items"]
        assert log["content"] in item["content"]
        assert log["session_id"] == "two-facts" and log["agent_id"] == "agent-1" and log["occurred_at"]
        assert item["metadata"]["log_count"] == 1 and item["metadata"]["group_logs"] == 5
        by_fact[log["id"]] = item
    assert set(by_fact) == {str(ids[1]), str(ids[3])}
    assert by_fact[str(ids[1])]["content"].startswith(DEPLOY)
    assert "(session two-facts, agent agent-1, " in by_fact[str(ids[1])]["content"]
    # the boilerplate is consumed, and cited by no insight
    assert {log for _, log in await source_rows(state, owner)} == {ids[1], ids[3]}
    assert all(r["summarized_by_run"] == run.id for r in (await log_rows(state, owner)).values())

    found = await http.post(
        "/v1/search", json={"query": "where should deploy notifications go?", "kinds": ["insights"]}, headers=h
    )
    assert found.status_code == 200, found.text
    assert found.json()["hits"][0]["id"] == by_fact[str(ids[1])]["id"]

    _, other = await make_user()
    denied = await http.get(f"/v1/insights/{by_fact[str(ids[1])]['id']}/sources", headers=other)
    assert denied.status_code == 404 and denied.json()["error"] == "InsightNotFound"


async def test_a_session_of_boilerplate_is_consumed_without_insights(
    make_user: UserFactory, state: AppState, runner: JobRunner
) -> None:
    await runner.run("summarize", trigger="test")
    name, _ = await make_user()
    owner = await owner_id(state, name)
    await make_logs(state, owner, session_id="chatter", contents=["ok", "Running tests…", "exit code 0", "done"])
    run = await runner.run("summarize", trigger="test")
    assert run.status == "succeeded" and run.counts["logs_consumed"] == 4
    assert await insight_rows(state, owner) == {}
    assert all(r["summarized_at"] is not None for r in (await log_rows(state, owner)).values())


async def test_sources_are_paginated_and_copies_of_a_line_are_all_cited(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState, runner: JobRunner
) -> None:
    await runner.run("summarize", trigger="test")
    name, h = await make_user()
    owner = await owner_id(state, name)
    ids = await make_logs(state, owner, session_id="repeats", contents=[DEPLOY, "ok", DEPLOY, DEPLOY])
    run = await runner.run("summarize", trigger="test")
    assert run.counts["insights_created"] == 1
    (insight,) = (await http.get("/v1/insights", headers=h)).json()["items"]
    url = f"/v1/insights/{insight['id']}/sources"

    first = (await http.get(url, params={"limit": 2}, headers=h)).json()
    assert [x["id"] for x in first["items"]] == [str(ids[0]), str(ids[2])]
    assert first["next_cursor"]
    rest = (await http.get(url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=h)).json()
    assert [x["id"] for x in rest["items"]] == [str(ids[3])] and rest["next_cursor"] is None

    bad = await http.get(url, params={"cursor": "not-a-cursor"}, headers=h)
    assert bad.status_code == 422 and bad.json()["error"] == "InvalidInput"
    assert (await http.get(url, params={"limit": 0}, headers=h)).status_code == 422


FONT_SESSION = [
    "Opened the editor's font settings",
    "Compared JetBrains Mono, Fira Code and Iosevka for legibility at small sizes",
    "Tried each font in the terminal for an hour",
    "Decided to use JetBrains Mono at 14 pt in every editor",
]


@pytest.mark.parametrize("max_lines", [1, 2, 5])
async def test_every_informative_line_is_cited_however_many_steps_join_a_fact(state: AppState, max_lines: int) -> None:
    # Steps join the fact they lead to; those that do not fit beside it in one insight (max_lines)
    # were dropped: consumed, yet cited by nothing.
    vectors = await state.embedder.embed_documents(FONT_SESSION)
    lines = [LogLine(uuid.uuid4(), text, "agent-1", "info", datetime(2026, 12, 7, tzinfo=UTC)) for text in FONT_SESSION]
    out = await ExtractiveSummarizer(max_lines=max_lines).summarize(SummaryGroup("font", None, lines, vectors))
    cited = [i for summary in out for i in summary.sources]
    assert sorted(cited) == list(range(len(FONT_SESSION)))  # each line once
    assert all(len(summary.sources) <= max_lines for summary in out)
