"""Re-embedding after a model change, on a database of its own: resumable batches, search on the
old vectors until an atomic switch, and the CLI working while the service refuses to start."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from jobs import build_runner
from mosaic_memory.cli.main import app as cli_app
from mosaic_memory.config import EmbeddingSettings, JobsSettings, Settings
from mosaic_memory.container import AppState, build_state, check_embedding_space
from mosaic_memory.errors import EmbeddingMismatch
from mosaic_memory.insights.schemas import InsightCreate
from mosaic_memory.models import AgentLog, Insight
from mosaic_memory.owners.schemas import Principal
from mosaic_memory.owners.service import OwnerService
from mosaic_memory.reembed.service import ReembedService
from mosaic_memory.search.schemas import SearchRequest
from tests.jobs.conftest import make_logs
from tests.jobs.topics import FONT, REPLICA, TRIP

pytestmark = pytest.mark.slow


@pytest.fixture
async def fresh_url(state: AppState) -> AsyncIterator[str]:
    name = f"reembed_{uuid.uuid4().hex[:10]}"
    async with state.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(state.database.url).set(database=name).render_as_string(hide_password=False)
    async with state.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def settings_for(url: str, data_dir: Path, provider: str) -> Settings:
    return Settings(
        tier="standalone",
        database_url=url,
        data_dir=data_dir,
        embeddings=EmbeddingSettings(provider=provider),
        jobs=JobsSettings(reembed_batch_size=4),
    )


async def top_insight(state: AppState, principal: Principal, query: str) -> str:
    async with state.sessionmaker() as session:
        out = await state.search.search(
            session, principal, SearchRequest(query=query, kinds=["insights"], mode="semantic")
        )
        return out.hits[0].content


async def test_reembed_resumes_and_switches_atomically(fresh_url: str, data_dir: Path) -> None:
    old = await build_state(settings_for(fresh_url, data_dir, "sentence-transformers"))
    new: AppState | None = None
    try:
        async with old.sessionmaker() as session, session.begin():
            _, token = await OwnerService().create_user(session, "reembed-user")
        async with old.sessionmaker() as session, session.begin():
            principal = await OwnerService().authenticate(session, token)
            for fact in [REPLICA[0], FONT[3], TRIP[0], *TRIP[1:4]]:
                await old.insights.create(session, principal, InsightCreate(content=fact))
        await make_logs(old, principal.user.id, session_id="r", contents=FONT)
        question = "which typeface does the user use in the code editor?"
        assert await top_insight(old, principal, question) == FONT[3]

        onnx = settings_for(fresh_url, data_dir, "onnx")
        with pytest.raises(EmbeddingMismatch):  # the service refuses to start on the new model
            await build_state(onnx)
        new = await build_state(onnx, check_embeddings=False)
        service = ReembedService(embedder=new.embedder)
        async with new.sessionmaker() as session, session.begin():
            assert (await service.status(session))["pending"] == 6 + len(FONT)
            n, _ = await service.fill_batch(session, "insights", after=None, limit=4)  # then "interrupted"
        assert n == 4
        # search still answers from the old vectors, and the old model is still the live one
        assert await top_insight(old, principal, question) == FONT[3]
        await check_embedding_space(old.sessionmaker, old.embedder)

        dry = await build_runner(new).run("reembed", trigger="test", dry_run=True)
        assert dry.counts == {"pending": 2 + len(FONT)}
        run = await build_runner(new).run("reembed", trigger="test")
        assert run.status == "succeeded", run
        assert run.counts["embedded"] == 2 + len(FONT)  # resumed: the first four were not embedded again
        assert run.changes["switched"]["rows"] == {
            "insights": 6,
            "preferences": 0,
            "agent_logs": len(FONT),
            "skills": 0,
        }
        assert run.progress == 1.0

        await check_embedding_space(new.sessionmaker, new.embedder)
        with pytest.raises(EmbeddingMismatch):
            await check_embedding_space(old.sessionmaker, old.embedder)
        async with new.sessionmaker() as session:
            models = set((await session.scalars(select(Insight.embedding_model))).all())
            models |= set((await session.scalars(select(AgentLog.embedding_model))).all())
        assert models == {new.embedder.model_id}
        assert await top_insight(new, principal, question) == FONT[3]

        env = {
            "MOSAIC_TIER": "standalone",
            "MOSAIC_DATABASE_URL": fresh_url,
            "MOSAIC_DATA_DIR": str(data_dir),
            "MOSAIC_EMBEDDINGS__PROVIDER": "onnx",
            "MOSAIC_CONFIG_FILE": "",
        }
        status = await asyncio.to_thread(CliRunner().invoke, cli_app, ["embeddings", "status", "--json"], env=env)
        assert status.exit_code == 0, status.output
        body = json.loads(status.stdout)
        assert body["matches"] is True and body["pending"] == 0
        again = await asyncio.to_thread(CliRunner().invoke, cli_app, ["embeddings", "reembed", "--json"], env=env)
        assert again.exit_code == 0, again.output
        assert "already" in json.loads(again.stdout)["message"]
    finally:
        if new is not None:
            await new.aclose()
        await old.aclose()
