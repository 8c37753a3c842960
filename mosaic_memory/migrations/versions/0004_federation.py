"""Federation: peers, grants and the audit of federated reads.

The instance identity (name, key pair, certificates) is kept in files under the data directory,
so the TLS listener can start before the database is reachable; no table for it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "federation_peers",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_contact_at", TS),
        sa.Column("last_latency_ms", sa.Float),
        sa.Column("cert_not_after", TS),
        sa.Column("last_error", sa.Text),
    )
    op.create_table(
        "federation_grants",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "peer",
            sa.String(63),
            sa.ForeignKey(
                "federation_peers.name", ondelete="CASCADE", name="fk_federation_grants_peer_federation_peers"
            ),
            nullable=False,
        ),
        sa.Column(
            "owner_id",
            UUID(as_uuid=True),
            sa.ForeignKey("owners.id", ondelete="CASCADE", name="fk_federation_grants_owner_id_owners"),
            nullable=False,
        ),
        sa.Column("recipient", sa.String(140), nullable=False),
        sa.Column("kinds", ARRAY(sa.Text), nullable=False),
        sa.Column("tags", ARRAY(sa.Text)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS),
    )
    op.create_index("ix_federation_grants_peer", "federation_grants", ["peer"])
    op.create_table(
        "federation_audit",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("peer", sa.String(63), nullable=False),
        sa.Column("grant_id", UUID(as_uuid=True)),
        sa.Column("owner_id", UUID(as_uuid=True)),
        sa.Column("recipient", sa.String(140), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("query_hash", sa.String(64)),
        sa.Column("query_text", sa.Text),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_federation_audit_at", "federation_audit", ["at"])


def downgrade() -> None:
    op.drop_table("federation_audit")
    op.drop_table("federation_grants")
    op.drop_table("federation_peers")
