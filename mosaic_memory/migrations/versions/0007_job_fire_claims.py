"""Scheduled runs claim their fire time: ``job_runs.scheduled_for``, unique per job.

Several replicas fire the same cron schedule. The advisory lock kept two runs from overlapping,
but a replica whose fire came after the other's run had finished ran the job again, and one
that came during it wrote a "skipped" row for every fire. Now each replica inserts the run row
for ``(job_id, scheduled_for)`` first; the one whose insert wins runs it, the others do nothing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_runs", sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "uq_job_runs_job_id_scheduled_for",
        "job_runs",
        ["job_id", "scheduled_for"],
        unique=True,
        postgresql_where=sa.text("scheduled_for IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_job_runs_job_id_scheduled_for", table_name="job_runs")
    op.drop_column("job_runs", "scheduled_for")
