"""Identity, CA and certificates: files, modes, names, validity, trust; and the CLI commands over them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mosaic_memory.errors import FederationError, InvalidInput
from mosaic_memory.federation.identity import (
    FederationPaths,
    cert_info,
    init_ca,
    init_identity,
    install_certificate,
    issue_certificate,
    needs_renewal,
    renew,
    server_context,
    trust_bundle,
)
from mosaic_memory.federation.schemas import parse_duration
from tests.conftest import scratch_dir

PASS = b"a passphrase"


@pytest.fixture
def root() -> Iterator[Path]:
    path = scratch_dir("mosaic-fed-id-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_identity_ca_issue_install_renew(root: Path) -> None:
    paths = FederationPaths(root / "federation")
    init_identity(paths, "laptop")
    assert _mode(paths.key) == 0o600
    with pytest.raises(FederationError):
        init_identity(paths, "other")
    init_ca(paths, PASS)
    assert _mode(paths.ca_key) == 0o600
    with pytest.raises(TypeError):  # encrypted: no key without the passphrase
        serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    with pytest.raises(FederationError, match="passphrase"):
        issue_certificate(paths, b"wrong", "laptop")
    cert, key = issue_certificate(paths, PASS, "laptop", public_key_pem=paths.public_key.read_bytes())
    assert key is None  # signed our public key; the private key never moved
    info = install_certificate(paths, cert)
    assert info.names == ["laptop"]
    life = info.not_after - info.not_before
    assert timedelta(hours=24) <= life <= timedelta(hours=24, minutes=11)
    assert not needs_renewal(paths, 1 / 3, datetime.now(UTC))
    assert needs_renewal(paths, 1 / 3, datetime.now(UTC) + timedelta(hours=20))
    renewed = renew(paths, PASS, hours=48)
    assert renewed.not_after > info.not_after
    assert cert_info(paths.cert.read_bytes()).fingerprint == renewed.fingerprint
    ctx = server_context(paths)
    assert ctx.minimum_version.name == "TLSv1_3"


def test_install_refuses_another_name_another_key_and_an_untrusted_ca(root: Path) -> None:
    ca = FederationPaths(root / "ca")
    init_identity(ca, "ca-host")
    init_ca(ca, PASS)
    home = FederationPaths(root / "home")
    init_identity(home, "home")
    wrong_name, _ = issue_certificate(ca, PASS, "laptop", public_key_pem=home.public_key.read_bytes())
    with pytest.raises(InvalidInput, match="not for this instance"):
        install_certificate(home, wrong_name)
    other_key, _ = issue_certificate(ca, PASS, "home")  # a fresh key pair, not home's
    with pytest.raises(InvalidInput, match="does not match"):
        install_certificate(home, other_key)
    good, _ = issue_certificate(ca, PASS, "home", public_key_pem=home.public_key.read_bytes())
    with pytest.raises(FederationError, match="trust"):
        install_certificate(home, good)
    with pytest.raises(InvalidInput, match="not a CA"):
        trust_bundle(home, good)
    assert len(trust_bundle(home, ca.ca_cert.read_bytes())) == 1
    assert trust_bundle(home, ca.ca_cert.read_bytes()) == []  # each CA once
    install_certificate(home, good)
    san = x509.load_pem_x509_certificate(home.cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert san.value.get_values_for_type(x509.DNSName) == ["home"]


def test_names_and_durations_are_validated(root: Path) -> None:
    with pytest.raises(InvalidInput):
        init_identity(FederationPaths(root / "x"), "Not A Name")
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    with pytest.raises(ValueError):
        parse_duration("soon")


def _cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    full.update(MOSAIC_DATA_DIR=str(data_dir), MOSAIC_CONFIG_FILE="", **env)
    return subprocess.run(
        [sys.executable, "-m", "mosaic_memory", "federation", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )


def test_the_cli_walks_init_ca_issue_install_trust_renew(root: Path) -> None:
    laptop, home = root / "laptop", root / "home"
    secret = {"MOSAIC_FEDERATION__CA_PASSPHRASE": "s3cret"}
    assert _cli(laptop, "init", "laptop").returncode == 0
    assert _cli(laptop, "ca", "init", **secret).returncode == 0
    assert _cli(home, "init", "home").returncode == 0
    out = root / "for-home"
    issued = _cli(
        laptop, "issue", "home", "--out", str(out), "--public-key", str(home / "federation/instance.pub"), **secret
    )
    assert issued.returncode == 0, issued.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "home.crt"]
    refused = _cli(home, "install", str(out / "home.crt"))
    assert refused.returncode == 1 and "trust" in refused.stderr and "Traceback" not in refused.stderr
    assert _cli(home, "trust", str(out / "ca.crt")).returncode == 0
    assert _cli(home, "install", str(out / "home.crt")).returncode == 0
    status = _cli(home, "status", "--json")
    assert '"names": [\n      "home"\n    ]' in status.stdout
    wrong = _cli(laptop, "renew", MOSAIC_FEDERATION__CA_PASSPHRASE="nope")
    assert wrong.returncode == 1 and "passphrase is wrong" in wrong.stderr and "nope" not in wrong.stderr
    no_ca = _cli(home, "renew", **secret)
    assert no_ca.returncode == 1 and "no federation CA" in no_ca.stderr


def test_federated_merge_lists_a_memory_once_by_id_and_keeps_equal_texts() -> None:
    import uuid
    from datetime import UTC, datetime

    from mosaic_memory.federation.service import merge_hits
    from mosaic_memory.search.schemas import Hit

    def hit(id_: uuid.UUID, content: str, score: float, origin: str) -> Hit:
        now = datetime.now(UTC)
        return Hit(id=id_, kind="logs", content=content, score=score, owner="user:a", created_at=now, origin=origin)

    pulled, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    local = [hit(pulled, "Deploys go out on Fridays", 0.9, "home"), hit(a, "Tests passed", 0.5, "home")]
    remote = [hit(pulled, "Deploys go out on Fridays", 0.95, "laptop"), hit(b, "Tests passed", 0.5, "laptop")]
    merged = merge_hits([local, remote], k=10)
    assert [(h.id, h.origin) for h in merged] == [(pulled, "home"), (a, "home"), (b, "laptop")]
