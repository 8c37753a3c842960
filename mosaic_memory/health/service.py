"""The tier detector: what is configured, probed in order with short timeouts, each failure with
its cause and its remedy.

Probes, in order (a probe whose prerequisite failed is reported as ``skip``):

``config``               the settings and, on the standalone tier, the database URL's form
``data_dir``             local tier: the data directory can be created and written, and (as root)
                         reached by the embedded server's own user
``database.server``      standalone: something answers at the URL's host and port (or socket);
                         local: the embedded PostgreSQL starts or is joined
``database.auth``        the server accepts the user and password
``database.exists``      the database of the URL exists
``pgvector``             the ``vector`` extension: available, installed, at least 0.7 (0.8 for
                         iterative index scans)
``migrations``           the schema is at this version's head
``row_level_security``   (schema at head) the database's owner wall under the service's own
                         filter: ok when it stands, warn (with how a DBA adds it) when absent
``embedding_model``      the configured model loads, and matches the model and dimension of the
                         stored vectors
``federation.certificate`` (once ``federation init`` ran) this instance's certificate: present,
                         valid now, days to expiry
``federation.peer.NAME`` each peer: its listener answers a mutual-TLS handshake in time

No message carries the database password: every text passes through :meth:`Detector.scrub`.
"""

from __future__ import annotations

import asyncio
import math
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from mosaic_memory.config import Settings
from mosaic_memory.errors import MosaicError
from mosaic_memory.health.repository import HealthRepository
from mosaic_memory.health.schemas import ProbeResult, Report, Status
from mosaic_memory.tiers import Database, open_database, open_permissions_problem, redact_database_url

__all__ = ["MIN_PGVECTOR", "MIN_PGVECTOR_ITERATIVE", "Detector", "judge_pgvector"]

MIN_PGVECTOR = (0, 7, 0)
MIN_PGVECTOR_ITERATIVE = (0, 8, 0)

_PGVECTOR_PACKAGE = (
    "install the package for your PostgreSQL version (postgresql-NN-pgvector on Debian and Ubuntu, "
    "pgvector on Homebrew; see github.com/pgvector/pgvector), or use the embedded tier (unset "
    "MOSAIC_DATABASE_URL)"
)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (3 - len(parts)))


def judge_pgvector(
    available: str | None, installed: str | None, *, schema_present: bool, database: str
) -> tuple[Status, str, str | None]:
    """The verdict on pgvector from the server's catalog: (status, detail, remedy).

    ``available`` is the version the server could install (None: not installed on the server),
    ``installed`` the one created in ``database``; ``schema_present`` whether our migrations ran
    there (then a missing extension means someone dropped it)."""
    if available is None:
        return "fail", "pgvector is not installed in this server", _PGVECTOR_PACKAGE
    if installed is None:
        if _version(available) < MIN_PGVECTOR:
            return (
                "fail",
                f"this server offers pgvector {available}, older than 0.7",
                f"upgrade the pgvector package to 0.8 or later; {_PGVECTOR_PACKAGE.split(', or ')[0]}",
            )
        if schema_present:
            return (
                "fail",
                f"the vector extension is missing from database {database!r} although its schema was "
                "created (it was dropped, and with it every vector column)",
                "restore the database from a backup, or create a fresh database and 'mosaic-memory import' an export",
            )
        return (
            "warn",
            f"pgvector {available} is available but not yet created in database {database!r}",
            "the first migration runs CREATE EXTENSION vector: start 'mosaic-memory serve' or run "
            "'mosaic-memory db upgrade' as a role allowed to create extensions (or have a superuser run "
            "CREATE EXTENSION vector in that database)",
        )
    version = _version(installed)
    if version < MIN_PGVECTOR:
        return (
            "fail",
            f"pgvector {installed} is older than 0.7 (halfvec, binary vectors and HNSW filtering are missing)",
            "upgrade the package to 0.8 or later and run ALTER EXTENSION vector UPDATE in the database",
        )
    if version < MIN_PGVECTOR_ITERATIVE:
        return (
            "warn",
            f"pgvector {installed}: iterative index scans need 0.8, so searches of a large owner among many "
            "lose recall (they fall back to exact scans only below the exact-scan threshold)",
            "upgrade the package to 0.8 or later and run ALTER EXTENSION vector UPDATE in the database",
        )
    if _version(available) > version:
        return (
            "warn",
            f"pgvector {installed} (the server has {available})",
            "run ALTER EXTENSION vector UPDATE in the database to use the installed package",
        )
    return "ok", f"pgvector {installed}", None


class Detector:
    """Runs the probes of ``settings``' tier. ``timeout`` bounds each network probe (seconds); the
    model gets ``model_timeout`` (loading a model from disk is not a network wait).

    With ``keep_database`` (``serve``) the resolved database stays open afterwards in
    :attr:`database`, so the embedded server is not stopped and started again; the caller closes it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = 5.0,
        model_timeout: float = 120.0,
        check_model: bool = True,
        keep_database: bool = False,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.model_timeout = model_timeout
        self.check_model = check_model
        self.keep_database = keep_database
        self.database: Database | None = None
        self._secrets: list[str] = []
        if settings.database_url is not None:
            self._remember_password(settings.database_url.get_secret_value())

    # -- helpers ---------------------------------------------------------------------------------
    def _remember_password(self, url: str) -> None:
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            self._secrets.append(password)
        self._secrets.append(url)

    def scrub(self, text: str | None) -> str | None:
        """``text`` without the database URL or its password (belt and braces: no probe quotes them)."""
        if text is None:
            return None
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text

    async def _timed(self, report: Report, name: str, probe: Callable[[], Awaitable[ProbeResult]]) -> ProbeResult:
        started = time.perf_counter()
        try:
            result = await probe()
        except Exception as exc:  # a probe must report, never crash the report
            result = ProbeResult(name, "fail", f"the probe failed unexpectedly: {type(exc).__name__}: {exc}")
        result.duration_ms = (time.perf_counter() - started) * 1000
        result.detail = self.scrub(result.detail) or ""
        result.remedy = self.scrub(result.remedy)
        report.probes.append(result)
        return result

    @staticmethod
    def _skip(report: Report, name: str, why: str) -> None:
        report.probes.append(ProbeResult(name, "skip", f"not checked: {why}"))

    # -- the run ---------------------------------------------------------------------------------
    async def run(self) -> Report:
        cfg = self.settings
        tier = cfg.effective_tier
        shown = redact_database_url(cfg.database_url.get_secret_value()) if cfg.database_url is not None else None
        report = Report(tier=tier, database=shown if tier == "standalone" else None)
        try:
            await self._run(report)
        finally:
            if self.database is not None and not self.keep_database:
                self.database.close()
                self.database = None
        return report

    async def _run(self, report: Report) -> None:
        tier = report.tier
        config = await self._timed(report, "config", self._config)
        if config.status == "fail":
            for name in ("database.server", "database.auth", "database.exists", "pgvector", "migrations"):
                self._skip(report, name, "the configuration is invalid")
            return
        if tier == "local":
            data_dir = await self._timed(report, "data_dir", self._data_dir)
            server_ok = data_dir.status != "fail"
        else:
            server_ok = True
        if server_ok:
            server_ok = (await self._timed(report, "database.server", self._server)).status != "fail"
        else:
            self._skip(report, "database.server", "the data directory is unusable")
        conn = None
        if server_ok:
            conn = await self._connect(report)
        else:
            for name in ("database.auth", "database.exists"):
                self._skip(report, name, "the server is unreachable")
        schema_ready = False
        schema_note = "the database could not be checked"
        try:
            if conn is None:
                for name in ("pgvector", "migrations"):
                    self._skip(report, name, "no connection to the database")
            else:
                repo = HealthRepository(conn)
                present, revision = await repo.schema_revision()
                vector = await self._timed(report, "pgvector", lambda: self._pgvector(repo, present))
                migrations = await self._timed(report, "migrations", lambda: self._migrations(present, revision))
                schema_ready = migrations.status == "ok" and vector.status != "fail"
                if migrations.status == "ok":
                    await self._timed(report, "row_level_security", lambda: self._row_security(repo))
                schema_note = "pgvector is missing" if vector.status == "fail" else "the schema is not at head yet"
        finally:
            if conn is not None:
                await conn.close()
        if self.check_model:
            await self._timed(report, "embedding_model", lambda: self._model(schema_ready, schema_note))
        await self._federation(report, schema_ready)

    # -- probes ----------------------------------------------------------------------------------
    async def _config(self) -> ProbeResult:
        cfg = self.settings
        if cfg.effective_tier == "standalone":
            try:
                open_database(cfg)  # validates the URL without connecting
            except MosaicError as exc:
                return ProbeResult(
                    "config",
                    "fail",
                    exc.detail,
                    "set MOSAIC_DATABASE_URL=postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or unset it "
                    "for the embedded tier",
                )
            return ProbeResult(
                "config",
                "ok",
                f"tier standalone, database {redact_database_url(self._url())}",
                facts={"tier": "standalone"},
            )
        return ProbeResult(
            "config",
            "ok",
            f"tier local, data in {cfg.data_dir}",
            facts={"tier": "local", "data_dir": str(cfg.data_dir)},
        )

    async def _data_dir(self) -> ProbeResult:
        path = self.settings.data_dir
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        facts: dict[str, Any] = {"path": str(path), "exists": path.exists()}
        if not existing.is_dir():
            return ProbeResult(
                "data_dir", "fail", f"{existing} is not a directory", "set MOSAIC_DATA_DIR to a directory", facts=facts
            )
        if not os.access(existing, os.W_OK | os.X_OK):
            what = (
                f"the data directory {path} is not writable by this user"
                if existing == path
                else f"{existing} is not writable by this user, so the data directory {path} cannot be created"
            )
            return ProbeResult(
                "data_dir",
                "fail",
                what,
                f"give this user write access (chown or chmod {existing}) or set MOSAIC_DATA_DIR to a writable place",
                facts=facts,
            )
        problem = open_permissions_problem(self.settings)
        if problem:
            return ProbeResult("data_dir", "fail", problem.split(". ")[0], problem.split(". ", 1)[1], facts=facts)
        facts["mode"] = oct(path.stat().st_mode & 0o777) if path.exists() else None
        note = "" if path.exists() else " (created at first start)"
        return ProbeResult("data_dir", "ok", f"{path} is usable{note}", facts=facts)

    async def _server(self) -> ProbeResult:
        if self.settings.effective_tier == "local":
            return await self._embedded()
        host, port = _address(self._url())
        where = host if host.startswith("/") else f"{host}:{port}"
        facts: dict[str, Any] = {"host": host, "port": port}
        remedy = (
            "start PostgreSQL there, or correct the host and port in MOSAIC_DATABASE_URL (and any firewall "
            "between), or use the embedded tier (unset MOSAIC_DATABASE_URL)"
        )
        try:
            if host.startswith("/"):
                opening = asyncio.open_unix_connection(os.path.join(host, f".s.PGSQL.{port}"))
            else:
                opening = asyncio.open_connection(host, port)
            _, writer = await asyncio.wait_for(opening, self.timeout)
        except TimeoutError:
            return ProbeResult(
                "database.server", "fail", f"no answer from {where} within {self.timeout:g} s", remedy, facts=facts
            )
        except OSError as exc:
            import socket

            if isinstance(exc, socket.gaierror):
                reason = f"the host name {host!r} does not resolve"
            elif isinstance(exc, ConnectionRefusedError | FileNotFoundError):
                reason = f"nothing listens at {where} (connection refused)"
            else:
                reason = f"{where} is unreachable: {exc.strerror or exc}"
            return ProbeResult("database.server", "fail", reason, remedy, facts=facts)
        writer.close()
        return ProbeResult("database.server", "ok", f"{where} answers", facts=facts)

    async def _embedded(self) -> ProbeResult:
        try:
            self.database = await asyncio.to_thread(open_database, self.settings)
        except MosaicError as exc:
            return ProbeResult(
                "database.server",
                "fail",
                f"the embedded PostgreSQL did not start: {exc.detail}",
                "see 'mosaic-memory db status' (who holds it) and the server log "
                f"{self.settings.data_dir / 'pg' / 'log'}",
            )
        return ProbeResult(
            "database.server",
            "ok",
            f"embedded PostgreSQL running in {self.settings.data_dir / 'pg'}",
            facts={"pgdata": str(self.settings.data_dir / "pg")},
        )

    def _url(self) -> str:
        """The database URL, password included: the embedded server's, or MOSAIC_DATABASE_URL."""
        if self.database is not None:
            return self.database.url
        assert self.settings.database_url is not None  # the standalone tier has one (config probe)
        return self.settings.database_url.get_secret_value()

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[Any]:
        """A short-lived SQLAlchemy session on the database, for checks that go through a service."""
        from mosaic_memory.db import create_engine_for, create_sessionmaker

        engine = create_engine_for(self._url(), pool_size=1, connect_timeout=self.timeout)
        try:
            async with create_sessionmaker(engine)() as session:
                yield session
        finally:
            await engine.dispose()

    def _conninfo(self) -> tuple[str, str]:
        """(a libpq URL for psycopg, the database name)."""
        from sqlalchemy.engine import make_url

        url = make_url(self._url()).set(drivername="postgresql")
        return url.render_as_string(hide_password=False), url.database or "postgres"

    async def _connect(self, report: Report) -> Any:
        """Connect, reporting ``database.auth`` and ``database.exists``; the connection or None."""
        import psycopg

        conninfo, name = self._conninfo()
        started = time.perf_counter()
        conn = None
        auth: ProbeResult
        exists: ProbeResult | None = None
        try:
            conn = await asyncio.wait_for(
                psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=max(2, math.ceil(self.timeout))
                ),
                self.timeout,
            )
            version = await HealthRepository(conn).server_version()
            auth = ProbeResult("database.auth", "ok", "the server accepted the credentials")
            exists = ProbeResult(
                "database.exists", "ok", f"database {name!r} (PostgreSQL {version})", facts={"server_version": version}
            )
        except TimeoutError:
            auth = ProbeResult(
                "database.auth",
                "fail",
                f"the server did not complete the log-in within {self.timeout:g} s",
                "check that the server is not overloaded and that MOSAIC_DATABASE_URL names a PostgreSQL port",
            )
        except psycopg.OperationalError as exc:
            auth, exists = _classify_login(exc, name)
        elapsed = (time.perf_counter() - started) * 1000
        for result in (auth, exists):
            if result is not None:
                result.duration_ms = elapsed
                result.detail = self.scrub(result.detail) or ""
                result.remedy = self.scrub(result.remedy)
                report.probes.append(result)
        if exists is None:
            self._skip(report, "database.exists", "authentication failed")
        return conn

    async def _pgvector(self, repo: HealthRepository, schema_present: bool) -> ProbeResult:
        available, installed = await asyncio.wait_for(repo.pgvector(), self.timeout)
        _, name = self._conninfo()
        status, detail, remedy = judge_pgvector(available, installed, schema_present=schema_present, database=name)
        facts = {"available": available, "installed": installed, "iterative_scans": False}
        if installed is not None:
            facts["iterative_scans"] = _version(installed) >= MIN_PGVECTOR_ITERATIVE
        return ProbeResult("pgvector", status, detail, remedy, facts=facts)

    async def _migrations(self, present: bool, revision: str | None) -> ProbeResult:
        from mosaic_memory.db import head_revision, is_known_revision

        head = head_revision()
        facts = {"current": revision, "head": head}
        auto = self.settings.auto_migrate
        if revision == head:
            return ProbeResult("migrations", "ok", f"schema at head ({head})", facts=facts)
        if revision is not None and not is_known_revision(revision):
            return ProbeResult(
                "migrations",
                "fail",
                f"the schema is at revision {revision}, which this version does not know: a newer "
                "mosaic-memory migrated this database",
                "upgrade mosaic-memory to the version that wrote it (never downgrade the schema under data)",
                facts=facts,
            )
        where = f"at revision {revision}" if revision else "not created yet (an empty database)"
        if auto:
            return ProbeResult(
                "migrations",
                "warn",
                f"the schema is {where}; head is {head}",
                "'mosaic-memory serve' upgrades it at start (MOSAIC_AUTO_MIGRATE=true), "
                "or run 'mosaic-memory db upgrade'",
                facts=facts,
            )
        return ProbeResult(
            "migrations",
            "fail",
            f"the schema is {where}; head is {head}, and MOSAIC_AUTO_MIGRATE=false",
            "run 'mosaic-memory db upgrade' (or start with MOSAIC_AUTO_MIGRATE=true)",
            facts=facts,
        )

    async def _row_security(self, repo: HealthRepository) -> ProbeResult:
        from mosaic_memory.db import RowSecurity

        wall = RowSecurity.of(await asyncio.wait_for(repo.row_security(), self.timeout))
        facts = {"tables": wall.tables}
        if wall.up:
            return ProbeResult("row_level_security", "ok", wall.why, facts=facts)
        return ProbeResult(
            "row_level_security",
            "warn",
            f"absent: {wall.why}; the service's own owner filter still applies",
            "a DBA runs 'CREATE ROLE mosaic_scoped NOLOGIN; GRANT mosaic_scoped TO <service role>', then "
            "'mosaic-memory db downgrade 0007' and 'mosaic-memory db upgrade' (docs/security.md)",
            facts=facts,
        )

    async def _model(self, schema_ready: bool, schema_note: str) -> ProbeResult:
        from embeddings import EmbeddingError, get_embedder

        cfg = self.settings.embeddings
        remedy = (
            "check MOSAIC_EMBEDDINGS__PROVIDER and MOSAIC_EMBEDDINGS__MODEL (and the server of a remote "
            "provider); the default is the bundled sentence-transformers/all-MiniLM-L6-v2"
        )
        try:
            embedder = get_embedder(cfg.provider, **cfg.provider_options())
        except EmbeddingError as exc:
            return ProbeResult("embedding_model", "fail", str(exc), remedy)
        try:
            try:
                await asyncio.wait_for(embedder.warm_up(), self.model_timeout)
            except TimeoutError:
                return ProbeResult(
                    "embedding_model", "fail", f"the model did not load within {self.model_timeout:g} s", remedy
                )
            except EmbeddingError as exc:
                return ProbeResult("embedding_model", "fail", f"the model does not load: {exc}", remedy)
            facts: dict[str, Any] = {"model": embedder.model_id, "dimensions": embedder.dimensions}
            loaded = f"{embedder.model_id} loads ({embedder.dimensions} dimensions)"
            if not schema_ready:
                return ProbeResult(
                    "embedding_model",
                    "ok",
                    f"{loaded}; not compared with the stored vectors ({schema_note})",
                    facts=facts,
                )
            mismatch = await asyncio.wait_for(self._stored_space(embedder), self.timeout)
            if mismatch is not None:
                return ProbeResult(
                    "embedding_model",
                    "fail",
                    f"{loaded}, but {mismatch}",
                    "configure the model the data was embedded with, or re-embed: 'mosaic-memory embeddings reembed'",
                    facts=facts,
                )
            return ProbeResult("embedding_model", "ok", f"{loaded}; matches the stored vectors", facts=facts)
        finally:
            await embedder.aclose()

    async def _stored_space(self, embedder: Any) -> str | None:
        """Why the stored vectors do not fit ``embedder`` (None: they fit, or nothing is stored)."""
        from mosaic_memory.errors import EmbeddingMismatch
        from mosaic_memory.reembed.service import check_embedding_space

        try:
            async with self._session() as session:
                await check_embedding_space(session, embedder, record=False)
        except EmbeddingMismatch as exc:
            return exc.detail.split(". ")[0].split("; ")[0]
        return None

    async def _federation(self, report: Report, schema_ready: bool) -> None:
        from mosaic_memory.federation.identity import FederationPaths

        paths = FederationPaths.for_data_dir(self.settings.data_dir)
        if not paths.identity.exists():
            return  # federation is not set up here: nothing to probe
        cert = await self._timed(report, "federation.certificate", lambda: self._certificate(paths))
        if cert.status == "fail" or not schema_ready:
            return
        peers = await self._peers()
        # All at once: a federation of ten peers, two of them down, still answers within one timeout.
        results = await asyncio.gather(
            *(
                self._timed(Report(report.tier, None), f"federation.peer.{n}", self._peer_probe(paths, n, u))
                for n, u in peers
            )
        )
        report.probes.extend(results)

    async def _certificate(self, paths: Any) -> ProbeResult:
        from mosaic_memory.federation.identity import cert_info, needs_renewal

        if not paths.cert.exists() or not paths.key.exists():
            return ProbeResult(
                "federation.certificate",
                "fail",
                "this instance has no certificate",
                "issue one on the CA instance ('mosaic-memory federation issue NAME') and install it here "
                "('mosaic-memory federation install NAME.crt')",
            )
        info = cert_info(paths.cert.read_bytes())
        now = datetime.now(UTC)
        days = round((info.not_after - now).total_seconds() / 86400, 2)
        facts = {"names": info.names, "not_after": info.not_after.isoformat(), "days_left": days}
        renew = "renew it: 'mosaic-memory federation renew' where the CA is, or issue and install a new one"
        if now < info.not_before:
            return ProbeResult(
                "federation.certificate",
                "fail",
                f"the certificate is valid only from {info.not_before.isoformat()} (check this machine's clock)",
                "set the clock right, or install a certificate valid now",
                facts=facts,
            )
        if now >= info.not_after:
            return ProbeResult(
                "federation.certificate",
                "fail",
                f"the certificate expired {-days:g} days ago ({info.not_after.isoformat()})",
                renew,
                facts=facts,
            )
        if not paths.trusted.exists():
            return ProbeResult(
                "federation.certificate",
                "fail",
                "this instance trusts no federation CA",
                "run 'mosaic-memory federation trust ca.crt'",
                facts=facts,
            )
        detail = f"valid until {info.not_after.isoformat()} ({days:g} days left)"
        if needs_renewal(paths, self.settings.federation.renew_before_share, now):
            return ProbeResult("federation.certificate", "warn", f"{detail}: due for renewal", renew, facts=facts)
        return ProbeResult("federation.certificate", "ok", detail, facts=facts)

    async def _peers(self) -> list[tuple[str, str]]:
        from mosaic_memory.federation.service import FederationService

        async with self._session() as session:
            peers = await asyncio.wait_for(FederationService.list_peers(session), self.timeout)
        return [(p.name, p.url) for p in peers]

    def _peer_probe(self, paths: Any, name: str, url: str) -> Callable[[], Awaitable[ProbeResult]]:
        return lambda: self._peer(paths, name, url)

    async def _peer(self, paths: Any, name: str, url: str) -> ProbeResult:
        from mosaic_memory.federation.identity import client_context

        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        facts: dict[str, Any] = {"url": url}
        remedy = f"check that peer {name!r} runs with its federation listener at {url} and trusts our CA"
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=client_context(paths), server_hostname=name), self.timeout
            )
        except TimeoutError:
            return ProbeResult(
                f"federation.peer.{name}",
                "fail",
                f"no answer from {url} within {self.timeout:g} s",
                remedy,
                facts=facts,
            )
        except ssl.SSLError as exc:
            reason = getattr(exc, "verify_message", None) or exc.reason or str(exc)
            return ProbeResult(f"federation.peer.{name}", "fail", f"TLS refused: {reason}", remedy, facts=facts)
        except OSError as exc:
            return ProbeResult(
                f"federation.peer.{name}", "fail", f"{url} is unreachable: {exc.strerror or exc}", remedy, facts=facts
            )
        peercert = writer.get_extra_info("peercert") or {}
        writer.close()
        detail = f"{url} answers over mutual TLS"
        if "notAfter" in peercert:
            not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(peercert["notAfter"]), UTC)
            days = round((not_after - datetime.now(UTC)).total_seconds() / 86400, 2)
            facts["cert_days_left"] = days
            detail += f"; its certificate has {days:g} days left"
        return ProbeResult(f"federation.peer.{name}", "ok", detail, facts=facts)


def _address(url: str) -> tuple[str, int]:
    """The first host (or socket directory) and port a libpq URL names."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    host = parsed.host
    port = parsed.port or 5432
    query_host = parsed.query.get("host")
    if not host and query_host:
        host = query_host if isinstance(query_host, str) else query_host[0]
    return (host or "/var/run/postgresql"), int(port)


def _classify_login(exc: Exception, database: str) -> tuple[ProbeResult, ProbeResult | None]:
    """(database.auth, database.exists) for a failed log-in, from libpq's message (never the password).

    libpq reports a log-in failure as text, without its SQLSTATE: the server's FATAL line is inside."""
    message = str(exc).strip()
    lowered = message.lower()
    fatal = message.split("FATAL:", 1)[-1].strip().splitlines()[0] if "FATAL:" in message else message.splitlines()[0]
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == "3D000" or (f'database "{database.lower()}" does not exist' in lowered):
        return (
            ProbeResult("database.auth", "ok", "the server accepted the credentials"),
            ProbeResult(
                "database.exists",
                "fail",
                f"database {database!r} does not exist on this server",
                f'create it (createdb {database}, or CREATE DATABASE "{database}" as a role allowed to) or point '
                "MOSAIC_DATABASE_URL at an existing database",
            ),
        )
    auth_words = ("password authentication failed", "no pg_hba.conf entry", "does not exist", "authentication")
    if sqlstate in ("28P01", "28000") or any(word in lowered for word in auth_words):
        return (
            ProbeResult(
                "database.auth",
                "fail",
                f"the server refused the log-in: {fatal}",
                "check the user name and password in MOSAIC_DATABASE_URL, and that the server's pg_hba.conf "
                "admits this client for that user and database",
            ),
            None,
        )
    return (
        ProbeResult(
            "database.auth",
            "fail",
            f"the log-in failed: {fatal}",
            "check MOSAIC_DATABASE_URL (and its sslmode) against the server's settings",
        ),
        None,
    )
