"""``GET /v1/export`` / ``POST /v1/import`` (who may export what) and the CLI round trip with .gz."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import httpx
from typer.testing import CliRunner

from mosaic_memory.cli.main import app as cli
from tests.conftest import ADMIN_KEY, UserFactory, auth, scratch_dir

NDJSON = {"Content-Type": "application/x-ndjson"}


async def _remember(http: httpx.AsyncClient, headers: dict[str, str], *contents: str) -> None:
    for content in contents:
        r = await http.post("/v1/insights", json={"content": content, "tags": ["api"]}, headers=headers)
        assert r.status_code == 201, r.text


def _records(body: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


async def test_an_owner_key_exports_only_its_own_memory_and_an_admin_any(
    http: httpx.AsyncClient, make_user: UserFactory, admin_headers: dict[str, str]
) -> None:
    alice, alice_h = await make_user("alice")
    bob, bob_h = await make_user("bob")
    await _remember(http, alice_h, "Alice keeps her notes in plain text files")
    await _remember(http, bob_h, "Bob's secret: the launch slips to March")

    r = await http.get("/v1/export", params={"owner": f"user:{bob}"}, headers=alice_h)
    assert r.status_code == 404 and r.json()["error"] == "OwnerNotFound"
    r = await http.get("/v1/export", headers=alice_h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    records = _records(r.content)
    assert records[0]["owners"] == [f"user:{alice}"]
    assert [x["content"] for x in records if x["type"] == "insight"] == ["Alice keeps her notes in plain text files"]
    assert "March" not in r.text

    r = await http.get("/v1/export", params={"owner": f"user:{bob}", "kinds": "insights"}, headers=admin_headers)
    assert r.status_code == 200
    assert [x["content"] for x in _records(r.content) if x["type"] == "insight"] == [
        "Bob's secret: the launch slips to March"
    ]
    r = await http.get("/v1/export", params={"kinds": "nonsense"}, headers=alice_h)
    assert r.status_code == 422 and "unknown kinds" in r.json()["detail"]
    assert (await http.get("/v1/export")).status_code == 401


async def test_import_over_rest_is_scoped_to_the_key_and_idempotent(
    http: httpx.AsyncClient, make_user: UserFactory, admin_headers: dict[str, str]
) -> None:
    _, alice_h = await make_user("alice")
    bob, bob_h = await make_user("bob")
    await _remember(http, alice_h, "The build uses make, not ninja", "Releases are cut on Fridays")
    export = (await http.get("/v1/export", params={"with_vectors": "true"}, headers=alice_h)).content

    # Alice cannot push her memory into Bob's.
    r = await http.post("/v1/import", params={"as": f"user:{bob}"}, content=export, headers={**alice_h, **NDJSON})
    assert r.status_code == 200, r.text
    assert r.json()["counts"]["insights"]["failed"] == 2 and "PermissionDenied" in r.json()["errors"][0]["reason"]
    assert (await http.get("/v1/insights", headers=bob_h)).json()["items"] == []

    # An admin can, gzipped; a dry run first writes nothing.
    target = f"user:copy-{uuid.uuid4().hex[:6]}"
    body = gzip.compress(export)
    headers = {**admin_headers, **NDJSON, "Content-Encoding": "gzip"}
    dry = await http.post("/v1/import", params={"as": target, "dry_run": "true"}, content=body, headers=headers)
    assert dry.status_code == 200 and dry.json()["dry_run"] and dry.json()["counts"]["insights"]["added"] == 2
    r = await http.get("/v1/export", params={"owner": target}, headers=admin_headers)
    assert r.status_code == 404  # the dry run did not even create the owner
    real = await http.post("/v1/import", params={"as": target}, content=body, headers=headers)
    assert real.json()["counts"]["insights"]["added"] == 2 and real.json()["reembed_reason"] is None
    again = await http.post("/v1/import", params={"as": target}, content=body, headers=headers)
    assert again.json()["counts"]["insights"] == {"added": 0, "merged": 0, "duplicate": 2, "conflict": 0, "failed": 0}

    # A file that is not an export is refused as a whole.
    r = await http.post("/v1/import", content=b'{"type": "insight"}\n', headers={**alice_h, **NDJSON})
    assert r.status_code == 422 and r.json()["error"] == "UnsupportedFormat"
    csv = await http.post("/v1/import", content=b"x", headers={**alice_h, "Content-Type": "text/csv"})
    assert csv.status_code == 415


# CLI (against the suite's cli_url server) ------------------------------------------------------
def test_cli_export_import_round_trip_with_gzip(cli_url: str) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{cli_url}/v1/admin/users", json={"name": name}, headers=auth(ADMIN_KEY))
    user_env = {"MOSAIC_URL": cli_url, "MOSAIC_API_KEY": r.json()["api_key"], "MOSAIC_CONFIG_FILE": ""}
    admin_env = {**user_env, "MOSAIC_API_KEY": ADMIN_KEY}
    for content in ("The staging database is rebuilt nightly", "Code review happens before noon"):
        httpx.post(f"{cli_url}/v1/insights", json={"content": content}, headers=auth(user_env["MOSAIC_API_KEY"]))
    httpx.put(f"{cli_url}/v1/preferences/editor", json={"value": "helix"}, headers=auth(user_env["MOSAIC_API_KEY"]))
    folder = scratch_dir("mosaic-cli-export-")
    out = Path(folder) / "memory.jsonl.gz"
    runner = CliRunner()

    exported = runner.invoke(cli, ["export", "--out", str(out)], env=user_env)
    assert exported.exit_code == 0, exported.output
    assert "exported 4 records" in exported.stderr  # two insights, one preference, its one change
    lines = gzip.decompress(out.read_bytes()).splitlines()
    assert json.loads(lines[0])["type"] == "header" and json.loads(lines[-1])["type"] == "end"
    assert not list(Path(folder).glob("*.part"))

    copy = f"user:{name}-copy"
    imported = runner.invoke(cli, ["import", str(out), "--as", copy, "--json"], env=admin_env)
    assert imported.exit_code == 0, imported.output
    report = json.loads(imported.stdout)
    assert report["counts"]["insights"]["added"] == 2 and report["counts"]["preferences"]["added"] == 2
    table = runner.invoke(cli, ["import", str(out), "--as", copy], env=admin_env)
    assert table.exit_code == 0 and "duplicate" in table.stdout

    back = runner.invoke(cli, ["export", "--owner", copy, "--kinds", "insights"], env=admin_env)
    contents = sorted(str(x["content"]) for x in _records(back.stdout_bytes) if x["type"] == "insight")
    assert contents == ["Code review happens before noon", "The staging database is rebuilt nightly"]

    denied = runner.invoke(cli, ["export", "--owner", copy], env=user_env)
    assert denied.exit_code == 1 and "OwnerNotFound" in denied.stderr and "Traceback" not in denied.output
    broken = Path(folder) / "broken.jsonl"
    broken.write_bytes(lines[0] + b"\n" + b"{not json\n")
    partial = runner.invoke(cli, ["import", str(broken), "--as", copy], env=admin_env)
    assert partial.exit_code == 3 and "line 2" in partial.stdout


def test_cli_import_maps_owners_by_name_and_keeps_unicode_line_separators(cli_url: str) -> None:
    name = f"map-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{cli_url}/v1/admin/users", json={"name": name}, headers=auth(ADMIN_KEY))
    key = r.json()["api_key"]
    admin_env = {"MOSAIC_URL": cli_url, "MOSAIC_API_KEY": ADMIN_KEY, "MOSAIC_CONFIG_FILE": ""}
    # U+2028 and U+0085 are line breaks to str.splitlines and to httpx's aiter_lines, not to JSON Lines.
    note = "First half of the note\u2028second half\u0085and a third"
    r = httpx.post(f"{cli_url}/v1/insights", json={"content": note}, headers=auth(key))
    assert r.status_code == 201, r.text
    out = Path(scratch_dir("mosaic-cli-map-")) / "memory.jsonl"
    runner = CliRunner()

    exported = runner.invoke(cli, ["export", "--owner", f"user:{name}", "--out", str(out)], env=admin_env)
    assert exported.exit_code == 0, exported.output
    mapped = f"user:{name}-mapped"
    imported = runner.invoke(cli, ["import", str(out), "--map", f"user:{name}={mapped}", "--json"], env=admin_env)
    assert imported.exit_code == 0, imported.output
    report = json.loads(imported.stdout)
    assert report["counts"]["insights"]["added"] == 1 and not report["errors"], report
    back = runner.invoke(cli, ["export", "--owner", mapped, "--kinds", "insights"], env=admin_env)
    assert back.exit_code == 0, back.output
    records = [json.loads(line) for line in back.stdout_bytes.split(b"\n") if line.strip()]
    assert [x["content"] for x in records if x["type"] == "insight"] == [note]

    bad = runner.invoke(cli, ["import", str(out), "--map", "alice"], env=admin_env)
    assert bad.exit_code == 1 and "owner mapping 'alice'" in bad.stderr and "Traceback" not in bad.output
    rest = httpx.post(
        f"{cli_url}/v1/import",
        params={"map": "user:x"},
        content=out.read_bytes(),
        headers={**auth(ADMIN_KEY), **NDJSON},
    )
    assert rest.status_code == 422 and rest.json()["error"] == "InvalidInput"
