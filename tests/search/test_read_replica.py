"""search.replica_url: POST /v1/search reads through the replica engine, authentication and writes
stay on the primary. The "replica" is the suite's own database reached through a connection whose
every transaction is read-only (what a hot standby enforces), so a write on the search path fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from mosaic_memory.api.app import create_app
from mosaic_memory.config import LogSettings, Settings
from mosaic_memory.container import AppState, build_state
from tests.conftest import ADMIN_KEY, auth


@pytest.fixture(scope="module")
async def replica_state(settings: Settings, state: AppState) -> AsyncIterator[AppState]:
    read_only = state.database.url + "&options=-c%20default_transaction_read_only%3Don"
    cfg = settings.model_copy(
        update={
            "tier": "standalone",
            "database_url": SecretStr(state.database.url),
            "search": settings.search.model_copy(update={"replica_url": SecretStr(read_only)}),
            "logs": LogSettings(background_embedder=False),
        }
    )
    built = await build_state(cfg)
    yield built
    await built.aclose()


@pytest.fixture
async def client(replica_state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(replica_state.settings, state=replica_state)
    app.state.mosaic = replica_state
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://replica.test") as c:
        yield c


class Statements:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.seen: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        self.seen.append(statement)

    def touching(self, table: str) -> list[str]:
        return [s for s in self.seen if f"FROM {table}" in s or f"JOIN {table}" in s]


@pytest.fixture
def captured(replica_state: AppState) -> Iterator[tuple[Statements, Statements]]:
    assert replica_state.replica_engine is not None
    primary, replica = Statements(replica_state.engine), Statements(replica_state.replica_engine)
    for watcher in (primary, replica):
        event.listen(watcher.engine, "before_cursor_execute", watcher)
    yield primary, replica
    for watcher in (primary, replica):
        event.remove(watcher.engine, "before_cursor_execute", watcher)


async def test_search_reads_the_replica_and_writes_stay_on_the_primary(
    client: httpx.AsyncClient, replica_state: AppState, captured: tuple[Statements, Statements]
) -> None:
    made = await client.post("/v1/admin/users", json={"name": "replica-searcher"}, headers=auth(ADMIN_KEY))
    assert made.status_code == 201, made.text
    h = auth(made.json()["api_key"])
    stored = await client.post("/v1/insights", json={"content": "The staging cluster runs in Frankfurt"}, headers=h)
    assert stored.status_code == 201, stored.text

    primary, replica = captured
    primary.seen.clear()
    replica.seen.clear()
    for mode in ("semantic", "keyword", "hybrid"):
        found = await client.post("/v1/search", json={"query": "staging cluster", "mode": mode}, headers=h)
        assert found.status_code == 200, found.text
        assert found.json()["hits"], (mode, found.text)
        assert found.json()["hits"][0]["id"] == stored.json()["id"]
    assert replica.touching("insights"), "the search did not read through the replica"
    assert not primary.touching("insights"), "the search read insights on the primary"
    assert primary.touching("api_keys"), "authentication is expected on the primary"

    # The replica connection really is read-only: a write there fails, so the searches above wrote nothing there.
    assert replica_state.replica_sessionmaker is not None
    async with replica_state.replica_sessionmaker() as session:
        with pytest.raises(DBAPIError, match="read-only"):
            await session.execute(text("UPDATE insights SET access_count = access_count WHERE false"))

    # A federated search (it records peers' contact) stays on the primary.
    federated = await client.post("/v1/search", json={"query": "staging", "federated": True}, headers=h)
    assert federated.status_code == 200, federated.text
