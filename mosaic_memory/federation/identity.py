"""Instance identity, the federation CA, certificates and the TLS contexts built from them.

Everything is in files under ``<data_dir>/federation`` (the listener needs them before the
database is open); private keys are written with mode 600. Cryptography comes from the
``cryptography`` package and the standard library's ``ssl``: EC P-256 keys, SHA-256 signatures,
X.509 certificates with the instance name as a DNS subject alternative name, TLS 1.3 only.
"""

from __future__ import annotations

import json
import os
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mosaic_memory.errors import FederationError, InvalidInput

__all__ = [
    "INSTANCE_NAME_PATTERN",
    "CertInfo",
    "FederationPaths",
    "cert_info",
    "client_context",
    "generate_key",
    "init_ca",
    "init_identity",
    "install_certificate",
    "instance_name",
    "issue_certificate",
    "issue_to_dir",
    "needs_renewal",
    "peer_names",
    "renew",
    "server_context",
    "sign_certificate",
    "trust_bundle",
    "validate_instance_name",
]

# A DNS label: the name goes into the certificate's SAN and is checked as a host name.
INSTANCE_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"


def validate_instance_name(name: str) -> str:
    if not re.fullmatch(INSTANCE_NAME_PATTERN, name):
        raise InvalidInput(
            f"instance name {name!r} is not valid: use 1-63 lowercase letters, digits or '-' (a DNS label)"
        )
    return name


@dataclass(frozen=True)
class FederationPaths:
    """Where one instance keeps its federation files."""

    root: Path

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> FederationPaths:
        return cls(Path(data_dir) / "federation")

    @property
    def identity(self) -> Path:
        return self.root / "identity.json"

    @property
    def key(self) -> Path:
        return self.root / "instance.key"

    @property
    def public_key(self) -> Path:
        return self.root / "instance.pub"

    @property
    def cert(self) -> Path:
        return self.root / "instance.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca" / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca" / "ca.crt"

    @property
    def trusted(self) -> Path:
        return self.root / "trusted.pem"


@dataclass(frozen=True)
class CertInfo:
    names: list[str]
    issuer: str
    not_before: datetime
    not_after: datetime
    fingerprint: str
    is_ca: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "fingerprint": self.fingerprint,
            "is_ca": self.is_ca,
        }


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` so that no other user can read it at any moment (created 600, not chmod-ed after)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def instance_name(paths: FederationPaths) -> str:
    """This instance's federation name. Raises FederationError when ``federation init`` has not run."""
    try:
        data = json.loads(paths.identity.read_text())
    except FileNotFoundError:
        raise FederationError(
            "this instance has no federation identity: run 'mosaic-memory federation init NAME'"
        ) from None
    return str(data["name"])


def init_identity(paths: FederationPaths, name: str, *, force: bool = False) -> Path:
    """Give this instance ``name`` and a new key pair; returns the public key's path (for the CA).

    Raises FederationError when an identity exists and ``force`` is not set."""
    validate_instance_name(name)
    if paths.identity.exists() and not force:
        raise FederationError(
            f"this instance is already named {instance_name(paths)!r}; pass --force to replace its identity"
        )
    key = generate_key()
    _write_private(paths.key, _key_pem(key))
    _write_public(paths.public_key, _public_pem(key.public_key()))
    paths.cert.unlink(missing_ok=True)  # a certificate for the old key is worthless now
    _write_public(paths.identity, json.dumps({"name": name}).encode())
    return paths.public_key


def init_ca(
    paths: FederationPaths, passphrase: bytes, *, name: str = "Mosaic Memory federation CA", days: int = 3650
) -> Path:
    """Create the federation CA on this instance (key encrypted with ``passphrase``) and trust it.

    Raises FederationError when a CA exists, InvalidInput for an empty passphrase."""
    if not passphrase:
        raise InvalidInput("the CA passphrase must not be empty")
    if paths.ca_key.exists():
        raise FederationError(f"a federation CA already exists in {paths.ca_key.parent}")
    key = generate_key()
    now = datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(paths.ca_key, _key_pem(key, passphrase))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    _write_public(paths.ca_cert, pem)
    trust_bundle(paths, pem)
    return paths.ca_cert


def _load_ca(paths: FederationPaths, passphrase: bytes) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    if not paths.ca_key.exists():
        raise FederationError("there is no federation CA on this instance: run 'mosaic-memory federation ca init'")
    try:
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=passphrase)
    except (ValueError, TypeError):
        raise FederationError("the CA passphrase is wrong (or the CA key is damaged)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise FederationError("the CA key is not an EC key")
    return key, x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())


def sign_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    name: str,
    public_key: ec.EllipticCurvePublicKey,
    *,
    hours: float = 24.0,
    not_before: datetime | None = None,
) -> bytes:
    """An instance certificate for ``name`` (CN and DNS SAN), for both TLS server and client use."""
    validate_instance_name(name)
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)  # a little slack for clock skew
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(minutes=5) + timedelta(hours=hours))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise InvalidInput("the public key file is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidInput("the public key is not an EC key (make it with 'mosaic-memory federation init')")
    return key


def issue_certificate(
    paths: FederationPaths,
    passphrase: bytes,
    name: str,
    *,
    public_key_pem: bytes | None = None,
    hours: float = 24.0,
    not_before: datetime | None = None,
) -> tuple[bytes, bytes | None]:
    """Sign a certificate for instance ``name`` with this instance's CA.

    With ``public_key_pem`` (the other instance's ``instance.pub``) its key never leaves that
    machine; without it a new key pair is made and returned as well (PEM, unencrypted)."""
    ca_key, ca_cert = _load_ca(paths, passphrase)
    new_key = None
    if public_key_pem is not None:
        public_key = _load_public_key(public_key_pem)
    else:
        new_key = generate_key()
        public_key = new_key.public_key()
    cert = sign_certificate(ca_key, ca_cert, name, public_key, hours=hours, not_before=not_before)
    return cert, (_key_pem(new_key) if new_key is not None else None)


def issue_to_dir(
    paths: FederationPaths,
    passphrase: bytes,
    name: str,
    out_dir: Path,
    *,
    public_key_pem: bytes | None = None,
    hours: float = 24.0,
) -> list[Path]:
    """Write ``NAME.crt`` (+ ``NAME.key`` when generated, mode 600) and ``ca.crt`` into ``out_dir``."""
    cert, key = issue_certificate(paths, passphrase, name, public_key_pem=public_key_pem, hours=hours)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{name}.crt", out_dir / "ca.crt"]
    _write_public(written[0], cert)
    _write_public(written[1], paths.ca_cert.read_bytes())
    if key is not None:
        _write_private(out_dir / f"{name}.key", key)
        written.append(out_dir / f"{name}.key")
    return written


def _load_cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise InvalidInput("the file is not a PEM certificate") from None


def install_certificate(paths: FederationPaths, cert_pem: bytes, key_pem: bytes | None = None) -> CertInfo:
    """Install this instance's certificate (and its key, when issued with one).

    Raises InvalidInput when the certificate names another instance or does not match the key,
    FederationError when no trusted CA signed it (trust the bundle first)."""
    name = instance_name(paths)
    cert = _load_cert(cert_pem)
    info = cert_info(cert_pem)
    if name not in info.names:
        raise InvalidInput(f"the certificate is for {info.names}, not for this instance {name!r}")
    if key_pem is not None:
        key = serialization.load_pem_private_key(key_pem, password=None)
    else:
        key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
    if _public_pem(key.public_key()) != _public_pem(cert.public_key()):  # type: ignore[arg-type]
        raise InvalidInput("the certificate does not match this instance's key (issue it for instance.pub)")
    if not _signed_by_trusted(paths, cert):
        raise FederationError(
            "no trusted CA signed this certificate: run 'mosaic-memory federation trust ca.crt' first"
        )
    if key_pem is not None:
        _write_private(paths.key, key_pem)
        _write_public(paths.public_key, _public_pem(key.public_key()))  # type: ignore[arg-type]
    _write_public(paths.cert, cert_pem)
    return info


def _trusted_certs(paths: FederationPaths) -> list[x509.Certificate]:
    if not paths.trusted.exists():
        return []
    return x509.load_pem_x509_certificates(paths.trusted.read_bytes())


def _signed_by_trusted(paths: FederationPaths, cert: x509.Certificate) -> bool:
    for ca in _trusted_certs(paths):
        try:
            cert.verify_directly_issued_by(ca)
            return True
        except (ValueError, TypeError, InvalidSignature):
            continue
    return False


def trust_bundle(paths: FederationPaths, bundle_pem: bytes) -> list[CertInfo]:
    """Add the CA certificates in ``bundle_pem`` to this instance's trust store (each once).

    Raises InvalidInput when the bundle holds no certificate or one that is not a CA."""
    try:
        certs = x509.load_pem_x509_certificates(bundle_pem)
    except ValueError:
        raise InvalidInput("the bundle is not a PEM file of certificates") from None
    known = {c.fingerprint(hashes.SHA256()) for c in _trusted_certs(paths)}
    added: list[CertInfo] = []
    blob = paths.trusted.read_bytes() if paths.trusted.exists() else b""
    for cert in certs:
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise InvalidInput("the bundle holds a certificate that is not a CA; trust the CA's ca.crt")
        if cert.fingerprint(hashes.SHA256()) in known:
            continue
        pem = cert.public_bytes(serialization.Encoding.PEM)
        blob += pem
        added.append(cert_info(pem))
    _write_public(paths.trusted, blob)
    return added


def cert_info(pem: bytes) -> CertInfo:
    cert = _load_cert(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = list(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = []
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(
        names=names,
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        is_ca=is_ca,
    )


def needs_renewal(paths: FederationPaths, share: float, now: datetime) -> bool:
    """True when this instance's certificate is missing or has less than ``share`` of its life left."""
    if not paths.cert.exists():
        return True
    info = cert_info(paths.cert.read_bytes())
    life = (info.not_after - info.not_before).total_seconds()
    return (info.not_after - now).total_seconds() < share * life


def renew(paths: FederationPaths, passphrase: bytes, *, hours: float = 24.0) -> CertInfo:
    """Re-issue this instance's certificate with the CA on this instance (same key, fresh validity)."""
    name = instance_name(paths)
    cert, _ = issue_certificate(paths, passphrase, name, public_key_pem=paths.public_key.read_bytes(), hours=hours)
    _write_public(paths.cert, cert)
    return cert_info(cert)


def _require_files(paths: FederationPaths) -> None:
    instance_name(paths)
    if not paths.cert.exists():
        raise FederationError(
            "this instance has no certificate: issue one with 'mosaic-memory federation issue NAME' on the CA "
            "instance and install it with 'mosaic-memory federation install NAME.crt'"
        )
    if not paths.trusted.exists():
        raise FederationError("this instance trusts no federation CA: run 'mosaic-memory federation trust ca.crt'")


def server_context(paths: FederationPaths) -> ssl.SSLContext:
    """The listener's context: TLS 1.3 only, a client certificate from a trusted CA required."""
    _require_files(paths)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(paths.cert, paths.key)
    ctx.load_verify_locations(cafile=paths.trusted)
    return ctx


def client_context(paths: FederationPaths) -> ssl.SSLContext:
    """The fan-out client's context: TLS 1.3, our certificate, the server's name checked against the peer's."""
    _require_files(paths)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True  # against the peer's name, sent as SNI (not the URL's host)
    ctx.load_verify_locations(cafile=paths.trusted)
    ctx.load_cert_chain(paths.cert, paths.key)
    return ctx


def peer_names(peercert: dict[str, Any] | None) -> list[str]:
    """The DNS names in a verified peer certificate (``SSLObject.getpeercert()``)."""
    if not peercert:
        return []
    return [value for kind, value in peercert.get("subjectAltName", ()) if kind == "DNS"]
