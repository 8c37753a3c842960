"""A real ``mosaic-memory serve`` process on the suite's database, for OAuth clients to talk to,
and an https server publishing clients' metadata documents, which that process trusts."""

from __future__ import annotations

import ipaddress
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mosaic_memory.container import AppState
from tests.conftest import free_port, scratch_dir, serve_process, start_in_thread


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem)."""
    now = datetime.now(UTC)

    def build(
        subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("test CA", "test CA", ca_key, ca_key, True)
    cert = build("127.0.0.1", "test CA", key, ca_key, False)
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@dataclass
class Documents:
    """An https server of clients' metadata documents: ``publish`` what a path answers."""

    base: str
    ca_file: Path
    answers: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)

    def publish(self, path: str, document: object, *, status: int = 200, headers: dict[str, str] | None = None) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.answers[path] = (status, {"content-type": "application/json", **(headers or {})}, body)
        return self.base + path


@pytest.fixture(scope="module")
def documents() -> Iterator[Documents]:
    directory = scratch_dir("mosaic-oauth-tls-")
    ca_file, cert_file, key_file = _certificates(directory)
    port = free_port()
    docs = Documents(f"https://127.0.0.1:{port}", ca_file)

    async def app(request: Request) -> Response:
        status, headers, body = docs.answers.get(request.url.path, (404, {}, b"not here"))
        return Response(body, status_code=status, headers=headers)

    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/{path:path}", app)]),
            host="127.0.0.1",
            port=port,
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
            log_level="warning",
        )
    )
    thread = start_in_thread(server)
    yield docs
    server.should_exit = True
    thread.join(timeout=30)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def service_url(state: AppState, documents: Documents) -> Iterator[str]:
    """The URL of a separate service process sharing the suite's embedded database."""
    with serve_process(
        state,
        "mosaic-oauth-",
        # the documents server is on loopback, with a CA of the test's own
        MOSAIC_OAUTH__CLIENT_METADATA_ALLOW_PRIVATE_HOSTS="true",
        MOSAIC_OAUTH__CLIENT_METADATA_CA_FILE=str(documents.ca_file),
    ) as url:
        yield url
