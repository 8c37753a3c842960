"""Canary secrets over every REST write path and the import of an export file: the stored rows, the
export and every search never hold a canary; refuse mode answers 422 and stores nothing; prose
about passwords is left alone."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from mosaic_memory.client import AsyncMosaicClient
from tests.canaries import assert_clean, canaries, everything, leaky_text
from tests.conftest import UserFactory

ROOT = Path(__file__).resolve().parents[2]


async def test_insight_single_batch_and_patch_are_redacted(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user("sec")
    c = canaries()
    one = await http.post(
        "/v1/insights", json={"content": leaky_text(c), "metadata": {"token": c["password"]}}, headers=h
    )
    assert one.status_code == 201, one.text
    body = one.json()
    assert body["secrets_redacted"] == 6  # five in the text, one under a secret's name in metadata
    assert "[REDACTED:aws-key]" in body["content"] and "[REDACTED:private-key]" in body["content"]
    assert "postgresql://deploy:[REDACTED:url-password]@db.internal" in body["content"]
    assert body["metadata"] == {"token": "[REDACTED:token]"}
    assert_clean((await http.get(f"/v1/insights/{body['id']}", headers=h)).text, c)

    c2 = canaries()
    batch = await http.post(
        "/v1/insights/batch",
        json={"items": [{"content": f"staging token {c2['github-token']}"}, {"content": "nothing secret here"}]},
        headers=h,
    )
    assert batch.status_code == 201, batch.text
    out = batch.json()
    assert out["secrets_redacted"] == 1
    assert [i["secrets_redacted"] for i in out["items"]] == [1, 0]
    assert out["items"][0]["content"] == "staging token [REDACTED:github-token]"

    c3 = canaries()
    patched = await http.patch(
        f"/v1/insights/{out['items'][1]['id']}", json={"content": f"rotated to {c3['aws-key']}"}, headers=h
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["content"] == "rotated to [REDACTED:aws-key]" and patched.json()["secrets_redacted"] == 1
    for leaked in (c, c2, c3):
        await everything(http, h, leaked)


async def test_preference_put_skills_and_logs_are_redacted(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user("sec")
    c = canaries()
    pref = await http.put(
        "/v1/preferences/deploy_target",
        json={"value": {"url": f"https://ci:{c['url-password']}@ci.example.com", "api_key": c["password"]}},
        headers=h,
    )
    assert pref.status_code == 201, pref.text
    assert pref.json()["value"] == {
        "url": "https://ci:[REDACTED:url-password]@ci.example.com",
        "api_key": "[REDACTED:api-key]",
    }
    assert pref.json()["secrets_redacted"] == 2
    replaced = await http.put("/v1/preferences/deploy_target", json={"value": leaky_text(c)}, headers=h)
    assert replaced.status_code == 200 and replaced.json()["secrets_redacted"] == 5

    skill = await http.post(
        "/v1/skills",
        json={
            "name": "deploy",
            "description": f"Deploy with the key {c['aws-key']}",
            "instructions": leaky_text(c),
            "metadata": {"password": c["password"]},
        },
        headers=h,
    )
    assert skill.status_code == 201, skill.text
    assert skill.json()["secrets_redacted"] == 1 + 5 + 1
    assert skill.json()["description"] == "Deploy with the key [REDACTED:aws-key]"
    patched = await http.patch(
        f"/v1/skills/{skill.json()['id']}", json={"instructions": f"use {c['github-token']}"}, headers=h
    )
    assert patched.status_code == 200 and patched.json()["instructions"] == "use [REDACTED:github-token]"
    assert patched.json()["secrets_redacted"] == 1

    logs = await http.post(
        "/v1/logs",
        json={
            "events": [
                {
                    "session_id": "s1",
                    "content": leaky_text(c),
                    "metadata": {"env": {"GITHUB_TOKEN": c["github-token"]}},
                },
                {"session_id": "s1", "content": "ran the tests: 12 passed"},
            ]
        },
        headers=h,
    )
    assert logs.status_code == 201, logs.text
    assert logs.json()["secrets_redacted"] == 6
    for log_id in logs.json()["ids"]:
        assert_clean((await http.get(f"/v1/logs/{log_id}", headers=h)).text, c)
    await everything(http, h, c)


async def test_refuse_mode_answers_422_and_stores_nothing(
    http: httpx.AsyncClient, make_user: UserFactory, refuse_secrets: None
) -> None:
    _, h = await make_user("sec")
    c = canaries()
    text = f"the key is {c['aws-key']} and the token {c['github-token']}"
    ok = await http.post("/v1/insights", json={"content": "a harmless fact"}, headers=h)
    skill = await http.post("/v1/skills", json={"name": "ship", "description": "ship it"}, headers=h)
    assert ok.status_code == 201 and skill.status_code == 201
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/insights", {"content": text}),
        ("POST", "/v1/insights/batch", {"items": [{"content": "fine"}, {"content": text}]}),
        ("PATCH", f"/v1/insights/{ok.json()['id']}", {"content": text}),
        ("PUT", "/v1/preferences/k", {"value": {"password": c["password"]}}),
        ("POST", "/v1/skills", {"name": "leak", "description": text}),
        ("PATCH", f"/v1/skills/{skill.json()['id']}", {"instructions": text}),
        (
            "POST",
            "/v1/logs",
            {"events": [{"session_id": "s", "content": "fine"}, {"session_id": "s", "content": text}]},
        ),
    ]
    for method, path, body_in in calls:
        r = await http.request(method, path, json=body_in, headers=h)
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["error"] == "SecretDetected", body
        assert set(body["kinds"]) <= {"aws-key", "github-token", "password"} and body["kinds"]
        assert_clean(r.text, c)  # named by kind, never quoted
    insights = (await http.get("/v1/insights", headers=h)).json()["items"]
    assert [i["content"] for i in insights] == ["a harmless fact"]  # the batch's harmless item neither
    assert (await http.get("/v1/preferences", headers=h)).json()["items"] == []
    assert [s["name"] for s in (await http.get("/v1/skills", headers=h)).json()["items"]] == ["ship"]
    assert (await http.get("/v1/skills/" + skill.json()["id"], headers=h)).json()["instructions"] == ""
    assert (await http.get("/v1/logs", headers=h)).json()["items"] == []
    await everything(http, h, c)


async def test_prose_about_passwords_is_not_redacted(http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user("sec")
    prose = (
        "Our password policy: passwords need at least 12 characters and rotate every 90 days. "
        "The API key rotation job runs monthly, the token bucket allows 100 requests per minute, "
        "max_tokens=4096 and tokenizer=all-MiniLM-L6-v2; see https://example.com:8443/docs?page=2. "
        "Set password=${DB_PASSWORD} in the template, never the value itself."
    )
    r = await http.post("/v1/insights", json={"content": prose}, headers=h)
    assert r.status_code == 201 and r.json()["content"] == prose and r.json()["secrets_redacted"] == 0
    pref = await http.put("/v1/preferences/secrets_policy", json={"value": prose}, headers=h)
    assert pref.json()["value"] == prose and pref.json()["secrets_redacted"] == 0


def _export_file(path: Path, owner: str, c: dict[str, str]) -> None:
    now = "2026-11-30T09:12:00+00:00"
    ids = [str(uuid.uuid4()) for _ in range(6)]
    records: list[dict[str, Any]] = [
        {
            "type": "header",
            "format": "mosaic-memory-export",
            "version": 1,
            "instance": "laptop",
            "exported_at": now,
            "embedding": {"model": "all-MiniLM-L6-v2", "dimensions": 384},
            "with_vectors": False,
        },
        {"type": "log", "owner": owner, "id": ids[0], "session_id": "s", "content": leaky_text(c),
         "metadata": {"api_key": c["password"]}, "occurred_at": now, "created_at": now},
        {"type": "insight", "owner": owner, "id": ids[1], "content": f"the CI key is {c['aws-key']}",
         "valid_from": now, "created_at": now, "updated_at": now},
        {"type": "preference", "owner": owner, "id": ids[2], "key": "ci_token", "value": c["github-token"],
         "created_at": now, "updated_at": now},
        {"type": "preference_change", "owner": owner, "id": ids[3], "preference_id": ids[2], "key": "ci_token",
         "old_value": None, "new_value": c["github-token"], "action": "create", "changed_at": now},
        {"type": "skill", "owner": owner, "id": ids[4], "name": "release", "description": "Cut a release",
         "instructions": f"upload the wheel with password={c['password']}",
         "created_at": now, "updated_at": now},
        {"type": "end", "records": 5},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


async def test_import_of_a_file_is_redacted(
    app: Any, http: httpx.AsyncClient, make_user: UserFactory, tmp_path: Path
) -> None:
    name, h = await make_user("sec")
    c = canaries()
    path = tmp_path / "leaky.jsonl"
    _export_file(path, f"user:{name}", c)
    key = h["Authorization"].removeprefix("Bearer ")
    async with AsyncMosaicClient("http://mosaic.test", key, transport=httpx.ASGITransport(app=app)) as mm:
        report = await mm.import_file(path)
    assert report.errors == [] and {k: v.added for k, v in report.counts.items()} == {
        "logs": 1,
        "insights": 1,
        "preferences": 2,
        "skills": 1,
    }
    assert report.secrets_redacted == 5 + 1 + 1 + 1 + 1 + 1
    assert (await http.get("/v1/preferences/ci_token", headers=h)).json()["value"] == "[REDACTED:github-token]"
    await everything(http, h, c)


async def test_import_in_refuse_mode_fails_the_leaky_records_only(
    app: Any, http: httpx.AsyncClient, make_user: UserFactory, tmp_path: Path, refuse_secrets: None
) -> None:
    name, h = await make_user("sec")
    c = canaries()
    path = tmp_path / "leaky.jsonl"
    _export_file(path, f"user:{name}", c)
    lines = path.read_text().splitlines()
    clean = {"type": "insight", "owner": f"user:{name}", "id": str(uuid.uuid4()), "content": "a clean fact",
             "valid_from": "2026-11-30T09:12:00+00:00", "created_at": "2026-11-30T09:12:00+00:00",
             "updated_at": "2026-11-30T09:12:00+00:00"}  # fmt: skip
    path.write_text("\n".join([*lines[:-1], json.dumps(clean), '{"type":"end","records":6}']) + "\n")
    key = h["Authorization"].removeprefix("Bearer ")
    async with AsyncMosaicClient("http://mosaic.test", key, transport=httpx.ASGITransport(app=app)) as mm:
        report = await mm.import_file(path)
    assert sorted(e.line for e in report.errors) == [2, 3, 4, 5, 6]
    assert all(e.reason.startswith("SecretDetected: ") for e in report.errors)
    assert report.counts["insights"].added == 1 and report.secrets_redacted == 0
    assert [i["content"] for i in (await http.get("/v1/insights", headers=h)).json()["items"]] == ["a clean fact"]
    await everything(http, h, c)


async def test_the_cli_says_what_it_redacted(live_url: str, http: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, h = await make_user("sec")
    c = canaries()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env |= {
        "MOSAIC_URL": live_url,
        "MOSAIC_API_KEY": h["Authorization"].removeprefix("Bearer "),
        "MOSAIC_CONFIG_FILE": "",
    }
    for args, said in (
        (["remember", f"the key is {c['aws-key']}"], "1 secret was redacted"),
        (["logs", "add", leaky_text(c), "--session", "s1"], "5 secrets were redacted"),
    ):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mosaic_memory", *args, env=env, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, stderr.decode()
        assert said in stderr.decode() and c["aws-key"] not in stdout.decode() + stderr.decode()
    await everything(http, h, c)
