"""Initial schema: owners, keys, every memory kind, the job ledger, HNSW and full-text indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql as pg

from mosaic_memory.common.indexes import create_hnsw_index

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UUID = pg.UUID(as_uuid=True)
TSZ = sa.DateTime(timezone=True)


def _dimensions() -> int:
    # The vector dimension is the configured embedder's, fixed when the schema is created.
    return int(context.config.attributes.get("embedding_dimensions", 384))


def _now() -> sa.TextClause:
    return sa.text("now()")


def _owner_pk_table(name: str, *columns: sa.Column[Any], embedded: bool, tsv: str | None) -> None:
    cols: list[sa.Column[Any]] = [
        sa.Column("owner_id", UUID, sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("id", UUID, nullable=False),
        *columns,
    ]
    if embedded:
        cols += [
            sa.Column("content_hash", sa.String(64), nullable=False),
            sa.Column("embedding", Vector(_dimensions()), nullable=True),
            sa.Column("embedding_model", sa.String(200), nullable=True),
        ]
    if tsv is not None:
        cols.append(sa.Column("search_tsv", pg.TSVECTOR, sa.Computed(tsv, persisted=True)))
    op.create_table(name, *cols, sa.PrimaryKeyConstraint("owner_id", "id", name=f"pk_{name}"))
    if embedded:
        # HNSW cannot lead with the owner; scoped queries use iterative scans or an exact scan
        # through the B-tree indexes below (see search/repository.py).
        op.execute(create_hnsw_index(name))
    if tsv is not None:
        op.execute(f"CREATE INDEX ix_{name}_search_tsv ON {name} USING gin (search_tsv)")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")

    op.create_table(
        "owners",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", TSZ, nullable=False, server_default=_now()),
        sa.UniqueConstraint("kind", "name", name="uq_owners_kind_name"),
        sa.CheckConstraint("kind IN ('user', 'team')", name="ck_owners_kind"),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", UUID, sa.ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", UUID, sa.ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False, server_default="member"),
        sa.Column("created_at", TSZ, nullable=False, server_default=_now()),
    )
    op.create_index("ix_team_members_user_id", "team_members", ["user_id", "team_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("user_id", UUID, sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False, server_default=""),
        sa.Column("prefix", sa.String(32), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scopes", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("agent_id", sa.String(128)),
        sa.Column("created_at", TSZ, nullable=False, server_default=_now()),
        sa.Column("last_used_at", TSZ),
        sa.Column("revoked_at", TSZ),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])

    tsv_insight = "to_tsvector('english', coalesce(category, '') || ' ' || content)"
    _owner_pk_table(
        "insights",
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("category", sa.String(128)),
        sa.Column("tags", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("metadata", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("importance", sa.Float, nullable=False, server_default="0.5"),
        sa.Column("confidence", sa.Float, nullable=False, server_default="1.0"),
        sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("valid_from", TSZ, nullable=False, server_default=_now()),
        sa.Column("valid_to", TSZ),
        sa.Column("superseded_by", UUID),
        sa.Column("expires_at", TSZ),
        sa.Column("access_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_accessed_at", TSZ),
        sa.Column("source_type", sa.String(16), nullable=False, server_default="api"),
        sa.Column("source_ref", sa.Text),
        sa.Column("created_by_run", UUID),
        sa.Column("created_at", TSZ, nullable=False, server_default=_now()),
        sa.Column("updated_at", TSZ, nullable=False, server_default=_now()),
        embedded=True,
        tsv=tsv_insight,
    )
    op.create_index("uq_insights_owner_content_hash", "insights", ["owner_id", "content_hash"], unique=True)
    op.create_index("ix_insights_owner_created", "insights", ["owner_id", "created_at", "id"])
    op.execute("CREATE INDEX ix_insights_owner_tags ON insights USING gin (tags)")
    op.create_index("ix_insights_created_by_run", "insights", ["created_by_run"])

    _owner_pk_table(
        "preferences",
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("scope", sa.String(256), nullable=False, server_default=""),
        sa.Column("value", pg.JSONB, nullable=True),
        sa.Column("mutable", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("source", sa.String(16), nullable=False, server_default="user"),
        sa.Column("created_at", TSZ, nullable=False, server_default=_now()),
        sa.Column("updated_at", TSZ, nullable=False, server_default=_now()),
        embedded=True,
        tsv="to_tsvector('english', key || ' ' || coalesce(value::text, ''))",
    )
    op.create_index("uq_preferences_owner_scope_key", "preferences", ["owner_id", "scope", "key"], unique=True)

    _owner_pk_table(
        "preference_history",
        sa.Column("preference_id", UUID, nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("scope", sa.String(256), nullable=False, server_default=""),
        sa.Column("old_value", pg.JSONB),
        sa.Column("new_value", pg.JSONB),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("changed_by", sa.String(256)),
        sa.Column("source", sa.String(16), nullable=False, server_default="user"),
        sa.Column("changed_at", TSZ, nullable=False, server_default=_now()),
        embedded=False,
        tsv=None,
    )
    op.create_index(
        "ix_preference_history_owner_pref", "preference_history", ["owner_id", "preference_id", "changed_at"]
    )

    _owner_pk_table(
        "agent_logs",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("session_id", sa.String(256)),
        sa.Column("agent_id", sa.String(256)),
        sa.Column("level", sa.String(16), nullable=False, server_default="info"),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("metadata", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("occurred_at", TSZ, nullable=False, server_default=_now()),
        sa.Column("created_at", TSZ, nullable=False, server_default=_now()),
        sa.Column("tier", sa.String(8), nullable=False, server_default="hot"),
        sa.Column("tier_changed_at", TSZ),
        sa.Column("summarized_at", TSZ),
        sa.Column("summarized_by_run", UUID),
        embedded=True,
        tsv="to_tsvector('english', content)",
    )
    op.create_index("ix_agent_logs_owner_session", "agent_logs", ["owner_id", "session_id", "occurred_at", "seq"])
    op.create_index("ix_agent_logs_owner_occurred", "agent_logs", ["owner_id", "occurred_at", "seq"])
    op.execute(
        "CREATE INDEX ix_agent_logs_unsummarized ON agent_logs (owner_id, session_id, occurred_at) "
        "WHERE summarized_at IS NULL"
    )
    op.execute("CREATE INDEX ix_agent_logs_unembedded ON agent_logs (owner_id, seq) WHERE embedding IS NULL")
    op.create_index("ix_agent_logs_owner_tier", "agent_logs", ["owner_id", "tier", "tier_changed_at"])
    op.create_index("ix_agent_logs_summarized_by_run", "agent_logs", ["summarized_by_run"])

    _owner_pk_table(
        "skills",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("instructions", sa.Text, nullable=False, server_default=""),
        sa.Column("tags", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("metadata", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", TSZ, nullable=False, server_default=_now()),
        sa.Column("updated_at", TSZ, nullable=False, server_default=_now()),
        embedded=True,
        tsv="to_tsvector('english', name || ' ' || description || ' ' || instructions)",
    )
    op.create_index("uq_skills_owner_name", "skills", ["owner_id", "name"], unique=True)

    op.create_table(
        "insight_sources",
        sa.Column("owner_id", UUID, nullable=False),
        sa.Column("insight_id", UUID, nullable=False),
        sa.Column("log_id", UUID, nullable=False),
        sa.Column("run_id", UUID),
        sa.PrimaryKeyConstraint("owner_id", "insight_id", "log_id", name="pk_insight_sources"),
        sa.ForeignKeyConstraint(["owner_id", "insight_id"], ["insights.owner_id", "insights.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id", "log_id"], ["agent_logs.owner_id", "agent_logs.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_insight_sources_owner_log", "insight_sources", ["owner_id", "log_id"])

    op.create_table(
        "job_runs",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="running"),
        sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("started_at", TSZ, nullable=False, server_default=_now()),
        sa.Column("finished_at", TSZ),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("counts", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("errors", pg.JSONB, nullable=False, server_default="[]"),
        sa.Column("changes", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("rolled_back_at", TSZ),
        sa.Column("message", sa.Text),
    )
    op.create_index("ix_job_runs_job_id", "job_runs", ["job_id", "started_at"])

    op.create_table(
        "instance_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", pg.JSONB, nullable=False),
        sa.Column("updated_at", TSZ, nullable=False, server_default=_now()),
    )


def downgrade() -> None:
    for table in (
        "instance_meta",
        "job_runs",
        "insight_sources",
        "skills",
        "agent_logs",
        "preference_history",
        "preferences",
        "insights",
        "api_keys",
        "team_members",
        "owners",
    ):
        op.drop_table(table)
    # The vector extension stays: other schemas in the same database may use it.
