"""``mosaic-memory jobs`` against the suite's database (standalone URL), through the real CLI app."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from typer.testing import CliRunner

from mosaic_memory.cli.main import app
from mosaic_memory.container import AppState
from mosaic_memory.models import utc_now
from tests.conftest import UserFactory
from tests.jobs.conftest import insight_rows, log_rows, make_logs, owner_id
from tests.jobs.topics import CI


def cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


async def test_run_dry_run_history_rollback(make_user: UserFactory, state: AppState, cli_env: dict[str, str]) -> None:
    name, _ = await make_user()
    owner = await owner_id(state, name)
    await make_logs(state, owner, session_id="cli", contents=CI, start=utc_now().replace(microsecond=0))
    before = await log_rows(state, owner)

    dry = await asyncio.to_thread(cli, cli_env, "jobs", "run", "summarize", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    body = json.loads(dry.stdout)
    assert body["dry_run"] is True and body["trigger"] == "cli"
    assert any(g["session_id"] == "cli" for g in body["changes"]["diff"])
    assert await log_rows(state, owner) == before

    done = await asyncio.to_thread(cli, cli_env, "jobs", "run", "summarize")
    assert done.exit_code == 0, done.output
    assert "succeeded" in done.stdout and "100%" in done.stderr  # the progress bar ran to the end
    assert len(await insight_rows(state, owner)) >= 1
    run_id = done.stdout.split()[1].rstrip(":")

    history = await asyncio.to_thread(cli, cli_env, "jobs", "history", "--job", "summarize", "--json")
    assert history.exit_code == 0
    assert run_id in [r["id"] for r in json.loads(history.stdout)]
    listed = await asyncio.to_thread(cli, cli_env, "jobs", "list", "--json")
    assert {j["id"] for j in json.loads(listed.stdout)} >= {"summarize", "expire-decay", "log-tiers"}

    undo = await asyncio.to_thread(cli, cli_env, "jobs", "rollback", run_id)
    assert undo.exit_code == 0, undo.output
    assert "rolled_back" in undo.stdout
    shown = await asyncio.to_thread(cli, cli_env, "jobs", "show", run_id)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["status"] == "rolled_back"
    assert await log_rows(state, owner) == before
    assert await insight_rows(state, owner) == {}


def test_unknown_job_is_one_line_and_exit_1(cli_env: dict[str, str]) -> None:
    result = cli(cli_env, "jobs", "run", "no-such-job")
    assert result.exit_code == 1
    assert "job 'no-such-job' not found; known jobs: summarize" in result.stderr
