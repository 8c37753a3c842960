"""Nightly summarization: quality, links, marking, idempotency, dry run, day groups, REST."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx

from jobs import JobContext, JobRunner
from jobs.registry import RunReport
from jobs.summarize import summarize
from mosaic_memory.container import AppState
from mosaic_memory.summaries.summarizers import salience
from tests.conftest import UserFactory
from tests.jobs.conftest import insight_rows, log_rows, make_logs, owner_id, source_rows
from tests.jobs.topics import FONT, REPLICA, TRIP

QUESTIONS = {
    "replica": ("how do I set up a postgres standby server that streams from the primary?", REPLICA),
    "font": ("which typeface does the user use in the code editor?", FONT),
    "trip": ("where is the user travelling for their holiday?", TRIP),
}


async def test_topics_become_insights_recalled_first(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState, runner: JobRunner
) -> None:
    await runner.run("summarize", trigger="test")  # nothing else pending: the counts below are this test's
    name, h = await make_user()
    owner = await owner_id(state, name)
    ids = {}
    for topic, (_, lines) in QUESTIONS.items():
        ids[topic] = await make_logs(state, owner, session_id=f"sess-{topic}", agent_id="helper", contents=lines)

    run = await runner.run("summarize", trigger="test")
    assert run.status == "succeeded", run
    assert run.progress == 1.0
    assert run.counts["groups"] >= 3 and run.counts["logs_consumed"] >= 20
    # The run's counts also cover logs other tests left behind (still embedding when the first run
    # looked, then taken by this one), so count this owner's rows the run created.
    created = [r for r in (await insight_rows(state, owner)).values() if r["created_by_run"] == run.id]
    assert len(created) >= 6  # one per fact, not one per session
    assert run.counts["insights_created"] >= len(created)

    insights = (await http.get("/v1/insights", params={"limit": 500}, headers=h)).json()["items"]
    assert len(insights) == len(created)
    for item in insights:
        assert re.search(r" \(session sess-\w+, agent helper, \d{4}-\d\d-\d\d\)$", item["content"]), item
        assert item["source"]["type"] == "job"
        assert "summary" in item["tags"]

    for topic, (question, _) in QUESTIONS.items():
        r = await http.post("/v1/search", json={"query": question, "kinds": ["insights"]}, headers=h)
        assert r.status_code == 200, r.text
        top = r.json()["hits"][0]
        assert f"(session sess-{topic}, " in top["content"], (topic, top["content"])
        sources = await http.get(f"/v1/insights/{top['id']}/sources", headers=h)
        assert sources.status_code == 200
        cited = sources.json()["items"]
        assert cited and {x["id"] for x in cited} <= {str(i) for i in ids[topic]}
        for x in cited:  # an insight cites exactly the lines it was built from
            assert x["content"] in top["content"] and x["session_id"] == f"sess-{topic}"

    # no log is cited twice, and every preference, decision or outcome is cited
    links = await source_rows(state, owner)
    per_log = Counter(log for _, log in links)
    assert max(per_log.values()) == 1
    for topic, (_, lines) in QUESTIONS.items():
        for log_id, line in zip(ids[topic], lines, strict=True):
            if salience(line) == 2:
                assert per_log[log_id] == 1, line

    logs = await log_rows(state, owner)
    assert all(row["summarized_by_run"] == run.id for row in logs.values())
    assert all(row["summarized_at"] is not None and row["tier"] == "warm" for row in logs.values())

    again = await runner.run("summarize", trigger="test")
    assert again.status == "succeeded"
    assert again.counts["insights_created"] == 0 and again.counts["logs_consumed"] == 0
    assert len(await insight_rows(state, owner)) == len(insights)
    assert await log_rows(state, owner) == logs


async def test_dry_run_returns_diff_and_writes_nothing(
    make_user: UserFactory, state: AppState, runner: JobRunner
) -> None:
    name, _ = await make_user()
    owner = await owner_id(state, name)
    await make_logs(state, owner, session_id="dry", contents=FONT)
    before = await log_rows(state, owner)

    run = await runner.run("summarize", trigger="test", dry_run=True)
    assert run.status == "succeeded" and run.dry_run
    mine = [g for g in run.changes["diff"] if g["owner_id"] == str(owner)]
    assert len(mine) == 1 and mine[0]["logs"] == len(FONT)
    assert mine[0]["insights"] and mine[0]["skipped_pending"] == 0
    assert all(re.search(r" \(session dry, agent agent-1, [\d-]+\)$", t) for t in mine[0]["insights"])
    assert "groups" not in run.changes
    assert await log_rows(state, owner) == before
    assert await insight_rows(state, owner) == {}


async def test_logs_without_session_group_by_day(make_user: UserFactory, state: AppState, runner: JobRunner) -> None:
    name, _ = await make_user()
    owner = await owner_id(state, name)
    day1 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    await make_logs(state, owner, session_id=None, contents=TRIP[:3], start=day1)
    await make_logs(state, owner, session_id=None, contents=TRIP[3:], start=day1 + timedelta(days=1))
    run = await runner.run("summarize", trigger="test")
    assert run.status == "succeeded"
    texts = [r["content"] for r in (await insight_rows(state, owner)).values()]
    days = {re.search(r" \(agent agent-1, ([\d-]+)\)$", t).group(1) for t in texts}  # type: ignore[union-attr]
    assert days == {"2026-11-20", "2026-11-21"}


async def test_jobs_over_rest(
    http: httpx.AsyncClient, make_user: UserFactory, admin_headers: dict[str, str], state: AppState
) -> None:
    name, h = await make_user()
    owner = await owner_id(state, name)
    await make_logs(state, owner, session_id="rest", contents=REPLICA[:4])

    assert (await http.get("/v1/jobs", headers=h)).status_code == 403
    assert (await http.post("/v1/jobs/summarize/runs", headers=h)).status_code == 403
    missing = await http.post("/v1/jobs/no-such-job/runs", headers=admin_headers)
    assert missing.status_code == 404 and missing.json()["error"] == "JobNotFound"
    assert (await http.get(f"/v1/jobs/runs/{uuid.uuid4()}", headers=admin_headers)).status_code == 404

    listed = await http.get("/v1/jobs", headers=admin_headers)
    assert listed.status_code == 200
    jobs = {j["id"]: j for j in listed.json()}
    assert jobs["summarize"]["schedule"] == "0 2 * * *" and jobs["summarize"]["supports_rollback"]
    assert {"expire-decay", "log-tiers"} <= jobs.keys()

    typo = await http.post("/v1/jobs/summarize/runs", json={"dryrun": True}, headers=admin_headers)
    assert typo.status_code == 422 and typo.json()["error"] == "InvalidInput"
    dry = await http.post("/v1/jobs/summarize/runs", json={"dry_run": True}, headers=admin_headers)
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True
    assert (await http.get("/v1/insights", headers=h)).json()["items"] == []

    r = await http.post("/v1/jobs/summarize/runs", headers=admin_headers)
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["status"] == "succeeded" and run["trigger"] == "api"
    got = await http.get(f"/v1/jobs/runs/{run['id']}", headers=admin_headers)
    assert got.status_code == 200 and got.json()["counts"] == run["counts"]
    history = await http.get("/v1/jobs/runs", params={"job": "summarize", "limit": 5}, headers=admin_headers)
    assert run["id"] in [x["id"] for x in history.json()]
    assert len((await http.get("/v1/insights", headers=h)).json()["items"]) >= 1

    undo = await http.post(f"/v1/jobs/runs/{run['id']}/rollback", headers=admin_headers)
    assert undo.status_code == 200, undo.text
    assert undo.json()["status"] == "rolled_back"
    assert (await http.get("/v1/insights", headers=h)).json()["items"] == []
    twice = await http.post(f"/v1/jobs/runs/{run['id']}/rollback", headers=admin_headers)
    assert twice.status_code == 409


async def test_job_function_runs_directly_with_injected_time(make_user: UserFactory, state: AppState) -> None:
    name, _ = await make_user()
    owner = await owner_id(state, name)
    await make_logs(state, owner, session_id="direct", contents=TRIP, start=datetime(2026, 11, 24, 8, tzinfo=UTC))
    when = datetime(2026, 11, 24, 12, tzinfo=UTC)
    ctx = JobContext(
        settings=state.settings,
        sessionmaker=state.sessionmaker,
        engine=state.engine,
        embedder=state.embedder,
        insights=state.insights,
        run_id=uuid.uuid4(),
        now=when,
        dry_run=False,
        report=RunReport(state.sessionmaker, uuid.uuid4()),
    )
    await summarize(ctx)
    assert ctx.report.counts["logs_consumed"] >= len(TRIP)
    logs = await log_rows(state, owner)
    assert {r["summarized_at"] for r in logs.values()} == {when}
    assert {r["tier_changed_at"] for r in logs.values()} == {when}
    texts = [r["content"] for r in (await insight_rows(state, owner)).values()]
    assert texts and all(t.endswith(" (session direct, agent agent-1, 2026-11-24)") for t in texts)
