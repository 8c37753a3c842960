"""The owner policy of the searchable kinds filters rows but offers itself to no index.

Inside the wall the planner cannot see how many owners the policy's init plan (migration 0009)
holds: it assumes ten. In a scope that is most of the table it then took the policy for a
selective condition and ANDed a bitmap scan of the primary key over the whole scope (100,000
entries, ~11 ms) onto every text match of the GIN index: a keyword pass took 16 ms on average
inside the wall against 3.5 ms outside it (100 owners, 100k rows, 2026-12-07), and a document
frequency pass 21 against 8 ms. The repositories always pass the same owners as an explicit
array (``common/repository.owned_by``), whose length the planner does see, so that condition
alone now chooses the index: ``IS TRUE`` keeps the policy's meaning (NULL, no setting, is still
not true: the wall fails closed) and its estimate, but it is no index condition. Plans inside the
wall become those outside it, with the policy as a filter on the rows they read.

Only the kinds with a text index change (a second index the planner could AND with the owner's);
the other tables keep 0009's policy. Only policies that exist are changed, as in 0009.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

POLICY = "mosaic_owner_scope"
SEARCHABLE = ("insights", "preferences", "agent_logs", "skills")  # each has owner_id and a GIN text index
ONCE = "(SELECT string_to_array(current_setting('mosaic.owner_ids', true), ',')::uuid[])::uuid[]"  # as in 0009


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


def _set(using: str) -> None:
    for table in SEARCHABLE:
        if _has_policy(table):  # WITH CHECK stays as it is: it plans nothing
            op.execute(f"ALTER POLICY {POLICY} ON {table} USING ({using})")


def upgrade() -> None:
    _set(f"(owner_id = ANY ({ONCE})) IS TRUE")


def downgrade() -> None:
    _set(f"owner_id = ANY ({ONCE})")
