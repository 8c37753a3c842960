"""Row-level security: a second wall under the application's own owner filter.

Every table of owner-scoped rows gets RLS and one policy for the NOLOGIN role ``mosaic_scoped``:
a row is visible (and writable) only when its owner is in the transaction's
``mosaic.owner_ids`` setting. Work on behalf of one principal switches into that role for its
transaction (``mosaic_memory/db.py``, ``enter_owner_scope``); cross-owner work (jobs, admin
routes, federation serving a grant, authentication) keeps the connecting role, which RLS does
not restrict (a superuser, or the tables' owner without ``FORCE``).

An unset setting yields NULL, ``owner_id = ANY (NULL)`` is never true: the wall fails closed.

Creating a role needs ``SUPERUSER`` or ``CREATEROLE``. Where the connecting role has neither
(an external database) and ``mosaic_scoped`` does not exist yet, this migration changes nothing
and the wall stays absent (``doctor`` says so); docs/security.md says how a DBA adds the role,
after which ``db downgrade 0007`` and ``db upgrade`` install the rest.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ROLE = "mosaic_scoped"
POLICY = "mosaic_owner_scope"
# table -> the column naming its owner
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
# Compared with = ANY: the planner can use it as an index condition on the owner-leading keys.
# Outside an index condition it was evaluated for every row (current_setting is only stable):
# migration 0009 makes it a scalar subquery, computed once per statement.
OWNERS = "string_to_array(current_setting('mosaic.owner_ids', true), ',')::uuid[]"

log = logging.getLogger("alembic.runtime.migration")


# May the connecting role switch into ROLE? (PostgreSQL 16 split SET off membership: a role made
# by a CREATEROLE user is its member but may not SET it.)
CAN_SET = (
    "CASE WHEN current_setting('server_version_num')::int >= 160000 "
    f"THEN pg_has_role(current_user, '{ROLE}', 'SET') ELSE pg_has_role(current_user, '{ROLE}', 'MEMBER') END"
)


def _scalar(sql: str) -> object:
    return op.get_bind().execute(sa.text(sql)).scalar()


def _role_usable() -> bool:
    """Make ROLE (if missing) and let the connecting role switch into it; False where it may not."""
    bind = op.get_bind()
    exists = bool(_scalar(f"SELECT count(*) FROM pg_roles WHERE rolname = '{ROLE}'"))
    if exists and _scalar(f"SELECT {CAN_SET}"):
        return True
    try:
        with bind.begin_nested():  # a refusal must not abort the migration's transaction
            if not exists:
                bind.execute(sa.text(f"CREATE ROLE {ROLE} NOLOGIN NOBYPASSRLS"))
            bind.execute(sa.text(f"GRANT {ROLE} TO CURRENT_USER"))
    except sa.exc.DBAPIError as exc:
        log.warning(
            "row-level security not installed: this database role may not %s the role %s (%s); "
            "see docs/security.md, 'Row-level security'",
            "grant itself" if exists else "create",
            ROLE,
            type(getattr(exc, "orig", exc)).__name__,
        )
        return False
    return True


def upgrade() -> None:
    if not _role_usable():
        return
    op.execute(f"GRANT USAGE ON SCHEMA {_schema()} TO {ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {_schema()} TO {ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {_schema()} TO {ROLE}")
    # Tables of later migrations (created by this same role) are reachable in the role too.
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {_schema()} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {ROLE}"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {_schema()} GRANT USAGE, SELECT ON SEQUENCES TO {ROLE}")
    for table, column in OWNER_COLUMNS.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {POLICY} ON {table} TO {ROLE} "
            f"USING ({column} = ANY ({OWNERS})) WITH CHECK ({column} = ANY ({OWNERS}))"
        )


def downgrade() -> None:
    for table in OWNER_COLUMNS:
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    if not _scalar(f"SELECT count(*) FROM pg_roles WHERE rolname = '{ROLE}'"):
        return
    # The role is the cluster's (other databases may use it): only this schema's grants go.
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {_schema()} REVOKE ALL ON TABLES FROM {ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {_schema()} REVOKE ALL ON SEQUENCES FROM {ROLE}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {_schema()} FROM {ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {_schema()} FROM {ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA {_schema()} FROM {ROLE}")


def _schema() -> str:
    name = _scalar("SELECT quote_ident(current_schema())")
    assert isinstance(name, str)
    return name
