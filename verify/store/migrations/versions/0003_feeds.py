"""feeds: public sources that fill lists

Revision ID: 0003_feeds
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
import verify.store.models


revision = "0003_feeds"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("next_sync_at", verify.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_sync_at", verify.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", verify.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", verify.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["lists.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.create_index("ix_feeds_list_id", ["list_id"], unique=False)
        batch_op.create_index("ix_feeds_next_sync_at", ["next_sync_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_index("ix_feeds_next_sync_at")
        batch_op.drop_index("ix_feeds_list_id")
    op.drop_table("feeds")
