"""revision jobs that keep failing are retried later, then set aside

A job whose batch raised (evidence an older release wrote, a stored assessment the judge
cannot read) was taken again at once on every round, and being the oldest it held up every
job behind it for ever. Its failures, its last error and when to try it again are kept; after
a few failures it is set aside until an operator re-queues it (`verify revisions retry`).

Revision ID: 0008_revision_job_failures
Revises: 0007_covering_history
"""

import sqlalchemy as sa
from alembic import op

import verify.store.models

revision = "0008_revision_job_failures"
down_revision = "0007_covering_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("revision_jobs") as batch:
        batch.add_column(sa.Column("failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("retry_at", verify.store.models.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("failed_at", verify.store.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("revision_jobs") as batch:
        for name in ("failed_at", "retry_at", "last_error", "failures"):
            batch.drop_column(name)
