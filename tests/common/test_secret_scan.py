"""The secret scanner on its own: each kind of credential found and redacted, prose left alone,
redaction idempotent, JSON walked, and the three modes."""

from __future__ import annotations

import pytest

from mosaic_memory.common.secret_scan import SecretCheck, find_secrets, redact_secrets
from mosaic_memory.errors import SecretDetected

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACB\n-----END OPENSSH PRIVATE KEY-----"

# (text, the secret in it, its kind)
CASES = [
    ("key AKIAIOSFODNN7EXAMPLE set", "AKIAIOSFODNN7EXAMPLE", "aws-key"),
    (
        "push with ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 now",
        "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "github-token",
    ),
    (
        "github_pat_11ABCDEFG0_abcdefghijklmnopqrstuvwxyzAB12",
        "github_pat_11ABCDEFG0_abcdefghijklmnopqrstuvwxyzAB12",
        "github-token",
    ),
    ("token glpat-xYz12345678901234567 here", "glpat-xYz12345678901234567", "gitlab-token"),
    ("bot xoxb-123456789012-1234567890123-AbCdEfGhIjKl", "xoxb-123456789012-1234567890123-AbCdEfGhIjKl", "slack-token"),
    (
        "hook https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXX",
        "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXX",
        "slack-webhook",
    ),
    ("pay sk_live_4eC39HqLyjWDarjtT1zdp7dc ok", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe-key"),
    ("sk-proj-AbCdEf1234567890GhIjKlMnOp", "sk-proj-AbCdEf1234567890GhIjKlMnOp", "openai-key"),
    ("sk-ant-api03-AbCdEf1234567890GhIjKlMnOp-x", "sk-ant-api03-AbCdEf1234567890GhIjKlMnOp-x", "anthropic-key"),
    (f"Authorization: Bearer {JWT}", JWT, "jwt"),
    (f"the key\n{PEM}\nend", PEM, "private-key"),
    ("postgresql://app:s3cr3t-pw@db:5432/app", "s3cr3t-pw", "url-password"),
    ("Authorization: Bearer abcdefghijklmnop1234567890", "abcdefghijklmnop1234567890", "bearer-token"),
    ("password=hunter2hunter2!", "hunter2hunter2!", "password"),
    ("DB_PASSWORD: 'Tr0ub4dor&3'", "Tr0ub4dor&3", "password"),
    ('{"client_secret": "a1b2c3d4e5f6g7h8"}', "a1b2c3d4e5f6g7h8", "secret"),
    ("X-Api-Key: 9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706", "api-key"),
    ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA1234567890abcdefghijklmnopqrstuv", "google-api-key"),
    ("export KEY mm_1a2b3c4d_Zk3vQ9rT1xWb7YpL2mN8sHc4 now", "mm_1a2b3c4d_Zk3vQ9rT1xWb7YpL2mN8sHc4", "mosaic-token"),
    (
        "the agent got mmo_q2Vv0dC1n8-Yr7kP3xW9_aLm4Tz6Hb5Js1Qe0Ug2Fo3 from OAuth",
        "mmo_q2Vv0dC1n8-Yr7kP3xW9_aLm4Tz6Hb5Js1Qe0Ug2Fo3",
        "mosaic-token",
    ),
]


@pytest.mark.parametrize(("text", "secret", "kind"), CASES, ids=[c[2] + str(i) for i, c in enumerate(CASES)])
def test_each_kind_is_found_and_redacted(text: str, secret: str, kind: str) -> None:
    redacted, findings = redact_secrets(text)
    assert [f.kind for f in findings] == [kind]
    assert text[findings[0].start : findings[0].end] == secret
    assert secret not in redacted and f"[REDACTED:{kind}]" in redacted
    assert redacted == text.replace(secret, f"[REDACTED:{kind}]")


def test_an_assigned_token_is_named_by_its_shape_and_only_the_value_goes() -> None:
    text = "export GITHUB_TOKEN=ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 && git push"
    assert redact_secrets(text)[0] == "export GITHUB_TOKEN=[REDACTED:github-token] && git push"
    assert redact_secrets("postgresql://app:pw123456@db/app")[0] == "postgresql://app:[REDACTED:url-password]@db/app"


def test_an_unterminated_private_key_is_redacted_to_the_end() -> None:
    cut = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234567890abcdef"
    assert redact_secrets(f"see below\n{cut}")[0] == "see below\n[REDACTED:private-key]"


PROSE = [
    "Our password policy: passwords need at least 12 characters and rotate every 90 days.",
    "password: must be changed every 90 days",
    'password: "must be changed every 90 days"',
    "The API key rotation runs monthly; the token bucket allows 100 requests per minute.",
    "max_tokens=4096, tokenizer=all-MiniLM-L6-v2, tokens: 12345678",
    "the secret to good reviews: small PRs",
    "the key: value pairs; primary key: id; token: 2026-11-25T10:15:00Z",
    "see https://example.com:8443/path?x=1 and the sk-learn docs",
    "PWD=/home/alice/project and the monkey: bananas1234",
    "password=${DB_PASSWORD}, api_key=YOUR_API_KEY, token: <your-token>, secret=********",
    "a bearer token is sent in the Authorization header",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    "commit 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39 fixed the build",
    "uuid 2b9e4f71-6c3a-4d8e-9f12-a7b5c3d1e0f4 and sha256:9f86d081884c7d659a2feaa0c55ad015",
    # code and paths, not credentials (a skill is mostly code; redaction cannot be undone)
    'password = os.environ["DB_PASSWORD"]',
    "token = get_token()",
    "api_key=settings.openai_key",
    "Secret: /etc/app/config.yaml and token: auto-refresh",
]


@pytest.mark.parametrize("text", PROSE)
def test_prose_and_ordinary_identifiers_are_left_alone(text: str) -> None:
    assert find_secrets(text) == []


def test_redaction_is_idempotent() -> None:
    text = " ".join(c[0] for c in CASES)
    once, findings = redact_secrets(text)
    assert len(findings) == len(CASES)
    assert redact_secrets(once) == (once, [])


def test_json_values_are_walked_and_secret_names_redact_their_value() -> None:
    check = SecretCheck("redact")
    value = {
        "password": "hunter2hunter2",
        "dbPassword": "x",  # too short to be one
        "nested": [{"api-key": "ab12cd34ef56gh78"}, "AKIAIOSFODNN7EXAMPLE", 3, None, True],
        "PWD": "/home/alice",
        "note": "password policy: 12 characters",
    }
    assert check.json(value) == {
        "password": "[REDACTED:password]",
        "dbPassword": "x",
        "nested": [{"api-key": "[REDACTED:api-key]"}, "[REDACTED:aws-key]", 3, None, True],
        "PWD": "/home/alice",
        "note": "password policy: 12 characters",
    }
    assert check.count == 3 and dict(check.kinds) == {"password": 1, "api-key": 1, "aws-key": 1}


def test_refuse_names_the_kinds_never_the_secret() -> None:
    check = SecretCheck("refuse")
    assert check.text("nothing to see") == "nothing to see"
    with pytest.raises(SecretDetected) as info:
        check.text("key AKIAIOSFODNN7EXAMPLE and password=hunter2hunter2!")
    assert info.value.status_code == 422
    assert info.value.to_dict()["kinds"] == ["aws-key", "password"]
    assert "AKIA" not in info.value.detail and "hunter2" not in info.value.detail
    with pytest.raises(SecretDetected):
        SecretCheck("refuse").json({"token": "ab12cd34ef56"})


def test_off_passes_everything() -> None:
    check = SecretCheck("off")
    text = "key AKIAIOSFODNN7EXAMPLE"
    assert check.text(text) == text and check.json({"password": "hunter2hunter2"}) == {"password": "hunter2hunter2"}
    assert check.count == 0


def test_the_mode_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from mosaic_memory.config import Settings

    assert Settings().secrets.mode == "redact"
    monkeypatch.setenv("MOSAIC_SECRETS__MODE", "refuse")
    assert Settings().secrets.mode == "refuse"
    monkeypatch.setenv("MOSAIC_SECRETS__MODE", "ignore")
    with pytest.raises(ValidationError):
        Settings()


def test_a_value_stored_under_a_secrets_name_is_redacted_whole() -> None:
    check = SecretCheck("redact")
    assert check.named("db_password", "S3cure!pass") == "[REDACTED:password]" and check.count == 1
    assert check.named("editor.theme", "S3cure!pass") == "S3cure!pass"  # the name says nothing
    assert check.named("api_token", "auto-refresh") == "auto-refresh"  # the value is words
    with pytest.raises(SecretDetected):
        SecretCheck("refuse").named("db_password", "S3cure!pass")
