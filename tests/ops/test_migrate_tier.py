"""migrate-tier against a second real PostgreSQL: killed with SIGKILL mid-copy and run again, it
ends with the target equal to the source row for row; --dry-run changes nothing; another
instance's data is refused; the source is never written; the target's password is never shown."""

from __future__ import annotations

import os
import signal
import time
import tomllib
from pathlib import Path

import psycopg

from tests.ops.conftest import Instance, Server, fingerprint, scalar

CANARY = "canary-Pw-7c1e55"


def _quiet(*outputs: str) -> None:
    for text in outputs:
        assert CANARY not in text, "the target's password appeared in the output"


def _indexes(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'").fetchall()
    return {(str(name), str(definition)) for name, definition in rows}


def _target_rows(url: str, table: str) -> int:
    try:
        return int(scalar(url, f"SELECT count(*) FROM {table}"))
    except psycopg.Error:
        return 0  # the database or its schema is not there yet


async def test_killed_mid_copy_then_rerun_ends_equal(source: Instance, target_server: Server, tmp_path: Path) -> None:
    to = target_server.url("mosaic_target", password=CANARY)
    plain = target_server.url("mosaic_target")
    with psycopg.connect(target_server.uri, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "mosaic_target" WITH (FORCE)')
    before = fingerprint(source.url)
    total_logs = len(before["agent_logs"])

    # The target does not exist: a dry run says it would create it, and creates nothing.
    dry = source.cli("migrate-tier", "--to", to, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "create the database" in dry.stdout and "nothing was changed" in dry.stdout
    assert str(total_logs) in dry.stdout
    assert not target_server.exists("mosaic_target")
    _quiet(dry.stdout, dry.stderr)

    # Start the copy in small batches and kill it with SIGKILL once agent_logs is partly copied.
    proc = source.popen("migrate-tier", "--to", to, "--batch", "50")
    deadline = time.monotonic() + 240
    copied = 0
    while time.monotonic() < deadline and proc.poll() is None:
        copied = _target_rows(plain, "agent_logs")
        if copied >= 150:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the copy ended before it could be killed: {proc.communicate()}"
    os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    _quiet(out, err)
    partial = _target_rows(plain, "agent_logs")
    assert 0 < partial < total_logs, f"killed outside the copy window ({partial} of {total_logs})"
    assert fingerprint(source.url) == before, "migrate-tier wrote to the source"
    # The vector indexes were set aside for the copy, their definitions kept on the target.
    assert scalar(plain, "SELECT count(*) FROM mosaic_migrate_tier.dropped_indexes") >= 1

    # A dry run over the partial copy reports a resume and changes nothing on the target.
    partial_print = fingerprint(plain)
    dry = source.cli("migrate-tier", "--to", to, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "resume" in dry.stdout
    assert fingerprint(plain) == partial_print
    _quiet(dry.stdout, dry.stderr)

    # The source keeps being used between the runs: rows already copied go, one changes.
    with psycopg.connect(source.url, autocommit=True) as conn:
        conn.execute("DELETE FROM agent_logs WHERE id IN (SELECT id FROM agent_logs ORDER BY owner_id, id LIMIT 15)")
        conn.execute(
            "UPDATE insights SET content = content || ' (edited)', embedding = NULL "
            "WHERE id = (SELECT id FROM insights ORDER BY owner_id, id LIMIT 1)"
        )
    expected = fingerprint(source.url)

    config = tmp_path / "config.toml"
    config.write_text('# my settings\ntier = "local"\nlog_level = "WARNING"\n')
    again = source.cli("migrate-tier", "--to", to, "--batch", "500", "--switch", MOSAIC_CONFIG_FILE=str(config))
    assert again.returncode == 0, again.stderr
    assert "verified" in again.stdout
    _quiet(again.stdout, again.stderr)
    assert fingerprint(plain) == expected, "the target differs from the source after the re-run"
    assert _indexes(plain) == _indexes(source.url), "the target's indexes differ from the source's"
    assert scalar(plain, "SELECT to_regnamespace('mosaic_migrate_tier')") is None
    assert fingerprint(source.url) == expected, "migrate-tier wrote to the source"

    # --switch wrote the one setting, kept the rest, and left the file to its owner only.
    written = tomllib.loads(config.read_text())
    assert written["database_url"] == to
    assert written["tier"] == "standalone" and written["log_level"] == "WARNING"
    assert "# my settings" in config.read_text()
    assert config.stat().st_mode & 0o077 == 0

    # The identity sequence continues past the copied values on the target.
    max_seq = scalar(plain, "SELECT max(seq) FROM agent_logs")
    owner = scalar(plain, "SELECT id FROM owners WHERE name = 'user-1'")
    new_seq = scalar(
        plain,
        "INSERT INTO agent_logs (owner_id, id, content, content_hash) VALUES (%s, gen_random_uuid(), 'after', 'h') "
        "RETURNING seq",
        (owner,),
    )
    assert new_seq > max_seq
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("DELETE FROM agent_logs WHERE content = 'after' AND content_hash = 'h'")

    # Running it again over a complete copy changes nothing and still verifies.
    third = source.cli("migrate-tier", "--to", to)
    assert third.returncode == 0, third.stderr
    assert fingerprint(plain) == expected
    _quiet(third.stdout, third.stderr)


async def test_refuses_another_instances_data(source: Instance, target_server: Server) -> None:
    other = target_server.create("other_instance")
    with psycopg.connect(other, autocommit=True):
        pass
    from mosaic_memory.db import run_migrations

    await run_migrations(other)  # a fresh schema: its own instance id
    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute("INSERT INTO owners (id, kind, name) VALUES (gen_random_uuid(), 'user', 'someone-else')")
    held = fingerprint(other)
    to = target_server.url("other_instance", password=CANARY)
    for extra in ([], ["--dry-run"]):
        refused = source.cli("migrate-tier", "--to", to, *extra)
        assert refused.returncode != 0
        assert "another instance" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        _quiet(refused.stdout, refused.stderr)
    assert fingerprint(other) == held


def test_unreachable_target_is_one_line_without_the_password(source: Instance, tmp_path: Path) -> None:
    to = f"postgresql://postgres:{CANARY}@/nowhere?host={tmp_path}"
    failed = source.cli("migrate-tier", "--to", to)
    assert failed.returncode != 0
    assert "cannot connect" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    _quiet(failed.stdout, failed.stderr)
    bad = source.cli("migrate-tier", "--to", f"mysql://root:{CANARY}@db/x")
    assert bad.returncode != 0 and "not a PostgreSQL URL" in bad.stderr
    _quiet(bad.stdout, bad.stderr)
