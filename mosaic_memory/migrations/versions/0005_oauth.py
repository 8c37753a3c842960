"""OAuth 2.0 for hosted MCP clients: registered clients, authorization codes, tokens (hashed).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _fk(column: str, target: str, table: str) -> sa.Column[object]:
    ref_table = target.split(".")[0]
    return sa.Column(
        column,
        UUID(as_uuid=True) if column != "client_id" else sa.Text,
        sa.ForeignKey(target, ondelete="CASCADE", name=f"fk_{table}_{column}_{ref_table}"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.Text, primary_key=True),  # an https URL for a metadata document
        sa.Column("secret_hash", sa.String(64)),
        sa.Column("client_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("redirect_uris", ARRAY(sa.Text), nullable=False),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", TS, nullable=False, server_default=sa.text("now()")),
        sa.Column("document_fetched_at", TS),
    )
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("grant_id", UUID(as_uuid=True), nullable=False),
        _fk("client_id", "oauth_clients.client_id", "oauth_codes"),
        _fk("user_id", "owners.id", "oauth_codes"),
        _fk("api_key_id", "api_keys.id", "oauth_codes"),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("scopes", ARRAY(sa.Text), nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("code_challenge_method", sa.String(8), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.text("now()")),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS),
    )
    op.create_index("ix_oauth_codes_expires_at", "oauth_codes", ["expires_at"])
    op.create_table(
        "oauth_tokens",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("grant_id", UUID(as_uuid=True), nullable=False),
        _fk("client_id", "oauth_clients.client_id", "oauth_tokens"),
        _fk("user_id", "owners.id", "oauth_tokens"),
        _fk("api_key_id", "api_keys.id", "oauth_tokens"),
        sa.Column("access_hash", sa.String(64), nullable=False),
        sa.Column("refresh_hash", sa.String(64)),
        sa.Column("scopes", ARRAY(sa.Text), nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("issued_at", TS, nullable=False, server_default=sa.text("now()")),
        sa.Column("access_expires_at", TS, nullable=False),
        sa.Column("refresh_expires_at", TS),
        sa.Column("revoked_at", TS),
        sa.UniqueConstraint("access_hash", name="uq_oauth_tokens_access_hash"),
        sa.UniqueConstraint("refresh_hash", name="uq_oauth_tokens_refresh_hash"),
    )
    op.create_index("ix_oauth_tokens_grant_id", "oauth_tokens", ["grant_id"])
    op.create_index("ix_oauth_tokens_user_id", "oauth_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_table("oauth_tokens")
    op.drop_table("oauth_codes")
    op.drop_table("oauth_clients")
