"""The Python client's preference and skill methods, against the live app in-process."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mosaic_memory.client import AsyncMosaicClient, MosaicClientError
from tests.conftest import UserFactory, auth


def client_for(app: Any, headers: dict[str, str]) -> AsyncMosaicClient:
    key = headers["Authorization"].split()[1]
    return AsyncMosaicClient("http://mosaic.test", key, transport=httpx.ASGITransport(app=app))


async def test_preference_methods(
    app: Any, http: httpx.AsyncClient, admin_headers: dict[str, str], make_user: UserFactory
) -> None:
    name, h = await make_user()
    async with client_for(app, h) as mm:
        made = await mm.set_preference("code_review_style", "small PRs, tests first", mutable=False)
        assert made.created and not made.mutable and made.owner == f"user:{name}"
        again = await mm.set_preference("code_review_style", "small PRs, tests first, no force-push")
        assert not again.created and again.id == made.id and not again.mutable
        await mm.set_preference("tabs", {"width": 4}, scope="project:mosaic")
        assert (await mm.get_preference("tabs", scope="project:mosaic")).value == {"width": 4}
        page = await mm.list_preferences()
        assert [p.key for p in page.items] == ["code_review_style", "tabs"]
        assert [p.key for p in (await mm.list_preferences(scope="project:mosaic")).items] == ["tabs"]
        changes = await mm.preference_history("code_review_style")
        assert [c.action for c in changes] == ["update", "create"]
        assert changes[0].old_value == "small PRs, tests first"
        hits = (await mm.search("how does the user like their code reviewed?", kinds=["preferences"])).hits
        assert hits[0].id == made.id
        await mm.delete_preference("tabs", scope="project:mosaic")
        with pytest.raises(MosaicClientError) as err:
            await mm.get_preference("tabs", scope="project:mosaic")
        assert err.value.status == 404 and err.value.error == "PreferenceNotFound"
        with pytest.raises(MosaicClientError) as err:
            await mm.set_preference("bad key", 1)
        assert err.value.status == 422

    key = (await http.post("/v1/admin/keys", json={"user": name, "agent_id": "bot"}, headers=admin_headers)).json()
    async with client_for(app, auth(key["api_key"])) as bot:
        with pytest.raises(MosaicClientError) as err:
            await bot.set_preference("code_review_style", "yolo")
        assert err.value.status == 409 and err.value.error == "ImmutablePreference"
        with pytest.raises(MosaicClientError):
            await bot.delete_preference("code_review_style")
        assert (await bot.get_preference("code_review_style")).value == "small PRs, tests first, no force-push"


async def test_skill_methods(app: Any, make_user: UserFactory) -> None:
    _, h = await make_user()
    async with client_for(app, h) as mm:
        skill = await mm.create_skill(
            "deploy-to-staging",
            "Deploy the current branch to the staging environment",
            instructions="make deploy ENV=staging",
            tags=["deploy"],
        )
        await mm.create_skill("send-invoice", "Create and email a monthly invoice to a client")
        assert (await mm.get_skill(skill.id)).instructions == "make deploy ENV=staging"
        assert {s.name for s in (await mm.list_skills()).items} == {"deploy-to-staging", "send-invoice"}
        assert [s.name for s in (await mm.list_skills(tag="deploy")).items] == ["deploy-to-staging"]
        found = await mm.find_skills("push my branch to the test environment", k=1)
        assert [x.id for x in found.hits] == [skill.id]
        updated = await mm.update_skill(skill.id, tags=["deploy", "k8s"])
        assert updated.tags == ["deploy", "k8s"]
        with pytest.raises(MosaicClientError) as err:
            await mm.create_skill("send-invoice", "again")
        assert err.value.status == 409
        await mm.delete_skill(skill.id)
        with pytest.raises(MosaicClientError) as err:
            await mm.get_skill(skill.id)
        assert err.value.status == 404


async def test_openapi_documents_every_new_route(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/v1/openapi.json")).json()
    paths = doc["paths"]
    expected = {
        "/v1/preferences": {"get"},
        "/v1/preferences/{key}": {"get", "put", "delete"},
        "/v1/preferences/{key}/history": {"get"},
        "/v1/skills": {"get", "post"},
        "/v1/skills/{skill_id}": {"get", "patch", "delete"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
        for method in methods:
            assert paths[path][method].get("summary"), (path, method)
    schemas = doc["components"]["schemas"]
    for name in ("PreferencePut", "PreferenceOut", "PreferenceChange", "SkillCreate", "SkillUpdate", "SkillOut"):
        assert schemas[name].get("examples"), name
    put = paths["/v1/preferences/{key}"]["put"]
    assert {"200", "201", "422"} <= set(put["responses"])
