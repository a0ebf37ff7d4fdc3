"""campaign response: payment fingerprints, revisions and their job queue

Revision ID: 0005_campaign
Revises: 0004_list_changes
"""

from alembic import op
import sqlalchemy as sa
import verify.store.models


revision = "0005_campaign"
down_revision = "0004_list_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_fingerprint", sa.String(length=128), nullable=True))
        batch_op.create_index("ix_assessments_payment_at", ["payment_fingerprint", "occurred_at"], unique=False)
    op.create_table(
        "revisions",
        sa.Column("sequence", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("assessment_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("previous_verdict", sa.String(length=10), nullable=False),
        sa.Column("verdict", sa.String(length=10), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("cause_kind", sa.String(length=16), nullable=False),
        sa.Column("cause_ref", sa.String(length=400), nullable=False),
        sa.Column("created_at", verify.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sequence"),
        sa.UniqueConstraint("id"),
    )
    op.create_index("ix_revisions_assessment_id", "revisions", ["assessment_id"], unique=False)
    op.create_table(
        "revision_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cause_kind", sa.String(length=16), nullable=False),
        sa.Column("cause_ref", sa.String(length=400), nullable=False),
        sa.Column("source_id", sa.String(length=40), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("after_seq", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", verify.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", verify.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_revision_jobs_source_id", "revision_jobs", ["source_id"], unique=False)
    op.create_index("ix_revision_jobs_done_at", "revision_jobs", ["done_at"], unique=False)
    # The counter whose row lock orders revisions (store/revisions.py), made here so that no
    # two first writers race to create it.
    op.execute("INSERT INTO stamps (name, value) SELECT 'revision_sequence', 0 WHERE NOT EXISTS "
               "(SELECT 1 FROM stamps WHERE name = 'revision_sequence')")


def downgrade() -> None:
    op.execute("DELETE FROM stamps WHERE name = 'revision_sequence'")
    op.drop_index("ix_revision_jobs_done_at", table_name="revision_jobs")
    op.drop_index("ix_revision_jobs_source_id", table_name="revision_jobs")
    op.drop_table("revision_jobs")
    op.drop_index("ix_revisions_assessment_id", table_name="revisions")
    op.drop_table("revisions")
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.drop_index("ix_assessments_payment_at")
        batch_op.drop_column("payment_fingerprint")
