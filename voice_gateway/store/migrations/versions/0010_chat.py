"""Text with the same agent: each transcript line's modality (voice or text), and a chat
session's last activity (the idle reaper) and the reply it is producing (one turn at a time).

Revision ID: 0010_chat
Revises: 0012_cluster
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_chat"
down_revision = "0012_cluster"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("transcript_segments") as batch:
        batch.add_column(
            sa.Column("modality", sa.String(8), nullable=False, server_default="voice")
        )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("last_activity_at", TS))
        batch.add_column(sa.Column("reply_started_at", TS))
    op.create_index("ix_sessions_channel_status", "sessions", ["channel", "status"])


def downgrade() -> None:
    op.drop_index("ix_sessions_channel_status", "sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("reply_started_at")
        batch.drop_column("last_activity_at")
    with op.batch_alter_table("transcript_segments") as batch:
        batch.drop_column("modality")
