"""``mosaic-memory federation peer|grant|audit`` against the suite's database, through the real CLI app."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from typer.testing import CliRunner

from mosaic_memory.cli.main import app
from tests.conftest import UserFactory


async def cli(env: dict[str, str], *args: str) -> Any:
    """The command in a thread: the CLI runs its own event loop."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env={**env, "COLUMNS": "200"})


def ok(result: Any) -> Any:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def one_line_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return str(lines[0])


async def test_peers_grants_and_audit(cli_env: dict[str, str], make_user: UserFactory) -> None:
    name, _ = await make_user("fed")
    peer = f"cli-{uuid.uuid4().hex[:8]}"
    ok(await cli(cli_env, "federation", "peer", "add", peer, "https://127.0.0.1:9"))
    peers = {p["name"]: p for p in json.loads(ok(await cli(cli_env, "federation", "peer", "list", "--json")).stdout)}
    assert peers[peer]["url"] == "https://127.0.0.1:9" and peers[peer]["last_contact_at"] is None
    try:
        made = json.loads(
            ok(
                await cli(
                    cli_env,
                    *("federation", "grant", "create", "--peer", peer, "--owner", f"user:{name}"),
                    *("--kinds", "insights,skills", "--tags", "work", "--expires", "2w", "--json"),
                )
            ).stdout
        )
        assert made["kinds"] == ["insights", "skills"] and made["tags"] == ["work"] and made["active"]
        listed = json.loads(ok(await cli(cli_env, "federation", "grant", "list", "--peer", peer, "--json")).stdout)
        assert [g["id"] for g in listed] == [made["id"]]
        ok(await cli(cli_env, "federation", "grant", "revoke", made["id"]))
        revoked = json.loads(ok(await cli(cli_env, "federation", "grant", "list", "--peer", peer, "--json")).stdout)
        assert revoked[0]["active"] is False and revoked[0]["revoked_at"] is not None
        audit = json.loads(ok(await cli(cli_env, "federation", "audit", "--peer", peer, "--json")).stdout)
        assert audit == []  # nothing was ever read through it

        # bad input: one line, exit 1, nothing stored
        assert "url" in one_line_error(await cli(cli_env, "federation", "peer", "add", "x", "http://plain.example"))
        bad_kind = await cli(cli_env, "federation", "grant", "create", "--peer", peer, "--owner", f"user:{name}")
        assert bad_kind.exit_code != 0
        unknown = await cli(cli_env, "federation", "grant", "create", "--peer", "nobody", "--owner", f"user:{name}")
        assert unknown.exit_code != 0
        one_line_error(await cli(cli_env, "federation", "grant", "revoke", str(uuid.uuid4())))
        after = json.loads(ok(await cli(cli_env, "federation", "grant", "list", "--peer", peer, "--json")).stdout)
        assert len(after) == 1
    finally:
        ok(await cli(cli_env, "federation", "peer", "remove", peer))
    names = {p["name"] for p in json.loads(ok(await cli(cli_env, "federation", "peer", "list", "--json")).stdout)}
    assert peer not in names and "x" not in names
