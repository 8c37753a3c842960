"""How many SQL statements one search costs: a budget per mode, so a change that adds round trips
to the search path shows up here (issue 15: no more statements than before)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from mosaic_memory.container import AppState
from mosaic_memory.search.schemas import SearchRequest
from tests.conftest import UserFactory

# Statements per search over all four kinds of a small store (each kind's scope is scanned
# exactly): semantic = the plan count and one query for every kind (5 while each kind had its own);
# keyword = the query's lexemes with every kind's document frequencies, and one statement of every
# kind's passes (8 while each kind had its own of each); hybrid = both (13, then 10 before). Measured
# when the budget was set; lower it when a change saves a round trip, never raise it silently.
BUDGET = {"semantic": 2, "keyword": 2, "hybrid": 4}


@contextmanager
def counted(state: AppState) -> Iterator[list[str]]:
    engine = state.sessionmaker.kw["bind"].sync_engine
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("mode", ["semantic", "keyword", "hybrid"])
async def test_a_search_stays_within_its_statement_budget(
    mode: str, http: httpx.AsyncClient, make_user: UserFactory, state: AppState
) -> None:
    _, h = await make_user()
    assert (
        await http.post("/v1/insights", json={"content": "Prefers dark themes in every editor"}, headers=h)
    ).is_success
    assert (await http.put("/v1/preferences/editor.theme", json={"value": "dark"}, headers=h)).is_success
    skill = {"name": "theme-switch", "description": "Switch the editor theme", "instructions": "open settings"}
    assert (await http.post("/v1/skills", json=skill, headers=h)).is_success
    logs = {"events": [{"content": "Switched the editor to a dark theme", "session_id": "s1"}]}
    assert (await http.post("/v1/logs", json=logs, headers=h)).is_success
    async with state.sessionmaker() as session:
        principal = await state.owners.authenticate(session, h["Authorization"].removeprefix("Bearer "))
    await state.embedder.embed_query("warm the model")

    with counted(state) as statements:
        async with state.sessionmaker() as session, session.begin():
            out = await state.search.search(session, principal, SearchRequest(query="dark editor theme", mode=mode))
    assert "insights" in {hit.kind for hit in out.hits}
    assert len(statements) <= BUDGET[mode], "\n---\n".join(statements)


async def test_keyword_statements_are_planned_for_their_parameters(make_user: UserFactory, state: AppState) -> None:
    """The keyword statements are one text for any query, so psycopg prepares them; a generic plan
    knows neither the tsquery nor the owner count. The lexeme round trip makes the transaction
    plan each statement for its own parameters (SearchRepository.query_lexemes)."""
    _, h = await make_user()
    async with state.sessionmaker() as session:
        principal = await state.owners.authenticate(session, h["Authorization"].removeprefix("Bearer "))
    async with state.sessionmaker() as session, session.begin():
        await state.search.search(session, principal, SearchRequest(query="deploy schema", mode="keyword"))
        assert await session.scalar(text("SELECT current_setting('plan_cache_mode')")) == "force_custom_plan"
