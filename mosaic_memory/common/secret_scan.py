"""Credentials in memory text: found by a table of well-known patterns, redacted or refused before a write.

Every kind's service passes the text it is about to store through one :class:`SecretCheck`
(insights, preferences, skills, logs, and the import of an export file), so a credential an agent
pastes into a note never reaches a row, a vector or a search hit. What counts as a credential:

* tokens with a recognisable shape: AWS access key ids, GitHub, GitLab, Slack, Stripe, OpenAI,
  Anthropic, Google, Hugging Face, npm, PyPI and SendGrid tokens, Slack webhooks, JWTs, bearer
  tokens, PEM and PuTTY private keys (the whole block);
* the password of a URL (``scheme://user:PASSWORD@host``: only the password goes);
* the value of an assignment whose name says it is a secret (``password=``, ``DB_PASSWORD:``,
  ``api_key =``, ``"client_secret": "..."``, ``X-Api-Key:``) when the value looks like one: eight
  characters or more with a digit or a symbol, not a placeholder (``${VAR}``, ``<key>``,
  ``YOUR_API_KEY``) and not a date. Prose such as "the password policy: twelve characters" stays.

Why a table of patterns rather than ``detect-secrets``' plugins (1.5.0), measured with
``python -m benchmarks.secret_scan`` (see benchmarks/RESULTS.md): its file-scan loop took about
5,000 µs per KB of the project's documentation where this module takes about 100 (a pattern runs
only when one of its literal hints occurs in the text); of 14 canaries it found 5 whole, 5 in part
(a GitHub or GitLab token as its prefix only, the first line of a private key, a JWT without its
signature) and missed 4 (GitHub fine-grained, OpenAI project and Stripe test keys, an unquoted
``password=``), where this module finds all 14 whole. Its plugins report a value, not where it is
(redaction has to search for it again), its one call for a string scans every word of prose as
a candidate and changes process-wide settings, and it brings ``requests`` for its verifiers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mosaic_memory.errors import SecretDetected

__all__ = [
    "RULES",
    "Finding",
    "Rule",
    "SecretCheck",
    "SecretMode",
    "find_secrets",
    "redact_secrets",
]

SecretMode = Literal["redact", "refuse", "off"]

REDACTED = "[REDACTED:{kind}]"
_SYMBOLS = re.compile(r"[^A-Za-z0-9\s]")
_DIGIT = re.compile(r"\d")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")  # password=DB_PASSWORD names a variable, it is not one
_DATE_LIKE = re.compile(r"[\d.:/+-]*[.:/-][\d.:/+TZ-]*")  # 2026-11-25, 10:15:00, 1.2.3: no secret


# Values that are code or prose, not credentials: a call or a subscript, a path, a dotted name,
# lower-case words joined by hyphens.
_CODE_OR_PATH = re.compile(r"[(\[]|^(?:/|\./|\.\./|~/)")
_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_KEBAB_WORDS = re.compile(r"[a-z]+(?:-[a-z]+)+")


def _has_mixed_alnum(value: str) -> bool:
    """Random-looking: upper and lower case letters and a digit (generated keys are; words are not)."""
    return any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)


def looks_like_secret_value(value: str) -> bool:
    """Whether the value of ``password=`` / ``"api_key": ...`` is worth redacting.

    Eight characters or more, with a digit or a symbol (or 20 letters or more of mixed case), no
    white space (that is a sentence), and not a placeholder, a variable's name, a reference or a date.
    """
    if len(value) < 8 or value.startswith(("$", "<", "{", "%", "[", "(", "*", "#")):
        return False
    if any(c.isspace() for c in value):
        return False
    if "REDACTED" in value or len(set(value)) <= 2:  # already redacted; xxxxxxxx, ********
        return False
    if _ENV_NAME.fullmatch(value) or _DATE_LIKE.fullmatch(value):
        return False
    if _CODE_OR_PATH.search(value) or _DOTTED_NAME.fullmatch(value) or _KEBAB_WORDS.fullmatch(value):
        return False  # get_token(), os.environ["X"], settings.openai_key, /etc/app.yaml, auto-refresh
    if _DIGIT.search(value) or _SYMBOLS.search(value):
        return True
    return len(value) >= 20 and any(c.isupper() for c in value[1:]) and any(c.islower() for c in value)


# The name of an assignment that holds a secret ends in one of these words (DB_PASSWORD,
# client_secret, GITHUB_TOKEN, X-Api-Key). "key" alone would catch prose ("key: value"), so it needs a
# qualifier; "tokens" does not end in "token".
SECRET_NAME = r"(?:password|passwd|passphrase|secret|token|(?:api|access|private|auth|secret)[_-]?key|apikey)"
# The same words for a JSON object's key, compared with separators dropped (dbPassword, X-Api-Key).
_SECRET_KEY_ENDINGS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "secretkey",
    "apikey",
    "accesskey",
    "privatekey",
    "authkey",
    "token",
)


def _assignment_kind(name: str) -> str:
    lowered = name.lower()
    if "pass" in lowered:
        return "password"
    if "token" in lowered:
        return "token"
    if "secret" in lowered:
        return "secret"
    return "api-key"


@dataclass(frozen=True)
class Rule:
    """One kind of credential: its pattern, and the literal hints that must occur for it to run.

    ``group`` names the groups that hold the secret (the first that matched is replaced; the
    whole match when empty); ``check`` vets the secret; ``kind_of`` names the kind from the match
    when it depends on it (assignments)."""

    kind: str
    pattern: re.Pattern[str]
    hints: tuple[str, ...]
    group: tuple[str, ...] = ()
    check: Callable[[str], bool] | None = None
    kind_of: Callable[[re.Match[str]], str] | None = None


def _assignment_kind_of(match: re.Match[str]) -> str:
    return _assignment_kind(match.group("name"))


# The assignment pattern starts at the secret's word, whatever precedes it; the lookahead on its
# first letters lets the regex engine skip every other position quickly. Measured on the project's
# documentation: about 190 µs per KB when the pattern first matched a whole identifier, about 90
# for a case-insensitive alternation alone, about 35 with the lookahead.


# Order matters: where two findings overlap, the earlier rule's wins (a GitHub token assigned to
# GITHUB_TOKEN= is reported as github-token, not as a generic token).
RULES: tuple[Rule, ...] = (
    Rule(
        "private-key",
        re.compile(
            r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.DOTALL,
        ),
        ("private key",),
    ),
    Rule(
        "private-key",
        re.compile(r"PuTTY-User-Key-File-\d+:.*?(?:Private-MAC: *[0-9a-fA-F]+|\Z)", re.DOTALL),
        ("putty-user-key-file",),
    ),
    Rule(
        "aws-key",
        re.compile(r"(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
        ("akia", "asia", "abia", "acca", "a3t"),
    ),
    Rule(
        "github-token",
        re.compile(
            r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])"
        ),
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    Rule(
        "gitlab-token",
        re.compile(
            r"(?<![A-Za-z0-9_-])gl(?:pat|dt|rt|ft|ptt|soat|cbt|oas|imt|agent)-[A-Za-z0-9_-]{20,1024}(?![A-Za-z0-9_-])"
        ),
        ("glpat-", "gldt-", "glrt-", "glft-", "glptt-", "glsoat-", "glcbt-", "gloas-", "glimt-", "glagent-"),
    ),
    Rule(
        "slack-webhook",
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,}"),
        ("hooks.slack.com",),
    ),
    Rule("slack-token", re.compile(r"(?<![A-Za-z0-9])xox[abposre]-[A-Za-z0-9-]{10,}"), ("xox",)),
    Rule(
        "stripe-key",
        re.compile(r"(?<![A-Za-z0-9])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}(?![A-Za-z0-9])"),
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
    ),
    Rule(
        "anthropic-key",
        re.compile(r"(?<![A-Za-z0-9])sk-ant-[a-z]{2,8}\d{0,3}-[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])"),
        ("sk-ant-",),
    ),
    Rule(
        "openai-key",
        re.compile(r"(?<![A-Za-z0-9])sk-(?:proj-|svcacct-|admin-)?(?P<body>[A-Za-z0-9_-]{20,})(?![A-Za-z0-9_-])"),
        ("sk-",),
        check=lambda value: _has_mixed_alnum(value),
    ),
    Rule("google-api-key", re.compile(r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])"), ("aiza",)),
    Rule("huggingface-token", re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}(?![A-Za-z0-9])"), ("hf_",)),
    # Mosaic's own credentials: API keys (mm_<8 hex>_...) and OAuth access and refresh tokens.
    Rule(
        "mosaic-token",
        re.compile(
            r"(?<![A-Za-z0-9_])(?:mm_[0-9a-f]{8}_[A-Za-z0-9_-]{16,}|mm[or]_[A-Za-z0-9_-]{40,})(?![A-Za-z0-9_-])"
        ),
        ("mm_", "mmo_", "mmr_"),
    ),
    Rule("npm-token", re.compile(r"(?<![A-Za-z0-9])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"), ("npm_",)),
    Rule("pypi-token", re.compile(r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"), ("pypi-ageichlwas5vcmc",)),
    Rule(
        "sendgrid-key",
        re.compile(r"(?<![A-Za-z0-9])SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"),
        ("sg.",),
    ),
    Rule(
        "jwt",
        re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}={0,2}\.eyJ[A-Za-z0-9_-]{8,}={0,2}\.[A-Za-z0-9_-]*={0,2}"),
        ("eyj",),
    ),
    Rule(
        "url-password",
        re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s:/?#@\[\]\"'<>]+:(?P<password>[^\s/?#@\"'<>]+)@"),
        ("://",),
        group=("password",),
        check=lambda value: not value.startswith(("$", "<", "{", "[REDACTED", "*")) and len(set(value)) > 1,
    ),
    Rule(
        "bearer-token",
        re.compile(r"(?i)\bbearer\s+(?P<token>[A-Za-z0-9._~+/-]{20,}=*)"),
        ("bearer",),
        group=("token",),
        check=lambda value: bool(_DIGIT.search(value)),
    ),
    Rule(
        "basic-auth",
        re.compile(r"(?i)\bauthorization[\"']?\s*[:=]\s*[\"']?basic\s+(?P<token>[A-Za-z0-9+/]{8,}={0,2})"),
        ("authorization",),
        group=("token",),
    ),
    Rule(
        "secret",
        re.compile(
            rf"(?=[PpSsTtAa])(?i:(?P<name>{SECRET_NAME}))(?![A-Za-z0-9])[\"']?\s*(?::=|=>|=|:)\s*"
            r"(?:\"(?P<dq>[^\"\n]{8,200})\"|'(?P<sq>[^'\n]{8,200})'|(?P<bare>[^\s\"'`,;]{8,200}))"
        ),
        ("pass", "secret", "key", "token"),
        group=("dq", "sq", "bare"),
        check=looks_like_secret_value,
        kind_of=_assignment_kind_of,
    ),
)


@dataclass(frozen=True)
class Finding:
    """One credential in a text: its kind and where it is (``text[start:end]`` is the secret)."""

    kind: str
    start: int
    end: int


def find_secrets(text: str, rules: Sequence[Rule] = RULES) -> list[Finding]:
    """Every credential in ``text``, in order, none overlapping (the earlier rule wins an overlap)."""
    lowered = text.lower()
    kept: list[Finding] = []
    for rule in rules:
        if not any(hint in lowered for hint in rule.hints):
            continue
        for match in rule.pattern.finditer(text):
            name = next((g for g in rule.group if match.group(g) is not None), None)
            if rule.group and name is None:
                continue
            start, end = match.span(name) if name is not None else match.span()
            value = text[start:end]
            if end <= start or value.startswith("[REDACTED:"):
                continue
            if rule.check is not None and not rule.check(value):
                continue
            if any(start < k.end and k.start < end for k in kept):
                continue
            kind = rule.kind_of(match) if rule.kind_of is not None else rule.kind
            kept.append(Finding(kind, start, end))
    return sorted(kept, key=lambda f: f.start)


def redact_secrets(text: str) -> tuple[str, list[Finding]]:
    """``text`` with each credential replaced by ``[REDACTED:<kind>]``, and what was replaced.

    Redacting a redacted text changes nothing (the markers are never taken for secrets)."""
    findings = find_secrets(text)
    if not findings:
        return text, findings
    parts: list[str] = []
    at = 0
    for finding in findings:
        parts.append(text[at : finding.start])
        parts.append(REDACTED.format(kind=finding.kind))
        at = finding.end
    parts.append(text[at:])
    return "".join(parts), findings


def _named_secret(key: str, value: str) -> str | None:
    """The kind when a JSON object's ``key`` names a secret and its string ``value`` looks like one."""
    name = re.sub(r"[^a-z0-9]", "", key.lower())
    if name.endswith(_SECRET_KEY_ENDINGS) and looks_like_secret_value(value):
        return _assignment_kind(key)
    return None


class SecretCheck:
    """One write's pass over the texts it stores, by the configured mode.

    ``redact``: each credential becomes ``[REDACTED:<kind>]`` and :attr:`count` says how many;
    ``refuse``: the first text holding one raises :class:`SecretDetected` naming its kinds (never
    the secret), before anything is written; ``off``: texts pass unchanged. Build one per write
    and read :attr:`count` for the response.
    """

    def __init__(self, mode: SecretMode) -> None:
        self.mode = mode
        self.kinds: Counter[str] = Counter()

    @property
    def count(self) -> int:
        """How many credentials this write's texts had redacted."""
        return sum(self.kinds.values())

    def _found(self, kinds: list[str]) -> None:
        if self.mode == "refuse":
            raise SecretDetected(sorted(set(kinds)))
        self.kinds.update(kinds)

    def text(self, value: str) -> str:
        """``value`` with its credentials redacted (``redact``), unchanged (``off``), or refused."""
        if self.mode == "off" or not value:
            return value
        cleaned, findings = redact_secrets(value)
        if findings:
            self._found([f.kind for f in findings])
        return cleaned

    def optional(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def named(self, name: str, value: Any) -> Any:
        """``value`` stored under ``name`` (a preference's key): redacted whole when the name says
        secret and a string value looks like one (``db_password`` = ``S3cure!pass``), else :meth:`json`."""
        if self.mode != "off" and isinstance(value, str):
            kind = _named_secret(name, value)
            if kind is not None:
                self._found([kind])
                return REDACTED.format(kind=kind)
        return self.json(value)

    def json(self, value: Any) -> Any:
        """A JSON value with every string checked; an object's string under a secret's name
        (``{"password": "..."}``) is redacted whole when it looks like a secret."""
        if self.mode == "off":
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                kind = _named_secret(key, item) if isinstance(key, str) and isinstance(item, str) else None
                if kind is not None:
                    self._found([kind])
                    out[key] = REDACTED.format(kind=kind)
                else:
                    out[key] = self.json(item)
            return out
        return value
