"""Nightly summarization: quality, links, marking, idempotency, dry run, day groups, REST."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from jobs import JobContext, JobRunner
from jobs.registry import RunReport
from jobs.summarize import summarize
from mosaic_memory.container import AppState
from tests.conftest import UserFactory
from tests.jobs.conftest import insight_rows, log_rows, make_logs, owner_id
from tests.jobs.topics import FONT, REPLICA, TRIP

QUESTIONS = {
    "replica": ("how do I set up a postgres standby server that streams from the primary?", REPLICA),
    "font": ("which typeface does the user use in the code editor?", FONT),
    "trip": ("where is the user travelling for their holiday?", TRIP),
}


async def test_topics_become_insights_recalled_first(
    http: httpx.AsyncClient, make_user: UserFactory, state: AppState, runner: JobRunner
) -> None:
    name, h = await make_user()
    owner = await owner_id(state, name)
    ids = {}
    for topic, (_, lines) in QUESTIONS.items():
        ids[topic] = await make_logs(state, owner, session_id=f"sess-{topic}", agent_id="helper", contents=lines)

    run = await runner.run("summarize", trigger="test")
    assert run.status == "succeeded", run
    assert run.progress == 1.0
    assert run.counts["groups"] >= 3 and run.counts["logs_consumed"] >= 20
    assert run.counts["insights_created"] >= 3

    insights = (await http.get("/v1/insights", headers=h)).json()["items"]
    assert len(insights) == 3
    for item in insights:
        assert item["content"].startswith("In session sess-")
        assert "agent helper" in item["content"] and "events" in item["content"]
        assert item["source"]["type"] == "job"
        assert "summary" in item["tags"]

    for topic, (question, _) in QUESTIONS.items():
        r = await http.post("/v1/search", json={"query": question, "kinds": ["insights"]}, headers=h)
        assert r.status_code == 200, r.text
        top = r.json()["hits"][0]
        assert top["content"].startswith(f"In session sess-{topic} "), (topic, top["content"])
        sources = await http.get(f"/v1/insights/{top['id']}/sources", headers=h)
        assert sources.status_code == 200
        assert sorted(sources.json()) == sorted(str(i) for i in ids[topic])

    logs = await log_rows(state, owner)
    assert all(row["summarized_by_run"] == run.id for row in logs.values())
    assert all(row["summarized_at"] is not None and row["tier"] == "warm" for row in logs.values())

    again = await runner.run("summarize", trigger="test")
    assert again.status == "succeeded"
    assert again.counts["insights_created"] == 0 and again.counts["logs_consumed"] == 0
    assert len(await insight_rows(state, owner)) == 3
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
    assert mine[0]["insights"][0].startswith("In session dry (agent agent-1, 6 events")
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
    texts = sorted(r["content"] for r in (await insight_rows(state, owner)).values())
    assert len(texts) == 2
    assert texts[0].startswith("On 2026-11-20 (agent agent-1, 3 events)")
    assert texts[1].startswith("On 2026-11-21 (agent agent-1, 3 events)")


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
    assert len((await http.get("/v1/insights", headers=h)).json()["items"]) == 1

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
    (text,) = [r["content"] for r in (await insight_rows(state, owner)).values()]
    assert text.startswith("In session direct (agent agent-1, 6 events, 2026-11-24): ")
