"""Settings: environment variables with the ``MOSAIC_`` prefix, an optional TOML file, defaults.

Nested groups use ``__`` in the environment (``MOSAIC_EMBEDDINGS__PROVIDER=onnx``).
Nothing is read at import: call :func:`load_settings`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mosaic_memory.common.scan_policy import ScanPolicy

__all__ = [
    "BackupSettings",
    "CaptureSettings",
    "ContextSettings",
    "EmbeddingSettings",
    "FederationSettings",
    "JobsSettings",
    "KindPolicy",
    "LogSettings",
    "OAuthSettings",
    "SecretSettings",
    "Settings",
    "WebSettings",
    "default_config_file",
    "default_data_dir",
    "load_settings",
]

APP_NAME = "mosaic-memory"


def default_data_dir() -> Path:
    """Where the embedded database and caches live when ``MOSAIC_DATA_DIR`` is unset.

    As root, the embedded PostgreSQL runs as a separate system user and has to open the
    permissions of every parent folder of its data directory; ``/var/lib`` is a place
    where that is harmless, unlike a home directory.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/mosaic-memory")
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


class EmbeddingSettings(BaseModel):
    provider: str = "sentence-transformers"
    model: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    dimensions: int | None = None
    batch_size: int = Field(default=64, ge=1, le=4096)
    # sentence-transformers only: "auto" runs the bundled model on its ONNX fp32 export (the same
    # vectors, about 3x faster for one text), "torch" always on torch, "onnx" insists on the export.
    runtime: Literal["auto", "torch", "onnx"] = "auto"

    def provider_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`embeddings.get_embedder`, only those that are set."""
        options: dict[str, Any] = {}
        if self.model:
            options["model"] = self.model
        if self.base_url:
            options["base_url"] = self.base_url
        if self.api_key is not None:
            options["api_key"] = self.api_key.get_secret_value()
        if self.dimensions:
            options["dimensions"] = self.dimensions
        if self.provider in ("sentence-transformers", "openai-compatible"):
            options["batch_size"] = self.batch_size
        if self.provider == "sentence-transformers" and self.runtime != "auto":
            options["runtime"] = self.runtime
        return options


class KindPolicy(BaseModel):
    """Per-kind policy: near-duplicate threshold, time to live, decay, retention."""

    dedup_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    ttl_days: float | None = Field(default=None, gt=0)
    decay_half_life_days: float | None = Field(default=None, gt=0)
    retention_days: float | None = Field(default=None, gt=0)


class PolicySettings(BaseModel):
    insights: KindPolicy = KindPolicy(dedup_threshold=0.92, decay_half_life_days=90)
    preferences: KindPolicy = KindPolicy()
    skills: KindPolicy = KindPolicy()
    logs: KindPolicy = KindPolicy()


class SearchSettings(BaseModel):
    # A read replica (streaming standby) for POST /v1/search: the search's own queries go there,
    # authentication, recall counts and federated searches stay on the primary (docs/scaling.md).
    replica_url: SecretStr | None = None
    # Scopes with fewer rows than this are searched exactly (B-tree on the owner, then a sort);
    # larger ones use HNSW with iterative scans. See benchmarks/RESULTS.md for the measurement.
    exact_scan_threshold: int = Field(default=20_000, ge=0)
    exact_scan_min_rows: int = Field(default=2_000, ge=0)
    exact_scan_share: float = Field(default=0.05, ge=0.0, le=1.0)
    # Relevance = sigmoid(weights · signals + bias), per mode: semantic (cosine, cosine above the
    # mean of the query's candidates), keyword (IDF-weighted coverage), hybrid (all three). Fitted
    # on every quality set together with `python -m benchmarks.quality_eval --fit` for the bundled
    # all-MiniLM-L6-v2, which also chooses hybrid's ranking (the keyword weight over the cosine's,
    # the power and the gate below); refit for another model (its cosines sit elsewhere). See
    # mosaic_memory/search/fusion.py.
    calibration_semantic: tuple[float, float, float] = (-1.9908, 13.4462, -1.0581)
    calibration_keyword: tuple[float, float] = (42.873, -0.7478)
    calibration_hybrid: tuple[float, float, float, float] = (-8.1498, 18.6675, 84.1415, 0.0519)
    # The keyword signal enters the maps as coverage ** power: a full match of the query's words
    # keeps its weight while a partial match on one word of a paraphrase weighs much less.
    calibration_keyword_power: float = Field(default=3.5, gt=0.0, le=4.0)
    # A scope with fewer rows than a search's semantic candidates counts the missing ones at this
    # cosine in the baseline (fusion.baseline_of): a question's mean cosine to unrelated stored
    # texts is 0.08 on the most varied quality set (project) and 0.17-0.23 on one-topic sets.
    calibration_baseline_prior: float = Field(default=0.1, ge=-1.0, le=1.0)
    # Where hybrid counts a hit's keyword evidence (fusion.keyword_share): in full for a hit whose
    # cosine stands gate[1] above the query's baseline (none up to gate[0]), and for every hit of a
    # query whose best cosine stands less than unsure[0] above it (none from unsure[1]). Chosen with
    # the weights by `python -m benchmarks.quality_eval --fit`.
    calibration_keyword_gate: tuple[float, float] = (0.01, 0.02)
    calibration_keyword_unsure: tuple[float, float] = (0.15, 0.16)
    # The documented cut between relevant and unrelated hits (a score of 0.5 is as likely one as
    # the other). Not applied unless a request asks (min_score) or `default_min_score` is set, so
    # a search for k still returns k whenever k rows match; precision and recall of the cut on the
    # quality sets are in benchmarks/RESULTS.md.
    relevance_cut: float = Field(default=0.5, ge=0.0, le=1.0)
    default_min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    # Matches ranked per keyword pass; bounds the cost of a word most rows contain.
    keyword_candidate_cap: int = Field(default=1_000, ge=10)
    # A lexeme in more than this share of the caller's rows (of a kind) weighs nothing in keyword
    # search; document frequencies are counted over at most `keyword_df_sample` rows.
    keyword_max_df_share: float = Field(default=0.5, gt=0.0, le=1.0)
    keyword_df_sample: int = Field(default=10_000, ge=100)
    # Optional reranker over the fused candidates (a provider name of embeddings.rerank, e.g.
    # "tei" for a TEI/Cohere-style /rerank endpoint); off by default.
    reranker: str | None = None
    reranker_options: dict[str, Any] = Field(default_factory=dict)
    rerank_candidates: int = Field(default=30, ge=1, le=200)
    # Recalls of insights are written in batches off the search path (insights/access.py).
    access_flush_ms: int = Field(default=500, ge=10, le=60_000)
    access_flush_max: int = Field(default=1000, ge=1)
    hnsw_ef_search: int = Field(default=100, ge=10, le=1000)
    candidate_multiplier: int = Field(default=4, ge=1, le=50)

    def scan_policy(self) -> ScanPolicy:
        return ScanPolicy(
            max_rows=self.exact_scan_threshold, min_rows=self.exact_scan_min_rows, share=self.exact_scan_share
        )


class LogSettings(BaseModel):
    """Agent logs: how much a write may wait for the model, and the background embedder."""

    max_events_per_call: int = Field(default=5000, ge=1, le=100_000)
    # A write embeds its events inline only when the model should finish within this budget
    # (events <= budget * embed_texts_per_s); otherwise rows are stored with embedding NULL and
    # the background embedder fills them in. An inline embed that overruns the budget is
    # abandoned and left to the background embedder too, so the write never waits longer.
    embed_inline_budget_ms: int = Field(default=250, ge=0, le=60_000)
    # Throughput of the configured model on this host, used for that decision; the service lowers
    # it when it measures less. Measured with the bundled all-MiniLM-L6-v2 on 2 shared CPU cores:
    # 36-200 short texts/s depending on load (see docs/logs.md).
    embed_texts_per_s: float = Field(default=100.0, gt=0)
    # How long the background embedder sleeps when it finds nothing pending; rows written through
    # this process wake it at once, rows written by another replica wait at most this long.
    embed_max_delay_s: float = Field(default=5.0, gt=0, le=3600)
    embed_batch_size: int = Field(default=64, ge=1, le=4096)
    # Off: pending rows are embedded only on demand (tests, a CLI or job run).
    background_embedder: bool = True

    @property
    def inline_max_events(self) -> int:
        """The largest batch embedded inline at the configured rate (the service may lower it)."""
        return int(self.embed_inline_budget_ms / 1000 * self.embed_texts_per_s)


class LocalTierSettings(BaseModel):
    # As root, the embedded server opens the permissions of its data directory's parents.
    # We refuse to do that to a home directory unless this is set.
    allow_open_permissions: bool = False
    # PostgreSQL settings for the embedded server, written to its postgresql.auto.conf before it
    # starts, where that file does not set them yet (ALTER SYSTEM keeps the last word). Empty
    # values take the defaults sized from the machine's memory (tiers.py, `embedded_server_settings`).
    server_settings: dict[str, str] = {}


class LLMSummarizerSettings(BaseModel):
    """An OpenAI-compatible chat endpoint for the LLM summarizer (``/v1/chat/completions``)."""

    base_url: str | None = None  # e.g. http://127.0.0.1:11434/v1
    model: str = "gpt-4o-mini"
    api_key: SecretStr | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    max_calls_per_run: int = Field(default=500, ge=1)
    max_tokens_per_run: int = Field(default=500_000, ge=1)
    max_tokens_per_call: int = Field(default=512, ge=16)


class JobsSettings(BaseModel):
    """Scheduled jobs: summarization, expiry and decay, log tiers, re-embedding."""

    enabled: bool = True  # MOSAIC_JOBS__ENABLED=false: this process schedules nothing
    timezone: str = "UTC"
    summarize_cron: str = "0 2 * * *"
    maintenance_cron: str = "30 2 * * *"
    log_tiers_cron: str = "0 3 * * *"
    reembed_cron: str | None = None  # re-embedding runs on demand unless scheduled
    summarizer: Literal["extractive", "llm"] = "extractive"
    llm: LLMSummarizerSettings = LLMSummarizerSettings()
    max_lines_per_insight: int = Field(default=5, ge=1, le=50)
    max_logs_per_insight: int = Field(default=200, ge=2)
    # A new fact this similar to a stored insight (but under the dedup threshold) is checked for a
    # contradiction by summarizers that can judge one; a contradiction supersedes the stored insight.
    contradiction_min_similarity: float = Field(default=0.6, ge=0.0, le=1.0)
    # A throttle between summarization groups, to leave the database and CPU to requests.
    group_pause_seconds: float = Field(default=0.0, ge=0)
    # How long summarization waits for logs another transaction holds (the background embedder,
    # a write still open) before leaving them for the next run, reported as skipped_pending.
    pending_wait_seconds: float = Field(default=10.0, ge=0, le=600)
    logs_cold_after_days: float | None = Field(default=30.0, gt=0)
    reembed_batch_size: int = Field(default=256, ge=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'") from None
        return value


class BackupSettings(BaseModel):
    """Scheduled backups (``pg_dump`` custom format) with a retention; off unless ``cron`` is set."""

    cron: str | None = None  # MOSAIC_BACKUP__CRON="0 4 * * *": the "backup" job runs on this schedule
    dir: Path | None = None  # default <data_dir>/backups
    keep: int = Field(default=7, ge=1, le=10_000)  # the newest this many scheduled backups stay


class CaptureSettings(BaseModel):
    """Agent hooks (``mosaic-memory capture``) and transcript import (``docs/agents.md``)."""

    # A hook returns within this, sent or not: whatever the service did not take waits in the spool.
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # Tool output kept per event (the rest is cut, with a note of how much).
    excerpt_chars: int = Field(default=2000, ge=100, le=8000)
    # Where unsent events wait; default <data_dir>/capture/spool.jsonl.
    spool_file: Path | None = None
    # On a session-start hook (Claude Code's SessionStart, Codex's hooks.json SessionStart) capture
    # prints the block of POST /v1/context for the agent to inject: the user's preferences first,
    # then what fits the project (the folder the session runs in). Tokens of the block, at most
    # (Claude Code keeps 10,000 characters of a hook's context, about 2,000 tokens, before it
    # moves the rest to a file), and how long the hook waits for it before injecting nothing.
    inject_context: bool = True
    context_token_budget: int = Field(default=1500, ge=50, le=20_000)
    context_timeout_seconds: float = Field(default=2.0, gt=0, le=60)


class FederationSettings(BaseModel):
    """Federation: the mutual-TLS listener, fan-out timeouts, the CA passphrase, the audit."""

    # The mTLS listener's port; unset: this instance serves no peers (it can still call them).
    port: int | None = Field(default=None, ge=1, le=65535)
    host: str = "127.0.0.1"
    # Each peer of a federated search must answer within this, or it is named in peers_failed.
    timeout_seconds: float = Field(default=2.0, gt=0, le=120)
    ca_passphrase: SecretStr | None = None  # MOSAIC_FEDERATION__CA_PASSPHRASE; else the CLI prompts
    cert_hours: float = Field(default=24.0, gt=0, le=24 * 366)
    # The renewal job renews this instance's certificate when less than this share of its life is left.
    renew_before_share: float = Field(default=1 / 3, gt=0, lt=1)
    renew_cron: str = "*/30 * * * *"
    # The audit keeps a hash of each federated query; the text only when this is set.
    store_query_text: bool = False


class ContextSettings(BaseModel):
    """The block of memory for a session's start (POST /v1/context)."""

    # An insight or skill found for the query goes into the block when its cosine to the query is
    # at least min_cosine, or when the keyword side found at least min_keyword of the query's
    # useful words in it (IDF-weighted; 1.0: all of them, as a project's name). Not the search's
    # calibrated score: it weighs a hit against the caller's other rows, so it rated a stranger's
    # best row relevant (0.89 for a cellist fact on the query "mosaic", cosine 0.28) and, in a
    # store of one skill, that skill not (0.20 at cosine 0.92). On the corpus of
    # benchmarks/corpus.py, 0.35 kept the four allergy facts for "food allergies" (cosines 0.40 to
    # 0.54) and dropped the rest (0.33 and below). The cosine is all-MiniLM-L6-v2's: set it anew
    # for another model.
    min_cosine: float = Field(default=0.35, ge=-1.0, le=1.0)
    min_keyword: float = Field(default=1.0, ge=0.0, le=1.0)


class OAuthSettings(BaseModel):
    """The authorization server for hosted MCP clients (``docs/oauth.md``)."""

    enabled: bool = True
    # The URL clients reach this service at (https://memory.example.com), used as the issuer and
    # the resource identifiers; unset: taken from each request (scheme and Host, as the proxy
    # headers uvicorn trusts say). Set it behind a reverse proxy.
    public_url: str | None = None
    access_token_ttl_seconds: int = Field(default=3600, ge=10, le=7 * 24 * 3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    code_ttl_seconds: int = Field(default=300, ge=10, le=600)
    # Dynamic client registration (RFC 7591) open to anyone: hosted clients register themselves.
    # A client can do nothing before a person approves it with an API key.
    open_registration: bool = True
    # Client ID Metadata Documents: a client_id that is an https URL of the client's metadata,
    # fetched (no redirects, at most 5 KB) and kept for client_metadata_ttl_seconds.
    client_metadata_documents: bool = True
    client_metadata_ttl_seconds: int = Field(default=3600, ge=0)
    client_metadata_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Fetching a URL a stranger names must not reach this network's private addresses (SSRF);
    # set this only where clients' documents are served from such addresses on purpose.
    client_metadata_allow_private_hosts: bool = False
    # Extra CA certificates (PEM) to trust when fetching documents, e.g. a company's own CA.
    client_metadata_ca_file: Path | None = None


class WebSettings(BaseModel):
    """Browser sessions (the OAuth consent page, the web UI): a signed, HTTP-only cookie."""

    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # The key that signs session and CSRF cookies; unset: one is generated and kept in the
    # database (instance_meta), so every replica on the database shares it.
    session_secret: SecretStr | None = None


class SecretSettings(BaseModel):
    """Credentials in the text of a write (see ``mosaic_memory/common/secret_scan.py``)."""

    # redact (default): each one is stored as [REDACTED:<kind>] and counted in the response;
    # refuse: the write answers 422 SecretDetected and stores nothing; off: no scan.
    mode: Literal["redact", "refuse", "off"] = "redact"


class McpSettings(BaseModel):
    """The streamable HTTP endpoint ``/mcp`` (docs/mcp.md, "Security")."""

    # Browser origins allowed to call /mcp, e.g. ["https://app.example"]; "scheme://host:*" allows
    # any port. A request with any other Origin header is refused 403; one without Origin (every
    # non-browser MCP client) is not affected.
    allowed_origins: list[str] = Field(default_factory=list)


class LimitSettings(BaseModel):
    """What one caller may send (docs/security.md). Rates are per process (each replica its own).

    ``requests_per_minute`` per API key (0 turns it off), with bursts up to ``request_burst``;
    ``auth_failures_per_minute`` failed authentications per client address and key prefix (0: off),
    after a burst of ``auth_failure_burst``: guessing the secret of a known key prefix is answered
    429 with ``Retry-After``. ``max_request_bytes`` caps a request body (413); ``embed_timeout_seconds``
    bounds an embedding call, per started 64 texts (503 after it, nothing stored)."""

    requests_per_minute: int = Field(default=18_000, ge=0)
    request_burst: int = Field(default=3_000, ge=1)
    auth_failures_per_minute: int = Field(default=10, ge=0)
    auth_failure_burst: int = Field(default=10, ge=1)
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    embed_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)


class Settings(BaseSettings):
    """The effective configuration of one process."""

    model_config = SettingsConfigDict(
        env_prefix="MOSAIC_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: SecretStr | None = None
    tier: Literal["auto", "local", "standalone"] = "auto"
    auto_migrate: bool = True
    admin_key: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    url: str = "http://127.0.0.1:8765"
    api_key: SecretStr | None = None

    max_content_bytes: int = Field(default=32 * 1024, ge=1)
    max_batch_items: int = Field(default=1000, ge=1)
    db_pool_size: int = Field(default=10, ge=1)
    db_connect_timeout: float = Field(default=5.0, gt=0)
    log_level: str = "INFO"
    # serve's log lines on stderr: "text" for a person, "json" (one object per line) for a collector.
    log_format: Literal["text", "json"] = "text"
    # serve probes the tier before it starts (see `mosaic-memory doctor`); each probe waits this long.
    probe_timeout: float = Field(default=5.0, gt=0, le=120)

    embeddings: EmbeddingSettings = EmbeddingSettings()
    search: SearchSettings = SearchSettings()
    policy: PolicySettings = PolicySettings()
    local: LocalTierSettings = LocalTierSettings()
    logs: LogSettings = LogSettings()
    jobs: JobsSettings = JobsSettings()
    backup: BackupSettings = BackupSettings()
    federation: FederationSettings = FederationSettings()
    secrets: SecretSettings = SecretSettings()
    context: ContextSettings = ContextSettings()
    capture: CaptureSettings = CaptureSettings()
    oauth: OAuthSettings = OAuthSettings()
    web: WebSettings = WebSettings()
    limits: LimitSettings = LimitSettings()
    mcp: McpSettings = McpSettings()

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def spool_file(self) -> Path:
        """The capture spool: ``capture.spool_file`` or ``<data_dir>/capture/spool.jsonl``."""
        return (self.capture.spool_file or self.data_dir / "capture" / "spool.jsonl").expanduser()

    @property
    def backup_dir(self) -> Path:
        """Where backups go by default: ``backup.dir`` or ``<data_dir>/backups``."""
        return (self.backup.dir or self.data_dir / "backups").expanduser()

    @property
    def effective_tier(self) -> Literal["local", "standalone"]:
        if self.tier == "auto":
            return "standalone" if self.database_url is not None else "local"
        return self.tier

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get("MOSAIC_CONFIG_FILE")
        path = Path(config_file).expanduser() if config_file else default_config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from keyword overrides, the environment, then the config file."""
    config_file = os.environ.get("MOSAIC_CONFIG_FILE")
    if config_file:
        path = Path(config_file).expanduser()
        if not path.is_file():
            from mosaic_memory.errors import ConfigurationError

            raise ConfigurationError(f"MOSAIC_CONFIG_FILE points at {path}, which is not a file")
        try:
            tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            from mosaic_memory.errors import ConfigurationError

            raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from None
    return Settings(**overrides)
