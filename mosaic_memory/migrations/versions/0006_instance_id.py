"""An instance id in ``instance_meta``: which instance's data a database holds.

``migrate-tier`` compares it on both sides: a target holding another instance's rows is refused,
a target holding this instance's (an interrupted earlier run) is resumed. Created once per
database, at its first migration; never changed afterwards (a migrated copy takes its source's).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO instance_meta (key, value, updated_at) "
        "VALUES ('instance_id', to_jsonb(gen_random_uuid()::text), now()) ON CONFLICT (key) DO NOTHING"
    )


def downgrade() -> None:
    op.execute("DELETE FROM instance_meta WHERE key = 'instance_id'")
