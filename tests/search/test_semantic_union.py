"""Every kind's nearest rows in one statement (``common/repository.union_of_parts``): the kinds' columns
agree on their types whichever kind comes first. A store without insights put preferences first,
whose tags are none: an untyped NULL there made PostgreSQL take the column for text, and the
skills' text[] after it failed every semantic and hybrid search of that user. Real model, real
database."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import UserFactory


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
async def test_a_store_without_insights_is_searched_over_every_kind(
    mode: str, http: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, h = await make_user()
    assert (await http.put("/v1/preferences/editor.theme", json={"value": "dark"}, headers=h)).is_success
    skill = {"name": "theme-switch", "description": "Switch the editor theme", "instructions": "open settings"}
    assert (await http.post("/v1/skills", json={**skill, "tags": ["editor"]}, headers=h)).is_success
    logs = {"events": [{"content": "Switched the editor to a dark theme", "session_id": "s1"}]}
    assert (await http.post("/v1/logs", json=logs, headers=h)).is_success

    r = await http.post("/v1/search", json={"query": "dark editor theme", "mode": mode}, headers=h)
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert {"preferences", "skills"} <= {x["kind"] for x in hits}
    assert next(x for x in hits if x["kind"] == "skills")["tags"] == ["editor"]
    assert all(x["tags"] == [] for x in hits if x["kind"] == "preferences")
