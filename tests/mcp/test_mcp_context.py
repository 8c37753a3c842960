"""``get_context`` over both transports: the same block as POST /v1/context, within its budget,
preferences first, only the key's own memory."""

from __future__ import annotations

import httpx

from embeddings.tokens import BundledTokenCounter
from mosaic_memory.context import CONTEXT_CLOSE, CONTEXT_OPEN
from tests.conftest import UserFactory
from tests.mcp.conftest import Connect, error_text, key_of, payload


async def test_get_context(connect: Connect, make_user: UserFactory, http: httpx.AsyncClient) -> None:
    _, h = await make_user("mcp-ctx")
    await http.put("/v1/preferences/editor_theme", json={"value": "dark"}, headers=h)
    await http.put("/v1/preferences/review", json={"value": "small PRs", "scope": "project:mosaic"}, headers=h)
    facts = [
        "Staging deploys go through the platform team's Argo CD pipeline",
        "A staging deploy needs the database migrations applied first",
        "Deploys to staging are frozen on Fridays after 3 pm",
        "The staging cluster is reset every Sunday night",
        "Rolling back a staging deploy uses argocd app rollback",
        "Failed staging deploys page the platform on-call engineer",
    ]
    await http.post("/v1/insights/batch", json={"items": [{"content": f} for f in facts]}, headers=h)
    async with connect(key_of(h)) as client:
        out = payload(await client.call_tool("get_context", {"query": "deploying to staging", "project": "mosaic"}))
        lines = out["text"].split("\n")
        assert lines[0] == CONTEXT_OPEN and lines[-1] == CONTEXT_CLOSE
        assert lines[1:4] == ["## Preferences", "- review (project:mosaic): small PRs", "- editor_theme: dark"]
        assert out["included"]["preferences"] == 2 and out["included"]["insights"] >= 1
        assert out["token_budget"] == 1500 and set(out) == {"text", "tokens", "token_budget", "included", "omitted"}
        rest = (
            await http.post("/v1/context", json={"query": "deploying to staging", "project": "mosaic"}, headers=h)
        ).json()
        assert rest["text"] == out["text"]

        small = payload(await client.call_tool("get_context", {"query": "deploying to staging", "token_budget": 60}))
        assert small["tokens"] <= 60 and BundledTokenCounter().count([small["text"]])[0] == small["tokens"]
        assert small["omitted"]["insights"] > 0 and small["text"].split("\n")[-2].startswith("[left out")

        assert "InvalidInput" in error_text(await client.call_tool("get_context", {"token_budget": 10}))

    _, other = await make_user("mcp-ctx")
    async with connect(key_of(other)) as client:
        empty = payload(await client.call_tool("get_context", {"query": "deploying to staging", "project": "mosaic"}))
    assert empty["text"] == "" and empty["included"] == {"preferences": 0, "insights": 0, "skills": 0}
