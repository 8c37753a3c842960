"""The owner policy reads the transaction's owners once per statement, not once per row.

Migration 0008's policy compared each row's owner with
``string_to_array(current_setting('mosaic.owner_ids', true), ',')::uuid[]``. ``current_setting``
is stable, not immutable, so outside an index condition PostgreSQL evaluated that expression for
every row it filtered: the setting read, split and 100 UUIDs parsed per row. A keyword search's
document-frequency pass reads up to 10,000 rows of the scope, and inside the wall it took 240 ms
against 8 ms outside it (a user in 100 teams, 2026-12-07). As a scalar subquery the array is an
init plan, computed once per statement, and still usable as an index condition on the owner.

Only policies that exist are changed: where 0008 could not build the wall, this changes nothing.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

POLICY = "mosaic_owner_scope"
# table -> the column naming its owner (as in 0008)
OWNER_COLUMNS = {
    "insights": "owner_id",
    "insight_sources": "owner_id",
    "preferences": "owner_id",
    "preference_history": "owner_id",
    "agent_logs": "owner_id",
    "skills": "owner_id",
    "federation_grants": "owner_id",
    "federation_audit": "owner_id",
    "oauth_codes": "user_id",
    "oauth_tokens": "user_id",
}
PER_ROW = "string_to_array(current_setting('mosaic.owner_ids', true), ',')::uuid[]"
# Cast, so that ANY takes the array as a value (ANY over a bare subquery would compare with its rows).
ONCE = f"(SELECT {PER_ROW})::uuid[]"


def _has_policy(table: str) -> bool:
    found = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT 1 FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
                "WHERE p.polname = :p AND c.relname = :t AND c.relnamespace = current_schema()::regnamespace"
            ),
            {"p": POLICY, "t": table},
        )
        .first()
    )
    return found is not None


def _set(owners: str) -> None:
    for table, column in OWNER_COLUMNS.items():
        if _has_policy(table):
            op.execute(
                f"ALTER POLICY {POLICY} ON {table} "
                f"USING ({column} = ANY ({owners})) WITH CHECK ({column} = ANY ({owners}))"
            )


def upgrade() -> None:
    _set(ONCE)


def downgrade() -> None:
    _set(PER_ROW)
