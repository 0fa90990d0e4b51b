"""Many machines: the reaper's leader looks up a session's webhook events on every pass (the
events a replica died before enqueuing) for the sessions started or ended in the last minutes:
both are indexed.

Revision ID: 0012_cluster
Revises: 0007_phone
"""

from alembic import op

revision = "0012_cluster"
down_revision = "0007_phone"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbound_session", "outbound_events", ["session_id", "event_type"])
    op.create_index("ix_sessions_started", "sessions", ["started_at"])
    op.create_index("ix_sessions_ended", "sessions", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_sessions_ended", "sessions")
    op.drop_index("ix_sessions_started", "sessions")
    op.drop_index("ix_outbound_session", "outbound_events")
