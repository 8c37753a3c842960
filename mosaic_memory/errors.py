"""The MosaicError tree. Each class knows its HTTP status; edges translate them once.

HTTP body: ``{"error": "<ClassName>", "detail": "<message>"}``; CLI: one stderr line, exit 1;
MCP: a ToolError with the same text. Messages are built from ids, never from secrets.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationFailed",
    "ConfigurationError",
    "Conflict",
    "ContentTooLarge",
    "DatabaseUnavailable",
    "EmbeddingMismatch",
    "EmbeddingUnavailable",
    "FederationError",
    "GrantNotFound",
    "ImmutablePreference",
    "InsightNotFound",
    "InvalidInput",
    "JobNotFound",
    "JobRunNotFound",
    "LogNotFound",
    "MigrationRefused",
    "MosaicError",
    "NotFound",
    "OwnerNotFound",
    "PeerNotFound",
    "PermissionDenied",
    "PreferenceNotFound",
    "RateLimited",
    "SecretDetected",
    "SkillExists",
    "SkillNotFound",
    "StorageTierError",
    "SummarizerBudgetExhausted",
    "SummarizerUnavailable",
    "TierMigrationFailed",
]


class MosaicError(Exception):
    """Base of every error the service raises on purpose."""

    status_code: ClassVar[int] = 500

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def error(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "detail": self.detail}
        body.update(self.extra)
        return body


class InvalidInput(MosaicError):
    """The request is well-formed transport-wise but its content is not acceptable."""

    status_code = 422


class SecretDetected(InvalidInput):
    """The text to store holds what looks like a credential, and the service is set to refuse
    such writes (``MOSAIC_SECRETS__MODE=refuse``): nothing was stored. Names the kinds, never
    the secret."""

    def __init__(self, kinds: list[str]) -> None:
        super().__init__(
            f"the text holds what looks like a secret ({', '.join(kinds)}); nothing was stored. Remove it, "
            "or let the service store it redacted (MOSAIC_SECRETS__MODE=redact)",
            kinds=kinds,
        )


class AuthenticationFailed(MosaicError):
    status_code = 401

    def __init__(self, detail: str = "a valid API key is required: send 'Authorization: Bearer <key>'") -> None:
        super().__init__(detail)


class PermissionDenied(MosaicError):
    status_code = 403


class NotFound(MosaicError):
    status_code = 404


class InsightNotFound(NotFound):
    def __init__(self, insight_id: object) -> None:
        super().__init__(f"insight {insight_id} not found")


class LogNotFound(NotFound):
    def __init__(self, log_id: object) -> None:
        super().__init__(f"log event {log_id} not found")


class OwnerNotFound(NotFound):
    def __init__(self, owner: str) -> None:
        super().__init__(f"owner {owner!r} not found or not visible to this key")


class Conflict(MosaicError):
    status_code = 409


class MigrationRefused(Conflict):
    """``migrate-tier`` will not write to this target (another instance's data, another schema,
    another run holding it); nothing was changed. The message says why and what to do."""


class TierMigrationFailed(MosaicError):
    """``migrate-tier`` copied, but the two sides do not verify equal; the source is untouched."""


class ImmutablePreference(Conflict):
    def __init__(self, key: str) -> None:
        super().__init__(
            f"preference {key!r} is immutable: agents may read it but only the user "
            "(a key not bound to an agent) may change it"
        )


class DatabaseUnavailable(MosaicError):
    status_code = 503

    def __init__(self, detail: str = "the database is unreachable; retry shortly") -> None:
        super().__init__(detail)


class EmbeddingUnavailable(MosaicError):
    status_code = 503


class EmbeddingMismatch(MosaicError):
    """Stored vectors come from another model or dimension than the configured embedder."""

    status_code = 500


class ConfigurationError(MosaicError):
    status_code = 500


class StorageTierError(MosaicError):
    """The configured storage tier cannot be used; the message names what is missing."""

    status_code = 503


class ContentTooLarge(InvalidInput):
    status_code = 413

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"content is {size} bytes; the limit is {limit} bytes (MOSAIC_MAX_CONTENT_BYTES)")


class PreferenceNotFound(NotFound):
    def __init__(self, key: str, scope: str = "", owner: str | None = None) -> None:
        where = f" in scope {scope!r}" if scope else ""
        whose = f" for {owner}" if owner else ""
        super().__init__(f"preference {key!r}{where} not found{whose}")


class SkillNotFound(NotFound):
    def __init__(self, skill_id: object) -> None:
        super().__init__(f"skill {skill_id} not found")


class SkillExists(Conflict):
    def __init__(self, name: str, owner: str) -> None:
        super().__init__(f"{owner} already has a skill named {name!r}; rename it or PATCH the existing one")


class JobNotFound(NotFound):
    def __init__(self, job_id: str, known: list[str]) -> None:
        super().__init__(f"job {job_id!r} not found; known jobs: {', '.join(known)}")


class JobRunNotFound(NotFound):
    def __init__(self, run_id: object) -> None:
        super().__init__(f"job run {run_id} not found")


class SummarizerUnavailable(MosaicError):
    """The configured summarizer could not summarize a group (LLM endpoint down, bad reply)."""

    status_code = 503


class SummarizerBudgetExhausted(MosaicError):
    """The run spent its LLM budget (calls or tokens); the remaining groups wait for the next run."""

    status_code = 429


class RateLimited(MosaicError):
    """Too many requests (or failed authentications) from one caller; ``retry_after`` says when
    to try again (seconds, also sent as the ``Retry-After`` header)."""

    status_code = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)


class FederationError(MosaicError):
    """Federation is not set up for what was asked (no identity, no CA, a bad certificate or bundle)."""

    status_code = 409


class PeerNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"federation peer {name!r} not found; add it with 'mosaic-memory federation peer add'")


class GrantNotFound(NotFound):
    def __init__(self, grant_id: object) -> None:
        super().__init__(f"federation grant {grant_id} not found")
